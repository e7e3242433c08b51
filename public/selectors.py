"""What the public progress pages show, read a fixed number of times whatever the area: an
area's page, a TPS's page, and a page of a published document. Nothing here reads an operator, a
note, an event or a token. The open data is built from these reads (public.opendata).
"""

from dataclasses import dataclass, replace
from datetime import datetime

from django.db.models import Count, F, Max, Min, Q

from public.models import MirroredObject
from public.opendata import PUBLIC_STATUS, PageImage, TpsRow, page_url, public_counts
from regions import codes
from regions.selectors import ContestArea, contest_area_of, contest_areas_of
from uploads.models import Page, Status, Upload
from uploads.progress.selectors import (
    STUCK_LIST_LIMIT,
    AreaCounts,
    CountsPage,
    SiteFigure,
    progress_of_area,
)
from uploads.selectors import (
    StuckTps,
    site_figure,
    site_figures,
    uploads_of_desa,
    uploads_stuck_under,
    uploads_stuck_under_areas,
)


def _place_and_upload_of_tps(kind: str, tps_code: str) -> tuple[ContestArea, Upload] | None:
    """The TPS's desa (as a contest area) and its upload of the kind. Where two contests of one kind
    cover the TPS (Pemilu contests opened over nested regions), the first one opened counts:
    the KPU keeps one file per kind and TPS."""
    if len(tps_code) != codes.TPS_LENGTH:
        return None
    contest_area = contest_area_of(kind=kind, area_code=tps_code[: codes.DESA_LENGTH])
    if contest_area is None:
        return None
    uploads = uploads_of_desa(contest_ids=contest_area.contest_ids, desa_code=tps_code)
    upload = min(uploads, key=lambda upload: upload.contest_id, default=None)
    return None if upload is None else (contest_area, upload)


def public_page(*, pk: int) -> Page | None:
    """A page anyone may see: of the current document of a published upload. One query."""
    rows = Page.objects.select_related("document__upload").filter(
        pk=pk,
        document__upload__status=Status.PUBLISHED,
        document__upload__document=F("document"),
    )
    return rows.first()


# --- Pages: what a public progress page shows. Besides the contest area (areas and contests,
# public by nature) only plain values, no upload or document instance, so that nothing a template
# is handed can lead to an operator, a note, an event or a token, and the snapshot can keep them.

# The counts a page lists, as the open data gives them (`sending` counted as `queued`).
PAGE_STATUSES = ("published", "delivered", "queued", "retrying", "rejected", "missing")


@dataclass(frozen=True)
class PublicAreaPage(CountsPage):
    """Everything a public area page shows."""

    contest_area: ContestArea
    counts: AreaCounts
    site: SiteFigure | None
    stuck: list[StuckTps]  # the longest stuck first, at most STUCK_LIST_LIMIT
    tps: list[TpsRow]  # at a desa

    @property
    def by_status(self) -> list[tuple[str, str, int]]:
        counts = public_counts(self.area)
        return [(status, str(Status(status).label), counts[status]) for status in PAGE_STATUSES]


@dataclass(frozen=True)
class PublicTpsPage:
    """Everything a public TPS page shows: the TPS, and its desa as the contest area above it."""

    contest_area: ContestArea
    tps: TpsRow

    @property
    def complete(self) -> bool:
        return self.tps.published


def public_area_page(*, kind: str, area_code: str, lists: bool = True) -> PublicAreaPage | None:
    """An area's public page ("" the nation, down to a desa), or None when the area is unknown,
    a TPS, or in no contest of the kind. Five queries (four for the nation, seven at a desa).
    Without lists (the timeline part), only the counts: no site figure, stuck list or TPS."""
    contest_area = contest_area_of(kind=kind, area_code=area_code)
    if contest_area is None:
        return None
    ids = contest_area.contest_ids
    counts = progress_of_area(contest_ids=ids, area_code=area_code)
    if not lists:
        return PublicAreaPage(contest_area=contest_area, counts=counts, site=None, stuck=[], tps=[])
    return PublicAreaPage(
        contest_area=contest_area,
        counts=counts,
        site=site_figure(kind=kind, area_code=area_code),
        stuck=_stuck_under(ids, area_code),
        tps=_tps_rows(ids, area_code) if contest_area.is_desa else [],
    )


def public_area_pages(*, kind: str, area_codes: list[str]) -> dict[str, PublicAreaPage]:
    """public_area_page of many areas at once (the snapshot's refresh), by code, those that have
    one: what a page reads once per area (its contest area, site figure and stuck list) read
    for all of them in one query each; the counts one query per area, a desa's TPS two more."""
    contest_areas = contest_areas_of(kind=kind, area_codes=area_codes)
    found = list(contest_areas)
    sites = site_figures(kind=kind, area_codes=found)
    contest_ids = sorted({pk for place in contest_areas.values() for pk in place.contest_ids})
    stuck = uploads_stuck_under_areas(
        contest_ids=contest_ids, area_codes=found, limit=STUCK_LIST_LIMIT
    )
    return {
        code: PublicAreaPage(
            contest_area=place,
            counts=progress_of_area(contest_ids=place.contest_ids, area_code=code),
            site=sites.get(code),
            stuck=_public_stuck(stuck[code]),
            tps=_tps_rows(place.contest_ids, code) if place.is_desa else [],
        )
        for code, place in contest_areas.items()
    }


def public_tps_page(*, kind: str, tps_code: str) -> PublicTpsPage | None:
    """A TPS's public page, or None when no contest of the kind covers it. Four queries."""
    found = _place_and_upload_of_tps(kind, tps_code)
    if found is None:
        return None
    contest_area, upload = found
    return PublicTpsPage(contest_area, _tps_row(upload))


def _stuck_under(contest_ids: list[int], area_code: str) -> list[StuckTps]:
    """The stuck TPS below an area, in trouble longest first, without their events: what
    operators write there is not for the public."""
    rows = uploads_stuck_under(contest_ids=contest_ids, area_code=area_code, limit=STUCK_LIST_LIMIT)
    return _public_stuck(rows)


def _public_stuck(rows: list[StuckTps]) -> list[StuckTps]:
    """Stuck rows in the public's statuses (`sending` is `queued`)."""
    return [replace(row, status=PUBLIC_STATUS[row.status]) for row in rows]


def _tps_rows(contest_ids: list[int], desa_code: str) -> list[TpsRow]:
    """A desa's TPS, one row each (the first contest opened, as `public_tps_page`). Two queries."""
    first: dict[str, Upload] = {}
    for upload in uploads_of_desa(contest_ids=contest_ids, desa_code=desa_code):
        first.setdefault(upload.tps_id, upload)
    return [_tps_row(upload) for upload in first.values()]


def _tps_row(upload: Upload) -> TpsRow:
    """upload: with tps, document and document.pages loaded (uploads_of_desa)."""
    published = upload.status == Status.PUBLISHED
    document = upload.document
    pages = list(document.pages.all()) if document is not None and published else []
    site_images = upload.public_images if published and not pages else None
    return TpsRow(
        code=upload.tps_id,
        name=upload.tps.name,
        status=PUBLIC_STATUS[upload.status],
        status_since=upload.status_since,
        since=upload.phase_since,
        stuck=upload.stuck,
        stuck_reason=upload.stuck_reason,
        stuck_since=upload.stuck_since,
        trouble_since=upload.trouble_since if upload.stuck else None,
        delivered_at=upload.delivered_at,
        published_at=upload.published_at,
        sha256=document.sha256 if document is not None else "",
        pages=tuple(
            PageImage(
                page.number, page_url(page, base_url=""), page.sha256, page.size, page.content_type
            )
            for page in pages
        ),
        site_images=tuple(url for url in site_images or [] if isinstance(url, str)),
    )


# --- The mirror on object storage (public/mirror.py)


@dataclass(frozen=True)
class MirrorState:
    pending: int  # objects to put or delete
    oldest_pending: datetime | None  # when the longest waiting wish was made
    failing: int  # of those, objects whose last attempt failed
    last_error: str  # of one of them
    last_pushed: datetime | None  # the latest put or delete that worked


def public_mirror_state() -> MirrorState:
    """What waits to be put on the bucket, and how the puts go. One query over the partial
    index of pending rows, plus one for the last error and one for the last push."""
    waiting = MirroredObject.objects.filter(pending=True).aggregate(
        pending=Count("key"),
        oldest=Min("changed_at"),
        failing=Count("key", filter=Q(attempts__gt=0)),
    )
    failed = MirroredObject.objects.filter(pending=True, attempts__gt=0).order_by("-attempts")
    last_error = failed.values_list("last_error", flat=True).first() or ""
    last_pushed = MirroredObject.objects.aggregate(last=Max("pushed_at"))["last"]
    return MirrorState(
        waiting["pending"], waiting["oldest"], waiting["failing"], last_error, last_pushed
    )
