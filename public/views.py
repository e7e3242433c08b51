"""What anyone may read, through any cache: the open data API (from any origin, docs/api.md)
and the public progress pages.

These views never touch request.user or the session, and render no template with a CSRF token,
so no middleware has a reason to set a cookie (nor `Vary: Cookie`): a CDN may keep every answer.
"""

import functools
from collections.abc import Callable

from django.core.files.storage import default_storage
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone, translation
from django.utils.cache import get_conditional_response
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from progress.selectors import CHILD_SORTS, AreaCounts
from progress.timeline import place_chart
from public.selectors import (
    TPS_CODE_LENGTH,
    AreaBoard,
    TpsBoard,
    bytes_etag,
    hhcw_area,
    hhcw_etag,
    hhcw_tps,
    json_bytes,
    progress_board,
    progress_csv,
    progress_etag,
    progress_tps,
    public_area,
    public_page,
    public_tps,
    wilayah_list,
)
from regions.models import CODE_LENGTH, LEVEL_WORD, ContestKind, Level
from regions.selectors import home_place
from uploads.documents import EXTENSION

JSON = "application/json"
# Counts change every few seconds on election night. Five seconds (the staff page's poll) lets a
# cache in front answer thousands of readers of the national file or page with one request to
# us per 5 s; for 30 s more it may answer at once while it refreshes; and if we fail (a restart, the
# database away) it keeps serving the last good file for 10 minutes rather than an error.
SHORT_CACHE = "public, max-age=5, stale-while-revalidate=30, stale-if-error=600"
# A page's URL names one stored file, never overwritten, of a document that may no longer be
# replaced once published (uploads.models.REPLACEABLE): its bytes never change.
LONG_CACHE = "public, max-age=31536000, immutable"
METHODS = "GET, HEAD, OPTIONS"
KINDS = tuple(ContestKind.values)
PILKADA = (ContestKind.PKWKP.value, ContestKind.PKWKK.value)
LENGTHS = list(CODE_LENGTH.values())


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def open_data(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """GET and HEAD from any origin, a preflight answered, other methods 405, errors as JSON,
    and short public caching unless the view chose otherwise."""

    # No cookie is read or set and nothing changes: there is nothing to forge, and a POST must
    # get our JSON 405 rather than the CSRF failure page.
    @csrf_exempt
    @functools.wraps(view)
    def wrapped(request: HttpRequest, **kwargs) -> HttpResponse:
        if request.method == "OPTIONS":
            response = HttpResponse(status=204)
            response["Access-Control-Allow-Methods"] = METHODS
            response["Access-Control-Allow-Headers"] = "*"
            response["Access-Control-Max-Age"] = "86400"
        elif request.method not in ("GET", "HEAD"):
            response = _error(405, f"method {request.method} is not allowed; use GET")
            response["Allow"] = METHODS
        else:
            try:
                response = view(request, **kwargs)
            except ApiError as error:
                response = _error(error.status, str(error))
            response.headers.setdefault("Cache-Control", SHORT_CACHE)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Expose-Headers"] = "ETag"
        return response

    return wrapped


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


def _send(request: HttpRequest, body: bytes, content_type: str, etag: str) -> HttpResponse:
    response = get_conditional_response(request, etag=etag)
    if response is None:
        response = HttpResponse(body, content_type=content_type)
    response["ETag"] = etag
    return response


# --- Paths


def _kind(kind: str, kinds: tuple[str, ...]) -> str:
    if kind not in kinds:
        raise ApiError(404, f"unknown contest {kind!r}; one of {', '.join(kinds)}")
    return kind


def _chain(
    rest: str, *, suffix: str, deepest: Level, kinds: tuple[str, ...]
) -> tuple[str, list[str]]:
    """(contest, codes) of "<contest>.json" or "<contest>/64/6409/....json": each code one level
    below the one before and starting with it, as the KPU's paths are, at most `deepest` deep."""
    if not rest.endswith(suffix):
        raise ApiError(400, f"the path must end in {suffix}")
    kind, *codes = rest.removesuffix(suffix).split("/")
    if not _is_chain(codes, LENGTHS[: int(deepest)]):
        raise ApiError(
            400,
            f"expected <contest>{suffix} or <contest>/<code>/.../<code>{suffix}, each code one "
            f"level below the one before, as in pkwkk/64/6409/640903{suffix}, down to a "
            f"{LEVEL_WORD[deepest]}",
        )
    return _kind(kind, kinds), codes


def _is_chain(codes: list[str], lengths: list[int]) -> bool:
    return len(codes) <= len(lengths) and all(
        code.isascii()
        and code.isdigit()
        and len(code) == lengths[depth]
        and code.startswith(codes[depth - 1] if depth else "")
        for depth, code in enumerate(codes)
    )


def _area(kind: str, code: str) -> AreaCounts:
    counts = public_area(kind=kind, area_code=code)
    if counts is None:
        where = f"area {code}" if code else "the nation"
        raise ApiError(404, f"no {kind} contest is open over or under {where}")
    return counts


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").removesuffix("/")


# --- Views


@open_data
def hhcw(request: HttpRequest, rest: str, kinds: tuple[str, ...] = KINDS) -> HttpResponse:
    """/api/hhcw/<contest>.json, /api/hhcw/<contest>/<prov>/.../<tps>.json."""
    kind, codes = _chain(rest, suffix=".json", deepest=Level.TPS, kinds=kinds)
    code = codes[-1] if codes else ""
    if len(code) == TPS_CODE_LENGTH:
        row = public_tps(kind=kind, tps_code=code)
        if row is None:
            raise ApiError(404, f"no TPS {code} in a {kind} contest")
        value = hhcw_tps(row, base_url=_base_url(request), ts=timezone.now())
    else:
        value = hhcw_area(_area(kind, code), ts=timezone.now())
    return _send(request, json_bytes(value), JSON, hhcw_etag(value))


@open_data
def wilayah(request: HttpRequest, rest: str, kinds: tuple[str, ...] = KINDS) -> HttpResponse:
    """/api/wilayah/<contest>/0.json (provinsi), /api/wilayah/<contest>/<prov>/....json."""
    kind, _, tail = rest.partition("/")
    if tail == "0.json":
        kind, codes = _kind(kind, kinds), []
    else:
        kind, codes = _chain(rest, suffix=".json", deepest=Level.DESA, kinds=kinds)
        if not codes:
            raise ApiError(400, f"the provinsi list is {kind}/0.json")
    body = json_bytes(wilayah_list(_area(kind, codes[-1] if codes else "")))
    return _send(request, body, JSON, bytes_etag(body))


@open_data
def progress(request: HttpRequest, rest: str) -> HttpResponse:
    """/api/progress/<contest>.csv (the provinsi), /api/progress/<contest>/<code>.csv."""
    if not rest.endswith(".csv"):
        raise ApiError(400, "the path must end in .csv")
    kind, slash, code = rest.removesuffix(".csv").partition("/")
    if slash and not (code.isascii() and code.isdigit() and len(code) in LENGTHS):
        raise ApiError(400, f"not an area code: {code!r}")
    if len(code) == TPS_CODE_LENGTH:
        raise ApiError(404, "a TPS has no rows: read its hhcw file")
    body = progress_csv(_area(_kind(kind, KINDS), code))
    response = _send(request, body, "text/csv; charset=utf-8", bytes_etag(body))
    name = "-".join(filter(None, ["progress", kind, code]))
    response["Content-Disposition"] = f'inline; filename="{name}.csv"'
    return response


@open_data
def page(request: HttpRequest, name: str) -> HttpResponse:
    """/api/dokumen/<page id>.<jpg|png|pdf>: a page of a published document."""
    pk, dot, extension = name.partition(".")
    if not (pk.isascii() and pk.isdigit() and len(pk) <= 18 and dot and extension):
        raise ApiError(400, "expected /api/dokumen/<page id>.<jpg|png|pdf>")
    found = public_page(pk=int(pk))
    if found is None or EXTENSION[found.content_type] != extension:
        raise ApiError(404, f"no published page {name}")
    etag = f'"{found.sha256}"'
    response = get_conditional_response(request, etag=etag)
    if response is None:
        response = FileResponse(
            default_storage.open(found.file.name, "rb"),
            content_type=found.content_type,
            filename=f"{found.document.upload.tps_id}-{found.number}.{extension}",
        )
    response["ETag"] = etag
    response["Cache-Control"] = LONG_CACHE
    return response


# --- Pages. A page and its parts come from one template; the part is chosen by ?part= in the
# URL, never by a request header (HX-Request), so that a cache keyed by the URL alone (most CDNs
# ignore Vary) cannot hand a part out for a page. `live` is polled every 15 s, `timeline` every
# minute; the parts of a complete area come back without their trigger, which stops the polling.

AREA_PARTS = {
    "page": "public/progress.html",
    "live": "public/progress.html#live",
    "timeline": "public/progress.html#timeline",
}
TPS_PARTS = {"page": "public/tps.html", "live": "public/tps.html#live"}


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """/: the page of the home area (the dashboard's rule, regions.selectors.home_place)
    itself, not a redirect to it, so that the page everyone opens first is one cacheable
    answer."""
    found = home_place()
    board = found and progress_board(kind=found[0], area_code=found[1])
    if not board:
        response = render(request, "public/empty.html")
        response["Cache-Control"] = SHORT_CACHE
        return response
    return _board_response(request, board, part="page", sort="code", home=True)


@require_safe
def progress_page(request: HttpRequest, kind: str, code: str = "") -> HttpResponse:
    """/progress/<contest>/ (the nation), /progress/<contest>/<area or TPS code>/."""
    part = request.GET.get("part", "page")
    if len(code) == TPS_CODE_LENGTH:
        board = progress_tps(kind=kind, tps_code=code)
    else:
        board = progress_board(kind=kind, area_code=code, lists=part != "timeline")
    if board is None:
        raise Http404("no such area, or no contest of this kind there")
    sort = request.GET.get("sort", "code")
    return _board_response(request, board, part=part, sort=sort if sort in CHILD_SORTS else "code")


def _board_response(
    request: HttpRequest, board: AreaBoard | TpsBoard, *, part: str, sort: str, home: bool = False
) -> HttpResponse:
    template = (AREA_PARTS if isinstance(board, AreaBoard) else TPS_PARTS).get(part)
    if template is None:
        raise Http404("no such part of the page")
    now = timezone.now()
    # The live part leaves the timeline out: it changes once a minute and polls on its own.
    chart = None
    if isinstance(board, AreaBoard) and part != "live":
        chart = place_chart(place=board.place, current=board.area, now=now)
    if part == "timeline" and chart is None:
        raise Http404("a desa has no timeline")
    variant = f"{translation.get_language()}:{sort}:{part}:{home}"
    etag = progress_etag(board, variant=variant, now=now, chart=chart)
    response = get_conditional_response(request, etag=etag)
    if response is None:
        context = {"board": board, "place": board.place, "sort": sort, "chart": chart}
        response = render(request, template, {**context, "now": now, "home": home})
    response["ETag"] = etag
    response["Cache-Control"] = SHORT_CACHE
    return response
