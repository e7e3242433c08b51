"""What each entry of the public snapshot (public/snapshots.py) is, and how it is built from the
database: the very bytes a public view answers, with their ETag.

The entries of one area share one read (`EntryInputs`): a worker rebuilding an area's page in two
languages, its poll parts, its hhcw file and its CSV reads the area's page data once.

Names (the variant of an entry is in its name, never in a header, as for the caches in front):
- `hhcw.json` the hhcw file of an area or a TPS; `wilayah.json` an area's children;
  `progress.csv` the CSV of an area's children; `candidates.json` the candidates of every
  contest of the kind (the nation's only: the KPU's paslon file);
- `page.<language>.<part>.<sort>.html` a public page or its part (views.AREA_PARTS, TPS_PARTS;
  a TPS page's sort is always `code`); `home.<language>.html` the home page (/), in the folder
  of the area it shows.
"""

import re
import uuid
from functools import cached_property

from django.http import HttpRequest, QueryDict
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.safestring import mark_safe

from public.opendata import (
    bytes_etag,
    hhcw_area,
    hhcw_etag,
    hhcw_tps,
    json_bytes,
    paslon_file,
    progress_csv,
    wilayah_list,
)
from public.selectors import PublicAreaPage, PublicTpsPage, public_area_page, public_tps_page
from public.snapshots import Entry
from regions import codes
from regions.selectors import candidates_of_kind
from uploads.progress.timeline import Chart, contest_area_chart

JSON = "application/json"
HHCW = "hhcw.json"
CANDIDATES = "candidates.json"
# Entries the refresh and the sweep leave alone (public.services): made of what changes apart
# from the uploads, they are rebuilt by what changes them. The candidate lists: by their import
# (public.services.snapshot_candidates_rebuild); a national list has thousands of rows, which
# the nation's rebuild every few seconds on election night need not read again.
REBUILT_APART = frozenset({CANDIDATES})
CSV = "text/csv; charset=utf-8"
HTML = "text/html; charset=utf-8"
AREA_PARTS = {
    "page": "public/progress.html",
    "live": "public/progress.html#live",
    "timeline": "public/progress.html#timeline",
}
TPS_PARTS = {"page": "public/tps.html", "live": "public/tps.html#live"}
# Counts change every few seconds on election night. Five seconds (the staff page's poll) lets a
# cache in front answer thousands of readers of the national file or page with one request to
# us per 5 s; for 30 s more it may answer at once while it refreshes; and if we fail (a restart, the
# database away) it keeps serving the last good file for 10 minutes rather than an error.
SHORT_CACHE = "public, max-age=5, stale-while-revalidate=30, stale-if-error=600"
# A page's URL names one stored file, never overwritten, of a document that may no longer be
# replaced once published (Status.UNPUBLISHED): its bytes never change.
LONG_CACHE = "public, max-age=31536000, immutable"
# Where a page says that its figures may be out of date (public.views), inside the polled part
# so that the banner comes and goes with the polls.
STALE_MARK = b"<!--stale-->"
INDENTATION = re.compile(r"\n\s+")


def page_name(*, language: str, part: str, sort: str) -> str:
    return f"page.{language}.{part}.{sort}.html"


def page_parts(name: str) -> list[str]:
    """The entries a page's polls ask for (its live part, with the page's sort, and its
    timeline); none for anything but a page."""
    stem, *variant = name.split(".")[:-1]
    if stem != "page" or len(variant) != 3 or variant[1] != "page":
        return []
    language, _, sort = variant
    return [page_name(language=language, part="live", sort=sort),
            page_name(language=language, part="timeline", sort="code")]  # fmt: skip


def page_file(*, part: str, sort: str) -> str:
    """A page's part and sort as a file in the area's folder of URLs, beside the page itself
    (`index`): `live`, `timeline`, `sort-progress`, `live-sort-progress`. The polls ask for these,
    not for ?part=, so that a static host or CDN serving the mirror (public/mirror.py) answers
    them as the objects they are."""
    words = [] if part == "page" else [part]
    words += [] if sort == "code" else ["sort", sort]
    return "-".join(words) or "index"


def page_file_part(file: str) -> tuple[str, str]:
    """(part, sort) of a page_file name; what it is not, the view refuses (no such part or
    sort)."""
    if file == "index":
        return "page", "code"
    part, _, sort = file.partition("-sort-") if "-sort-" in file else (file, "", "code")
    if part.startswith("sort-"):
        part, sort = "page", part.removeprefix("sort-")
    return part, sort


def home_name(language: str) -> str:
    return f"home.{language}.html"


class EntryInputs:
    """What the entries of one area (or TPS) of a contest kind are built from, each read once,
    when an entry first needs it, and the moment they are built."""

    def __init__(self, kind: str, code: str) -> None:
        self.kind = kind
        self.code = code
        self.now = timezone.now()
        # The live part as rendered, by language and sort: a page embeds it as it is.
        self.live: dict[tuple[str, str], str] = {}

    @cached_property
    def page_data(self) -> PublicAreaPage | PublicTpsPage | None:
        if len(self.code) == codes.TPS_LENGTH:
            return public_tps_page(kind=self.kind, tps_code=self.code)
        return public_area_page(kind=self.kind, area_code=self.code)

    @cached_property
    def chart(self) -> Chart | None:
        page_data = self.page_data
        if not isinstance(page_data, PublicAreaPage):
            return None
        return contest_area_chart(
            contest_area=page_data.contest_area, current=page_data.area, now=self.now
        )


def entry_build(source: EntryInputs, name: str) -> Entry | None:
    """The entry of that name, or None when there is no such thing (an unknown area, a part a
    desa does not have, a CSV of a TPS)."""
    if source.page_data is None:
        return None
    stem, *variant = name.split(".")[:-1]
    if stem == "page":
        language, part, sort = variant
        return _page(source, language=language, part=part, sort=sort, home=False)
    if stem == "home":
        return _page(source, language=variant[0], part="page", sort="code", home=True)
    if stem == "candidates":
        # The nation's only (REBUILT_APART).
        if source.code:
            return None
        candidates = paslon_file(candidates_of_kind(source.kind))
        return _bytes_entry(json_bytes(candidates), JSON, source)
    if isinstance(source.page_data, PublicTpsPage):
        return _tps_hhcw(source) if stem == "hhcw" else None
    counts = source.page_data.counts
    if stem == "hhcw":
        value = hhcw_area(counts, ts=source.now)
        return _entry(json_bytes(value), JSON, hhcw_etag(value), source)
    if stem == "wilayah":
        return _bytes_entry(json_bytes(wilayah_list(counts)), JSON, source)
    if stem == "progress":
        name = "-".join(filter(None, ["progress", source.kind, source.code]))
        disposition = {"Content-Disposition": f'inline; filename="{name}.csv"'}
        return _bytes_entry(progress_csv(counts), CSV, source, headers=disposition)
    return None


def _tps_hhcw(source: EntryInputs) -> Entry:
    """The image URLs of the KPU's files are absolute: the body carries a token where the scheme
    and host go, which the view replaces with those the request came to."""
    page_data = source.page_data
    assert isinstance(page_data, PublicTpsPage)  # entry_build asks only for a TPS's file
    row = page_data.tps
    token = uuid.uuid4().hex
    body = json_bytes(hhcw_tps(row, base_url=token, ts=source.now))
    etag = hhcw_etag(hhcw_tps(row, base_url="", ts=source.now))
    return _entry(body, JSON, etag, source, base_url_token=token)


def _page(source: EntryInputs, *, language: str, part: str, sort: str, home: bool) -> Entry | None:
    page_data = source.page_data
    if page_data is None:
        return None
    area = isinstance(page_data, PublicAreaPage)
    template = (AREA_PARTS if area else TPS_PARTS).get(part)
    # The live part leaves the timeline out: it changes once a minute and polls on its own.
    chart = source.chart if area and part != "live" else None
    if template is None or (part == "timeline" and chart is None):
        return None
    context: dict[str, object] = {
        "data": page_data,
        "contest_area": page_data.contest_area,
        "sort": sort,
        "chart": chart,
    }
    context |= {"now": source.now, "home": home}
    with translation.override(language):
        if part == "page":
            context["live_html"] = mark_safe(_live(source, language=language, sort=sort))
        request = _request(_path(source, part=part, sort=sort, home=home))
        body = _tightened(render_to_string(template, context, request=request))
    if part == "live":
        source.live[language, sort] = body
    return _bytes_entry(body.encode(), HTML, source)


def _tightened(html: str) -> str:
    """The page without the templates' indentation: a line break and the spaces after it read
    as one line break (the pages have no preformatted text). What a phone downloads is a
    quarter smaller, a tenth once compressed."""
    return INDENTATION.sub("\n", html)


def _live(source: EntryInputs, *, language: str, sort: str) -> str:
    """The live part of a page, rendered once for the page and the part's own entry."""
    if (language, sort) not in source.live:
        _page(source, language=language, part="live", sort=sort, home=False)
    return source.live[language, sort]


def _path(source: EntryInputs, *, part: str, sort: str, home: bool) -> str:
    """The URL the page answers, in the active language: the language links of the page are
    this one in the other language."""
    if home:
        return reverse("home")
    arguments = [source.kind, source.code] if source.code else [source.kind]
    path = reverse("progress:area" if source.code else "progress:nation", args=arguments)
    query = QueryDict(mutable=True)
    if part != "page":
        query["part"] = part
    if sort != "code":
        query["sort"] = sort
    return f"{path}?{query.urlencode()}" if query else path


def _request(path: str) -> HttpRequest:
    """A request for a page rendered by a worker: its path is all the templates read of it."""
    request = HttpRequest()
    request.path, _, query = path.partition("?")
    request.path_info = request.path
    request.META = {"QUERY_STRING": query, "SERVER_NAME": "snapshot", "SERVER_PORT": "80"}
    request.GET = QueryDict(query)
    return request


def _bytes_entry(body: bytes, content_type: str, source: EntryInputs, **extra) -> Entry:
    return _entry(body, content_type, bytes_etag(body), source, **extra)


def _entry(body: bytes, content_type: str, etag: str, source: EntryInputs, **extra) -> Entry:
    return Entry(body, content_type, etag, built_at=source.now.timestamp(), **extra)
