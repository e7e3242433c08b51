"""The staff dashboard: one area of one contest kind, live.

A page and its HTMX fragment come from one template (`dashboard/area.html#live`). Both carry an
ETag of what they show, so a poll of an unchanged area answers 304 without rendering; the
fragment of a complete area comes back without its trigger, which stops the polling.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone, translation
from django.utils.cache import get_conditional_response, patch_cache_control, patch_vary_headers
from django.views.decorators.http import require_GET

from dashboard.selectors import board_etag, dashboard_board, dashboard_home, dashboard_place

# ?sort= of the children table: by code (the default), lowest progress first, most stuck first.
SORTS = {
    "code": lambda row: row.code,
    "progress": lambda row: (row.percent is None, row.percent or 0, row.code),
    "stuck": lambda row: (-row.stuck, row.code),
}


def _staff(request: HttpRequest) -> None:
    # Until the roles issue lands, the dashboard is for KPU staff: any active staff user.
    if not request.user.is_staff:
        raise PermissionDenied


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    _staff(request)
    place = dashboard_home()
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
    place = dashboard_place(kind=kind, area_code=code)
    if place is None:
        raise Http404("no such area, or no contest of this kind there")
    board = dashboard_board(place=place)
    sort = request.GET.get("sort", "code")
    if sort not in SORTS:
        sort = "code"
    fragment = bool(request.htmx)
    variant = f"{translation.get_language()}:{sort}:{fragment}"
    etag = board_etag(board, variant=variant, now=timezone.now())
    response = get_conditional_response(request, etag=etag)
    if response is None:
        site = board.public.children if board.public else {}
        children = sorted(board.counts.children, key=SORTS[sort])
        context = {
            "place": place,
            "board": board,
            # Each child with the public site's published count for it, where the poller has one.
            "children": [(child, site.get(child.code)) for child in children],
            "sort": sort,
            "now": timezone.now(),
        }
        template = "dashboard/area.html#live" if fragment else "dashboard/area.html"
        response = render(request, template, context)
    response["ETag"] = etag
    # The page and the fragment share the URL; a cache must keep them apart, and ask each time.
    patch_vary_headers(response, ["HX-Request"])
    patch_cache_control(response, private=True, no_cache=True)
    return response
