"""What a dashboard page shows below its header, and its validator.

A page reads a fixed number of queries whatever the number of children: the contest area (two,
regions.selectors.contest_area), the counts (one, uploads.progress.selectors), the public
site's figure (one), the stuck list (one), the timeline (one,
uploads.progress.timeline.contest_area_chart) and, at a desa, the TPS with their documents (two).
"""

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Prefetch

from accounts.scope import Scope
from regions import codes
from regions.models import ContestKind
from regions.selectors import ContestArea, contest_area_of
from uploads.models import Document, Status, Upload, UploadEvent
from uploads.progress.selectors import (
    STUCK_LIST_LIMIT,
    AreaCounts,
    CountsPage,
    SiteFigure,
    progress_home,
    progress_of_area,
)
from uploads.progress.timeline import Chart
from uploads.selectors import (
    StuckTps,
    site_figure,
    uploads_of_desa,
    uploads_stuck_under,
)

# How the counts are listed: what is done first, then what is on its way, then what is not.
STATUS_ORDER = [
    (status, Status(status).label)
    for status in ("published", "delivered", "sending", "queued", "retrying", "rejected", "missing")
]


@dataclass(frozen=True)
class AreaPage(CountsPage):
    """Everything one dashboard page shows below its header."""

    contest_area: ContestArea
    counts: AreaCounts
    site: SiteFigure | None
    stuck: list[StuckTps]
    tps: list[Upload] = field(default_factory=list)  # the rows at a desa

    @property
    def by_status(self) -> list[tuple[str, str, int]]:
        """(status, label, TPS) in the order of the lifecycle's end, published first."""
        return [(status, str(label), getattr(self.area, status)) for status, label in STATUS_ORDER]


def area_page(*, contest_area: ContestArea, lists: bool = True) -> AreaPage:
    """The counts of the page's area and, with lists, what else the page shows (the public
    site's figure, the stuck list, a desa's TPS): the timeline part needs the counts only."""
    ids = contest_area.contest_ids
    counts = progress_of_area(contest_ids=ids, area_code=contest_area.code)
    if not lists:
        return AreaPage(contest_area, counts, None, [])
    site = site_figure(kind=contest_area.kind, area_code=contest_area.code)
    stuck = uploads_stuck_under(
        contest_ids=ids, area_code=contest_area.code, limit=STUCK_LIST_LIMIT, events=True
    )
    tps = (
        uploads_of_desa(contest_ids=ids, desa_code=contest_area.code)
        if contest_area.is_desa
        else []
    )
    return AreaPage(contest_area, counts, site, stuck, tps)


def page_etag(
    page_data: AreaPage, *, variant: str, now: datetime, chart: Chart | None = None
) -> str:
    """A strong validator of what the page would show: its data, the variant (language, sort,
    fragment or page) and the minute, since the page shows ages in minutes."""
    digest = hashlib.sha256()
    for part in [*_etag_parts(page_data, variant, now), chart]:
        digest.update(repr(part).encode())
        digest.update(b"\0")
    return f'"{digest.hexdigest()[:32]}"'


def _etag_parts(page_data: AreaPage, variant: str, now: datetime):
    yield variant, now.replace(second=0, microsecond=0).isoformat()
    yield page_data.counts
    yield page_data.site
    yield from page_data.stuck
    for upload in page_data.tps:
        yield upload.pk, upload.status, upload.status_since, upload.stuck, upload.stuck_reason
        yield upload.attempts, upload.document_id, upload.failing_since


@dataclass(frozen=True)
class TpsPage:
    """Everything the staff page of one TPS shows: its desa as the contest area above it, and its
    upload of each contest of the kind, with every document version and every event."""

    contest_area: ContestArea
    tps_code: str
    uploads: Sequence[Upload]  # with .versions (documents, newest first, with pages) and .history

    @property
    def tps(self):
        return self.uploads[0].tps


def tps_page(*, kind: str, tps_code: str) -> TpsPage | None:
    """The staff page of a TPS, or None when no contest of the kind covers it. Six queries."""
    if not codes.is_code(tps_code, [codes.TPS_LENGTH]):
        return None
    contest_area = contest_area_of(kind=kind, area_code=tps_code[: codes.DESA_LENGTH])
    if contest_area is None:
        return None
    versions = Document.objects.order_by("-created_at", "-pk").prefetch_related("pages")
    history = UploadEvent.objects.select_related("actor").order_by("id")
    uploads = list(
        Upload.objects.filter(contest_id__in=contest_area.contest_ids, tps_id=tps_code)
        .select_related("tps", "contest", "document", "taken_by")
        .prefetch_related(
            Prefetch("documents", versions.select_related("uploaded_by"), to_attr="versions"),
            Prefetch("events", history, to_attr="history"),
        )
        .order_by("contest_id")
    )
    return TpsPage(contest_area, tps_code, uploads) if uploads else None


def dashboard_home(scope: Scope) -> tuple[str, str] | None:
    """(kind, area code) where a user's dashboard opens: the progress home when it lies in their
    region (national staff, or a region that holds it), else their region under the first
    contest kind held there. None when no contest is open in it."""
    home = progress_home()
    if home is None or scope.region is None or scope.sees(home[1]):
        return home
    for kind in ContestKind.values:
        if contest_area_of(kind=kind, area_code=scope.region) is not None:
            return kind, scope.region
    return None
