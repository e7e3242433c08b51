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
import threading
import uuid
from datetime import datetime
from functools import cached_property

from django.core.signals import setting_changed
from django.dispatch import receiver
from django.http import HttpRequest, QueryDict
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.html import conditional_escape
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
from public.selectors import (
    PublicAreaPage,
    PublicTpsPage,
    public_area_page,
    public_area_pages,
    public_tps_page,
)
from public.snapshots import Entry
from regions import codes
from regions.selectors import ContestArea, candidates_of_kind
from uploads.progress.selectors import has_timeline
from uploads.progress.templatetags.progress import percent
from uploads.progress.timeline import Chart, contest_area_chart

JSON = "application/json"
HHCW = "hhcw.json"
WILAYAH = "wilayah.json"
PROGRESS_CSV = "progress.csv"
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

    def __init__(self, kind: str, code: str, *, now: datetime | None = None) -> None:
        self.kind = kind
        self.code = code
        self.now = now or timezone.now()
        # The parts as rendered, by language, part and sort: a page embeds them as they are.
        self.parts: dict[tuple[str, str, str], str] = {}

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


def entry_inputs_of_areas(kind: str, area_codes: list[str]) -> dict[str, EntryInputs]:
    """EntryInputs of many areas of a contest kind (the refresh), by code, the page data of
    those above the TPS read together (public_area_pages): the same entries as each area's own
    EntryInputs would build, for a fraction of the queries."""
    now = timezone.now()
    above_tps = [code for code in area_codes if len(code) != codes.TPS_LENGTH]
    pages = public_area_pages(kind=kind, area_codes=above_tps)
    inputs = {code: EntryInputs(kind, code, now=now) for code in area_codes}
    for code in above_tps:
        # Set before anything reads it: the cached property is not read again.
        inputs[code].page_data = pages.get(code)
    return inputs


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
        if area and part == "page":
            body = _area_page(source, template, context)
        else:
            if part == "page":
                context["live_html"] = mark_safe(_live(source, language=language, sort=sort))
            request = _request(_path(source, part=part, sort=sort, home=home))
            body = _tightened(render_to_string(template, context, request=request))
    if part in ("live", "timeline"):
        source.parts[language, part, sort] = body
    return _bytes_entry(body.encode(), HTML, source)


# The page around an area's figures (its head, breadcrumb, links and footer) is drawn from the
# regions and contests alone, which change with an import, not with the counts: it is rendered
# once per area, language, sort and contests (_shell_key) with these tokens where the figures
# and the parts go, and each build puts them in. The same bytes as rendering the whole page.
_SHELL_TOKENS = {
    name: f"<!--{uuid.uuid4().hex}-->" for name in ("title_percent", "live_html", "timeline_html")
}
_shells: dict[tuple, str] = {}
_shells_lock = threading.Lock()
SHELLS_KEPT = 4096  # about 6 KB each


@receiver(setting_changed, dispatch_uid="public-entries-shells-forget")
def _shells_forget(**kwargs) -> None:
    """A setting changed (a test's): the page around may be drawn otherwise (the static files'
    URLs, the languages, the URLconf)."""
    with _shells_lock:
        _shells.clear()


def _area_page(source: EntryInputs, template: str, context: dict[str, object]) -> str:
    page_data = source.page_data
    assert isinstance(page_data, PublicAreaPage)  # _page asks only for an area's page
    language, sort, home = translation.get_language(), str(context["sort"]), bool(context["home"])
    key = _shell_key(page_data.contest_area, language=language, sort=sort, home=home)
    shell = _shells.get(key)
    if shell is None:
        tokens = {name: mark_safe(token) for name, token in _SHELL_TOKENS.items()}
        request = _request(_path(source, part="page", sort=sort, home=home))
        shell = render_to_string(template, context | tokens, request=request)
        with _shells_lock:
            if len(_shells) >= SHELLS_KEPT:
                _shells.pop(next(iter(_shells)))
            _shells[key] = shell
    figures = {
        "title_percent": conditional_escape(percent(page_data.area.percent)),
        "live_html": _part(source, language=language, part="live", sort=sort),
        "timeline_html": _part(source, language=language, part="timeline", sort="code")
        if context["chart"] is not None
        else "",
    }
    for name, token in _SHELL_TOKENS.items():
        shell = shell.replace(token, figures[name], 1)
    return _tightened(shell)


def _shell_key(contest_area: ContestArea, *, language: str, sort: str, home: bool) -> tuple:
    """Everything the page around the figures is drawn from (public/progress.html outside its
    parts, public/header.html, base.html): the place, its contests, the page's URL."""
    area = contest_area.area
    return (
        contest_area.kind,
        contest_area.code,
        language,
        sort,
        home,
        area and (area.name, area.title),
        tuple((crumb.code, crumb.name) for crumb in contest_area.breadcrumb),
        contest_area.contest_name,
        has_timeline(contest_area.code),
    )


def _tightened(html: str) -> str:
    """The page without the templates' indentation: a line break and the spaces after it read
    as one line break (the pages have no preformatted text). What a phone downloads is a
    quarter smaller, a tenth once compressed."""
    return INDENTATION.sub("\n", html)


def _live(source: EntryInputs, *, language: str, sort: str) -> str:
    """The live part of a page, rendered once for the page and the part's own entry."""
    return _part(source, language=language, part="live", sort=sort)


def _part(source: EntryInputs, *, language: str, part: str, sort: str) -> str:
    """A part of a page (live, timeline), rendered once for the page and the part's own entry."""
    if (language, part, sort) not in source.parts:
        _page(source, language=language, part=part, sort=sort, home=False)
    return source.parts[language, part, sort]


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
