"""The staff dashboard: one area of one contest kind, live.

A page and its HTMX parts come from one template (`dashboard/area.html#live`, `#timeline`). Each
carries an ETag of what it shows, so a poll of an unchanged area answers 304 without rendering;
the parts of a complete area come back without their trigger, which stops the polling.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_GET

from dashboard.selectors import board_etag, dashboard_board, dashboard_tps
from progress.selectors import CHILD_SORTS
from progress.timeline import place_chart
from regions.models import CODE_LENGTH, Level
from regions.selectors import home_place, place_of_area

# What an HTMX request asks for: the live part every 5 s, the timeline every minute (?part=).
PARTS = {"live": "dashboard/area.html#live", "timeline": "dashboard/area.html#timeline"}


def _staff(request: HttpRequest) -> None:
    # Until the roles issue lands, the dashboard is for KPU staff: any active staff user.
    if not request.user.is_staff:
        raise PermissionDenied


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    _staff(request)
    place = home_place()
    if place is None:
        return render(request, "dashboard/empty.html")
    kind, code = place
    if code:
        return redirect("dashboard:area", kind=kind, code=code)
    return redirect("dashboard:nation", kind=kind)


@login_required
@require_GET
def area(request: HttpRequest, kind: str, code: str = "") -> HttpResponse:
    _staff(request)
    if len(code) == CODE_LENGTH[Level.TPS]:
        return _tps(request, kind, code)
    place = place_of_area(kind=kind, area_code=code)
    if place is None:
        raise Http404("no such area, or no contest of this kind there")
    part = request.GET.get("part", "live") if request.htmx else "page"
    if part not in (*PARTS, "page"):
        raise Http404("no such part of the page")
    sort = request.GET.get("sort", "code")
    if sort not in CHILD_SORTS:
        sort = "code"
    now = timezone.now()
    board = dashboard_board(place=place, lists=part != "timeline")
    # The live part leaves the timeline out: it changes once a minute and polls on its own.
    chart = None if part == "live" else place_chart(place=place, current=board.area, now=now)
    variant = f"{translation.get_language()}:{sort}:{part}"
    etag = board_etag(board, variant=variant, now=now, chart=chart)
    response = get_conditional_response(request, etag=etag)
    if response is None:
        context = {
            "place": place,
            "board": board,
            # Each child with the public site's published count for it, where the poller has one.
            "children": board.children(sort),
            "sort": sort,
            "chart": chart,
            "now": now,
        }
        response = render(request, PARTS.get(part, "dashboard/area.html"), context)
    response["ETag"] = etag
    # The page and its parts share the URL; a cache must keep them apart, and ask each time.
    patch_vary_headers(response, ["HX-Request"])
    patch_cache_control(response, private=True, no_cache=True)
    return response


def _tps(request: HttpRequest, kind: str, code: str) -> HttpResponse:
    """One TPS: its status, attempts, every event and every document version."""
    board = dashboard_tps(kind=kind, tps_code=code)
    if board is None:
        raise Http404("no such TPS, or no contest of this kind there")
    context = {"place": board.place, "board": board, "now": timezone.now()}
    response = render(request, "dashboard/tps.html", context)
    patch_cache_control(response, private=True, no_cache=True)
    return response
