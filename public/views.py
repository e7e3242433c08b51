"""What anyone may read, through any cache: the open data API (from any origin, docs/api.md)
and the public progress pages.

These views never touch request.user or the session, and render no template with a CSRF token,
so no middleware has a reason to set a cookie (nor `Vary: Cookie`): a CDN may keep every answer.
"""

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime

from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.response import HttpResponseBase
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import Resolver404, resolve
from django.utils import translation
from django.utils.cache import get_conditional_response
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe

from public import snapshots
from public.entries import (
    AREA_PARTS,
    CANDIDATES,
    HHCW,
    HTML,
    LONG_CACHE,
    PROGRESS_CSV,
    SHORT_CACHE,
    STALE_MARK,
    TPS_PARTS,
    WILAYAH,
    home_name,
    page_file_part,
    page_name,
)
from public.opendata import json_bytes
from public.selectors import public_page
from public.services import SnapshotUnavailable, snapshot_entry, snapshot_home
from public.snapshots import Entry, Key
from regions import codes
from regions.models import LEVEL_WORD, ContestKind, Level
from sirekap_tracker.views import retry_later
from uploads.documents import EXTENSION, page_response
from uploads.progress.selectors import CHILD_SORTS

# Set on an answer from a snapshot the workers have not confirmed lately: when it was built.
STALE_HEADER = "X-Snapshot-Stale"
NOT_BUILT = (
    "this file has not been built yet and the database cannot be read just now; "
    "try again in a few seconds"
)
METHODS = "GET, HEAD, OPTIONS"
KINDS = tuple(ContestKind.values)
PILKADA = tuple(sorted(codes.PILKADA_KINDS))


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def open_data(view: Callable[..., HttpResponseBase]) -> Callable[..., HttpResponseBase]:
    """GET and HEAD from any origin, a preflight answered, other methods 405, errors as JSON,
    and short public caching unless the view chose otherwise."""

    # No cookie is read or set and nothing changes: there is nothing to forge, and a POST must
    # get our JSON 405 rather than the CSRF failure page.
    @csrf_exempt
    @functools.wraps(view)
    def wrapped(request: HttpRequest, **kwargs) -> HttpResponseBase:
        response: HttpResponseBase
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
                if error.status == 503:
                    retry_later(response)
            response.headers.setdefault("Cache-Control", SHORT_CACHE)
        response["Access-Control-Allow-Origin"] = "*"
        response["Access-Control-Expose-Headers"] = f"ETag, {STALE_HEADER}"
        return response

    return wrapped


def _error(status: int, message: str) -> JsonResponse:
    return JsonResponse({"error": message}, status=status)


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
    kind, *chain = rest.removesuffix(suffix).split("/")
    if not codes.is_chain(chain, deepest=int(deepest)):
        raise ApiError(
            400,
            f"expected <contest>{suffix} or <contest>/<code>/.../<code>{suffix}, each code one "
            f"level below the one before, as in pkwkk/64/6409/640903{suffix}, down to a "
            f"{LEVEL_WORD[deepest]}",
        )
    return _kind(kind, kinds), chain


def _base_url(request: HttpRequest) -> str:
    return request.build_absolute_uri("/").removesuffix("/")


def _entry_response(request: HttpRequest, key: Key) -> HttpResponse | None:
    """The snapshot's entry as the answer (304 when the ETag matches), marked when stale; None
    when there is no such thing. Raises SnapshotUnavailable (see snapshot_entry)."""
    entry = snapshot_entry(key)
    if entry is None:
        return None
    stale = snapshots.is_stale(key, entry)
    # A stale answer is another representation (a banner, a flag): its own validator, so that
    # a cache never answers 304 for the fresh one with the stale one, or the other way.
    etag = entry.etag[:-1] + '-stale"' if stale else entry.etag
    response = get_conditional_response(request, etag=etag)
    if response is None:
        body = _body(request, key, entry, stale)
        response = HttpResponse(body, content_type=entry.content_type)
        for name, value in entry.headers.items():
            response[name] = value
    response["ETag"] = etag
    response["Cache-Control"] = SHORT_CACHE
    if stale:
        built = datetime.fromtimestamp(entry.built_at, tz=UTC)
        response[STALE_HEADER] = built.isoformat(timespec="seconds")
    return response


def _body(request: HttpRequest, key: Key, entry: Entry, stale: bool) -> bytes:
    body = entry.body
    if entry.base_url_token:
        body = body.replace(entry.base_url_token.encode(), _base_url(request).encode())
    if not stale:
        return body
    if entry.content_type == HTML:
        return body.replace(STALE_MARK, render_to_string("public/stale.html").encode(), 1)
    if key.name == HHCW:
        value = json.loads(body)
        value["tracker"]["stale"] = True
        return json_bytes(value)
    return body


def _api_entry(request: HttpRequest, key: Key, missing: str) -> HttpResponse:
    try:
        response = _entry_response(request, key)
    except SnapshotUnavailable as error:
        raise ApiError(503, NOT_BUILT) from error
    if response is None:
        raise ApiError(404, missing)
    return response


def _nowhere(kind: str, code: str) -> str:
    where = f"area {code}" if code else "the nation"
    return f"no {kind} contest is open over or under {where}"


# --- Views


@open_data
def hhcw(request: HttpRequest, rest: str, kinds: tuple[str, ...] = KINDS) -> HttpResponse:
    """/api/hhcw/<contest>.json, /api/hhcw/<contest>/<prov>/.../<tps>.json."""
    kind, chain = _chain(rest, suffix=".json", deepest=Level.TPS, kinds=kinds)
    code = chain[-1] if chain else ""
    missing = f"no TPS {code} in a {kind} contest" if len(code) == codes.TPS_LENGTH else None
    return _api_entry(request, Key(kind, code, HHCW), missing or _nowhere(kind, code))


@open_data
def wilayah(request: HttpRequest, rest: str, kinds: tuple[str, ...] = KINDS) -> HttpResponse:
    """/api/wilayah/<contest>/0.json (provinsi), /api/wilayah/<contest>/<prov>/....json."""
    kind, _, tail = rest.partition("/")
    if tail == "0.json":
        kind, chain = _kind(kind, kinds), list[str]()
    else:
        kind, chain = _chain(rest, suffix=".json", deepest=Level.DESA, kinds=kinds)
        if not chain:
            raise ApiError(400, f"the provinsi list is {kind}/0.json")
    code = chain[-1] if chain else ""
    return _api_entry(request, Key(kind, code, WILAYAH), _nowhere(kind, code))


@open_data
def progress(request: HttpRequest, rest: str) -> HttpResponse:
    """/api/progress/<contest>.csv (the provinsi), /api/progress/<contest>/<code>.csv."""
    if not rest.endswith(".csv"):
        raise ApiError(400, "the path must end in .csv")
    kind, slash, code = rest.removesuffix(".csv").partition("/")
    if slash and not codes.is_code(code):
        raise ApiError(400, f"not an area code: {code!r}")
    if len(code) == codes.TPS_LENGTH:
        raise ApiError(404, "a TPS has no rows: read its hhcw file")
    kind = _kind(kind, KINDS)
    return _api_entry(request, Key(kind, code, PROGRESS_CSV), _nowhere(kind, code))


@open_data
def candidates(request: HttpRequest, rest: str, kinds: tuple[str, ...] = KINDS) -> HttpResponse:
    """/api/paslon/<contest>.json: the candidates of the contest kind by area, as the KPU's
    pilkada/paslon/<contest>.json; `{}` while a contest of the kind is open without them."""
    if not rest.endswith(".json"):
        raise ApiError(400, "the path must end in .json")
    kind = rest.removesuffix(".json")
    if "/" in kind:
        raise ApiError(400, "expected <contest>.json, as in pkwkk.json: one file per contest")
    kind = _kind(kind, kinds)
    return _api_entry(request, Key(kind, "", CANDIDATES), _nowhere(kind, ""))


@open_data
def document_page(request: HttpRequest, name: str) -> HttpResponseBase:
    """/api/dokumen/<page id>.<jpg|png|pdf>: a page of a published document."""
    pk, dot, extension = name.partition(".")
    if not (pk.isascii() and pk.isdigit() and len(pk) <= 18 and dot and extension):
        raise ApiError(400, "expected /api/dokumen/<page id>.<jpg|png|pdf>")
    try:
        found = public_page(pk=int(pk))
    except DatabaseError as error:
        raise ApiError(503, "the page cannot be looked up just now; try again shortly") from error
    if found is None or EXTENSION[found.content_type] != extension:
        raise ApiError(404, f"no published page {name}")
    etag = f'"{found.sha256}"'
    response: HttpResponseBase | None = get_conditional_response(request, etag=etag)
    if response is None:
        response = page_response(
            name=str(found.file.name),
            content_type=found.content_type,
            filename=f"{found.document.upload.tps_id}-{found.number}.{extension}",
        )
    response["ETag"] = etag
    response["Cache-Control"] = LONG_CACHE
    return response


@csrf_exempt
def api_unknown(request: HttpRequest, rest: str = "") -> HttpResponse:
    """404 whatever the method: there is nothing here to allow or refuse. When the same path with
    a slash exists (/api/uploads), it says so."""
    path = request.path_info
    message = f"no such path under /api/: {path[:100]!r}"
    if not path.endswith("/") and _is_routed(f"{path}/"):
        message += f"; did you mean {path}/ (with a slash)?"
    else:
        message += "; the paths are in docs/api.md"
    response = _error(404, message)
    response["Access-Control-Allow-Origin"] = "*"
    response["Cache-Control"] = SHORT_CACHE
    return response


def _is_routed(path: str) -> bool:
    try:
        return resolve(path).func is not api_unknown
    except Resolver404:
        return False


# --- Pages. A page and its parts come from one template; the part is chosen by ?part= in the
# URL, never by a request header (HX-Request), so that a cache keyed by the URL alone (most CDNs
# ignore Vary) cannot hand a part out for a page. `live` is polled every 15 s, `timeline` every
# minute; the parts of a complete area come back without their trigger, which stops the polling.
# Each variant is an entry of the snapshot of its own (public/entries.py).


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """/: the page of the home area (the dashboard's rule, uploads.progress.selectors.progress_home)
    itself, not a redirect to it, so that the page everyone opens first is one cacheable
    answer."""
    try:
        found = snapshot_home()
        response = found and _entry_response(
            request, Key(*found, home_name(translation.get_language()))
        )
    except SnapshotUnavailable:
        return _unavailable(request)
    if not response:
        response = render(request, "public/empty.html")
        response["Cache-Control"] = SHORT_CACHE
    return response


@require_safe
def progress_page(request: HttpRequest, kind: str, code: str = "", file: str = "") -> HttpResponse:
    """/progress/<contest>/ (the nation), /progress/<contest>/<area or TPS code>/; a part or
    sort as ?part=&sort= or as a file beside it (public.entries.page_file: live.html, ...)."""
    if kind not in KINDS or (code and not codes.is_code(code)):
        raise Http404("no such contest or area code")
    part, sort = request.GET.get("part", "page"), request.GET.get("sort", "code")
    if file:
        part, sort = page_file_part(file)
        if sort not in CHILD_SORTS or (sort != "code" and len(code) == codes.TPS_LENGTH):
            raise Http404("no such sort of the page")
    if part not in (TPS_PARTS if len(code) == codes.TPS_LENGTH else AREA_PARTS):
        raise Http404("no such part of the page")
    if sort not in CHILD_SORTS or len(code) == codes.TPS_LENGTH:
        sort = "code"
    name = page_name(language=translation.get_language(), part=part, sort=sort)
    try:
        response = _entry_response(request, Key(kind, code, name))
    except SnapshotUnavailable:
        return _unavailable(request)
    if response is None:
        raise Http404("no such area, or no contest of this kind there")
    return response


def _unavailable(request: HttpRequest) -> HttpResponse:
    return retry_later(render(request, "public/unavailable.html", status=503))
