"""The system page: the state of every part for KPU staff, live.

The page and its live part come from one template (`operations/system.html#live`); the part
carries an ETag of what it shows, so a poll that finds everything as it was answers 304.
"""

import hashlib

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import translation
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_GET

from accounts.guards import require
from accounts.scope import Can
from operations.board import system_board, worst
from operations.selectors import system_state
from sirekap_tracker.requests import HtmxHttpRequest


@login_required
@require_GET
def system(request: HtmxHttpRequest) -> HttpResponse:
    require(request, Can.SYSTEM)
    sections = system_board(system_state())
    overall = worst(section.light for section in sections)
    etag = _etag(sections, overall, part=bool(request.htmx))
    response = get_conditional_response(request, etag=etag)
    if response is None:
        template = "operations/system.html#live" if request.htmx else "operations/system.html"
        response = render(request, template, {"sections": sections, "overall": overall})
    response["ETag"] = etag
    # The page and its live part share the URL; a cache must keep them apart, and ask each time.
    patch_vary_headers(response, ["HX-Request"])
    patch_cache_control(response, private=True, no_cache=True)
    return response


def _etag(sections, overall: str, *, part: bool) -> str:
    """A strong validator of what the answer shows: every reading as displayed, in its
    language, and whether it is the page or its live part."""
    shown = (translation.get_language(), part, overall, sections)
    digest = hashlib.sha256(repr(shown).encode())
    return f'"{digest.hexdigest()[:32]}"'
