"""What a dashboard page shows below its header, and its validator.

A page reads a fixed number of queries whatever the number of children: the place (two,
regions.selectors.place_of_area), the counts (one, progress.selectors), the public site's
figure (one), the stuck list (one), the timeline (one, progress.timeline.place_chart) and, at a
desa, the TPS with their documents (two).
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Prefetch

from progress.selectors import STUCK_LIST_LIMIT, AreaCounts, CountsBoard, progress_of_area
from progress.timeline import Chart
from regions.models import CODE_LENGTH, Level
from regions.selectors import Place, place_of_area
from uploads.models import Document, Status, Upload, UploadEvent
from uploads.selectors import (
    SiteFigure,
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
class Board(CountsBoard):
    """Everything one dashboard page shows below its header."""

    place: Place
    counts: AreaCounts
    site: SiteFigure | None
    stuck: list[StuckTps]
    tps: list[Upload] = field(default_factory=list)  # the rows at a desa

    @property
    def site_children(self) -> dict[str, int]:
        return self.site.children if self.site else {}

    @property
    def by_status(self) -> list[tuple[str, str, int]]:
        """(status, label, TPS) in the order of the lifecycle's end, published first."""
        return [(status, label, getattr(self.area, status)) for status, label in STATUS_ORDER]


def dashboard_board(*, place: Place, lists: bool = True) -> Board:
    """The counts of the page's area and, with lists, what else the page shows (the public
    site's figure, the stuck list, a desa's TPS): the timeline part needs the counts only."""
    ids = place.contest_ids
    counts = progress_of_area(contest_ids=ids, area_code=place.code)
    if not lists:
        return Board(place, counts, None, [])
    site = site_figure(kind=place.kind, area_code=place.code)
    stuck = uploads_stuck_under(
        contest_ids=ids, area_code=place.code, limit=STUCK_LIST_LIMIT, events=True
    )
    tps = uploads_of_desa(contest_ids=ids, desa_code=place.code) if place.is_desa else []
    return Board(place, counts, site, stuck, tps)


def board_etag(board: Board, *, variant: str, now: datetime, chart: Chart | None = None) -> str:
    """A strong validator of what the page would show: its data, the variant (language, sort,
    fragment or page) and the minute, since the page shows ages in minutes."""
    digest = hashlib.sha256()
    for part in [*_etag_parts(board, variant, now), chart]:
        digest.update(repr(part).encode())
        digest.update(b"\0")
    return f'"{digest.hexdigest()[:32]}"'


def _etag_parts(board: Board, variant: str, now: datetime):
    yield variant, now.replace(second=0, microsecond=0).isoformat()
    yield board.counts
    yield board.site
    yield from board.stuck
    for upload in board.tps:
        yield upload.pk, upload.status, upload.status_since, upload.stuck, upload.stuck_reason
        yield upload.attempts, upload.document_id, upload.failing_since


@dataclass(frozen=True)
class TpsBoard:
    """Everything the staff page of one TPS shows: its desa as the place above it, and its
    upload of each contest of the kind, with every document version and every event."""

    place: Place
    tps_code: str
    uploads: list[Upload]  # with .versions (documents, newest first, with pages) and .history

    @property
    def tps(self):
        return self.uploads[0].tps


def dashboard_tps(*, kind: str, tps_code: str) -> TpsBoard | None:
    """The staff page of a TPS, or None when no contest of the kind covers it. Six queries."""
    if len(tps_code) != CODE_LENGTH[Level.TPS] or not tps_code.isdigit():
        return None
    place = place_of_area(kind=kind, area_code=tps_code[: CODE_LENGTH[Level.DESA]])
    if place is None:
        return None
    versions = Document.objects.order_by("-created_at", "-pk").prefetch_related("pages")
    history = UploadEvent.objects.select_related("actor").order_by("id")
    uploads = list(
        Upload.objects.filter(contest_id__in=place.contest_ids, tps_id=tps_code)
        .select_related("tps", "contest", "document")
        .prefetch_related(
            Prefetch("documents", versions.select_related("uploaded_by"), to_attr="versions"),
            Prefetch("events", history, to_attr="history"),
        )
        .order_by("contest_id")
    )
    return TpsBoard(place, tps_code, uploads) if uploads else None
