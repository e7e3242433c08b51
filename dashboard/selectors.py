"""What a dashboard page shows below its header, and its validator.

A page reads a fixed number of queries whatever the number of children: the place (two,
regions.selectors.place_of_area), the counts (one, progress.selectors), the public site's
figure (one), the stuck list (one), the timeline (one, progress.timeline.place_chart) and, at a
desa, the TPS with their documents (two).
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from progress.selectors import STUCK_LIST_LIMIT, AreaCounts, CountsBoard, progress_of_area
from progress.timeline import Chart
from regions.selectors import Place
from uploads.models import PublicAreaProgress, Status, Upload
from uploads.selectors import uploads_of_desa, uploads_stuck_under

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
    public: PublicAreaProgress | None
    stuck: list[Upload]
    tps: list[Upload] = field(default_factory=list)  # the rows at a desa

    @property
    def site_children(self) -> dict[str, int]:
        return self.public.children if self.public else {}

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
    public = PublicAreaProgress.objects.filter(kind=place.kind, area_code=place.code).first()
    stuck = uploads_stuck_under(contest_ids=ids, area_code=place.code, limit=STUCK_LIST_LIMIT)
    tps = uploads_of_desa(contest_ids=ids, desa_code=place.code) if place.is_desa else []
    return Board(place, counts, public, stuck, tps)


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
    public = board.public
    yield public and (public.total, public.progres, public.site_ts, public.children)
    for upload in [*board.stuck, *board.tps]:
        yield upload.pk, upload.status, upload.status_since, upload.stuck, upload.stuck_reason
        yield upload.attempts, upload.document_id, getattr(upload, "last_event_at", None)
