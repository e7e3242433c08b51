"""The staff dashboard: one area of one contest kind, live.

A page and its HTMX parts come from one template (`dashboard/area.html#live`, `#timeline`). Each
carries an ETag of what it shows, so a poll of an unchanged area answers 304 without rendering;
the parts of a complete area come back without their trigger, which stops the polling. The live
part of a state is rendered once and shared by everyone polling it (dashboard.shared_parts).
"""

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.utils import timezone, translation
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_GET

from accounts.guards import require, require_sees
from accounts.scope import Can, Scope, scope_of
from dashboard.selectors import area_page, dashboard_home, page_etag, tps_page
from dashboard.shared_parts import LIVE_PARTS
from regions import codes
from regions.selectors import contest_area_of
from sirekap_tracker.requests import HtmxHttpRequest
from uploads.models import StuckReason
from uploads.progress.selectors import CHILD_SORTS
from uploads.progress.timeline import contest_area_chart

# What an HTMX request asks for: the live part every 5 s, the timeline every minute (?part=).
PARTS = {"live": "dashboard/area.html#live", "timeline": "dashboard/area.html#timeline"}


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """The user's own area: the configured home for national staff, else their region. A KPPS
    has no dashboard: their page is the upload form."""
    if scope_of(request.user).is_kpps:
        return redirect("uploads:form")
    home = dashboard_home(require(request, Can.DASHBOARD))
    if home is None:
        return render(request, "dashboard/empty.html")
    kind, code = home
    if code:
        return redirect("dashboard:area", kind=kind, code=code)
    return redirect("dashboard:nation", kind=kind)


@login_required
@require_GET
def area(request: HtmxHttpRequest, kind: str, code: str = "") -> HttpResponse:
    scope = require_sees(request, code)
    if len(code) == codes.TPS_LENGTH:
        return tps_response(request, kind, code, scope)
    contest_area = contest_area_of(kind=kind, area_code=code)
    if contest_area is None:
        raise Http404("no such area, or no contest of this kind there")
    part = request.GET.get("part", "live") if request.htmx else "page"
    if part not in (*PARTS, "page"):
        raise Http404("no such part of the page")
    sort = request.GET.get("sort", "code")
    if sort not in CHILD_SORTS:
        sort = "code"
    now = timezone.now()
    page_data = area_page(contest_area=contest_area, lists=part != "timeline")
    # The live part leaves the timeline out: it changes once a minute and polls on its own.
    chart = (
        None
        if part == "live"
        else contest_area_chart(contest_area=contest_area, current=page_data.area, now=now)
    )
    variant = f"{translation.get_language()}:{sort}"
    etag = page_etag(page_data, variant=f"{variant}:{part}", now=now, chart=chart)
    response = get_conditional_response(request, etag=etag)
    if response is None:
        context = {
            "contest_area": contest_area,
            "data": page_data,
            "sort": sort,
            "chart": chart,
            "now": now,
            "region": scope.region,
        }
        live_etag = (
            etag if part == "live" else page_etag(page_data, variant=f"{variant}:live", now=now)
        )
        response = _rendered(request, part, context, live_etag)
    response["ETag"] = etag
    # The page and its parts share the URL; a cache must keep them apart, and ask each time.
    patch_vary_headers(response, ["HX-Request"])
    patch_cache_control(response, private=True, no_cache=True)
    return response


def _rendered(request: HttpRequest, part: str, context: dict, live_etag: str) -> HttpResponse:
    """The page or one of its parts. The live part, alone (a poll) or in the page, is the one
    everyone polling or opening this state shares: the page's own URL is the poll's, so a
    second staff member opening the page gets the part the first one's poll rendered, and the
    other way round (dashboard.shared_parts)."""
    if part == "timeline":
        return render(request, PARTS[part], context)
    key = (live_etag, request.get_full_path())
    # Rendered as a poll renders it: without the timeline, which polls on its own.
    live_context = {**context, "chart": None}
    live = LIVE_PARTS.get_or_render(
        key, lambda: render_to_string(PARTS["live"], live_context, request)
    )
    if part == "live":
        return HttpResponse(live)
    return render(request, "dashboard/area.html", {**context, "live": live})


def tps_response(
    request: HttpRequest, kind: str, code: str, scope: Scope, after=None, status: int = 200
) -> HttpResponse:
    """One TPS: its status, attempts, every event and every document version, who is on it, and
    what the user may do about it; `after` an action, its outcome (dashboard.work_views)."""
    page_data = tps_page(kind=kind, tps_code=code)
    if page_data is None:
        raise Http404("no such TPS, or no contest of this kind there")
    context = {
        "contest_area": page_data.contest_area,
        "data": page_data,
        "now": timezone.now(),
        "region": scope.region,
        "may_act": scope.acts_on(code),
        "stuck_reasons": StuckReason.choices,
        **(after or {}),
    }
    response = render(request, "dashboard/tps.html", context, status=status)
    patch_cache_control(response, private=True, no_cache=True)
    return response
