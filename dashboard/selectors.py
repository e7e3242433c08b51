"""What a dashboard page shows: where it stands (area, contest kind) and everything read there.

A page reads a fixed number of queries whatever the number of children: the place (two), the
counts (one, progress.selectors), the public site's figure (one), the stuck list (one), the
timeline (one) and, at a desa, the TPS with their documents (two).
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q

from progress.selectors import (
    AreaCounts,
    Counts,
    completion_estimate,
    has_timeline,
    progress_of_area,
    progress_timeline,
)
from progress.timeline import Chart, timeline_chart
from regions.models import CODE_LENGTH, Area, Contest, ContestKind, Level
from regions.zones import Zone, zone_of_area
from uploads.models import PublicAreaProgress, Status, Upload
from uploads.selectors import uploads_of_desa, uploads_stuck_under

# How the counts are listed: what is done first, then what is on its way, then what is not.
STATUS_ORDER = [
    (status, Status(status).label)
    for status in ("published", "delivered", "sending", "queued", "retrying", "rejected", "missing")
]
# The orders of a children table (?sort=): by code, lowest progress first, most stuck first.
CHILD_SORTS = {
    "code": lambda row: row.code,
    "progress": lambda row: (row.percent is None, row.percent or 0, row.code),
    "stuck": lambda row: (-row.stuck, row.code),
}
# How far back the timeline of a page reaches.
TIMELINE_SPAN = timedelta(hours=24)
# The stuck list shows the longest stuck first; past this many it says how many more there are.
STUCK_LIST_LIMIT = 25


@dataclass(frozen=True)
class Place:
    """A page's area (None: the nation) and contest kind, with the contests summed there."""

    kind: str
    code: str  # "" is the nation
    area: Area | None
    breadcrumb: list[Area]  # from the provinsi down to the area itself
    contests: list[Contest]  # of the kind, over or under the area
    kinds: list[str]  # every contest kind held over or under the area, for the switcher

    @property
    def contest_ids(self) -> list[int]:
        return [contest.pk for contest in self.contests]

    @property
    def is_desa(self) -> bool:
        return self.area is not None and self.area.level == Level.DESA

    @property
    def zone(self) -> Zone:
        return zone_of_area(self.code)

    @property
    def kind_choices(self) -> list[tuple[str, str]]:
        return [(kind, ContestKind(kind).label) for kind in self.kinds]

    @property
    def contest_name(self) -> str:
        """The contest's own name where one contest is summed, else the kind's label."""
        if len(self.contests) == 1:
            return self.contests[0].name
        return str(ContestKind(self.kind).label)


def dashboard_place(*, kind: str, area_code: str) -> Place | None:
    """The place of /dashboard/<kind>/<code>/, or None when there is no such area (TPS pages are
    their desa's rows) or no contest of that kind over or under it."""
    if area_code and len(area_code) not in CODE_LENGTH.values():
        return None
    lineage = [area_code[:length] for length in CODE_LENGTH.values() if length <= len(area_code)]
    areas = list(Area.objects.filter(code__in=lineage).order_by("level"))
    area = areas[-1] if areas and areas[-1].code == area_code else None
    if area_code and (area is None or area.level == Level.TPS):
        return None
    # Contests over the area (their region is the area or an ancestor) or under it.
    over_or_under = Q(region_id__in=lineage) | Q(region__code__startswith=area_code)
    contests = list(Contest.objects.filter(over_or_under).order_by("kind", "region_id"))
    of_kind = [contest for contest in contests if contest.kind == kind]
    if not of_kind:
        return None
    kinds = sorted({contest.kind for contest in contests})
    return Place(kind, area_code, area, areas, of_kind, kinds)


def dashboard_home() -> tuple[str, str] | None:
    """(kind, area code) of /dashboard/: the configured home (DASHBOARD_CONTEST, DASHBOARD_AREA)
    or else the first contest kind held, over its region when only one contest has that kind
    (a Pilkada kabupaten) and over the nation otherwise. None when no contest is open."""
    contests = Contest.objects.order_by("kind", "region_id")
    if settings.DASHBOARD_CONTEST:
        contests = contests.filter(kind=settings.DASHBOARD_CONTEST)
    first_two = list(contests[:2])
    if not first_two:
        return None
    kind = first_two[0].kind
    if settings.DASHBOARD_AREA is not None:
        return kind, settings.DASHBOARD_AREA
    if len(first_two) == 1 or first_two[1].kind != kind:
        return kind, first_two[0].region_id
    return kind, ""


@dataclass(frozen=True)
class Board:
    """Everything one dashboard page shows below its header."""

    place: Place
    counts: AreaCounts
    public: PublicAreaProgress | None
    stuck: list[Upload]
    tps: list[Upload] = field(default_factory=list)  # the rows at a desa

    @property
    def area(self) -> Counts:
        return self.counts.area

    @property
    def complete(self) -> bool:
        """Every TPS published: the page stops polling."""
        return self.area.total > 0 and self.area.published == self.area.total

    @property
    def by_status(self) -> list[tuple[str, str, int]]:
        """(status, label, TPS) in the order of the lifecycle's end, published first."""
        return [(status, label, getattr(self.area, status)) for status, label in STATUS_ORDER]

    @property
    def stuck_not_listed(self) -> int:
        return max(self.area.stuck - len(self.stuck), 0)


def dashboard_board(*, place: Place) -> Board:
    ids = place.contest_ids
    counts = progress_of_area(contest_ids=ids, area_code=place.code)
    public = PublicAreaProgress.objects.filter(kind=place.kind, area_code=place.code).first()
    stuck = uploads_stuck_under(contest_ids=ids, area_code=place.code, limit=STUCK_LIST_LIMIT)
    tps = uploads_of_desa(contest_ids=ids, desa_code=place.code) if place.is_desa else []
    return Board(place, counts, public, stuck, tps)


def dashboard_timeline(*, place: Place, current: Counts, now: datetime) -> Chart | None:
    """The chart of the area's last day with the completion estimate; None at a desa, whose
    progress is its few TPS rows (no snapshots are kept of desa). One query."""
    if not has_timeline(place.code):
        return None
    # To the minute, like the snapshots: the chart then stays the same, and so does its ETag,
    # between the polls of one minute.
    now = now.replace(second=0, microsecond=0)
    timeline = progress_timeline(
        contest_ids=place.contest_ids,
        area_code=place.code,
        since=now - TIMELINE_SPAN,
        current=current,
        now=now,
    )
    estimate = completion_estimate(timeline, now=now)
    zone = place.zone
    return timeline_chart(timeline, tz=zone.info, zone_name=zone.name, estimate=estimate)


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
