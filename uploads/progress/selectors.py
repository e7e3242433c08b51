"""Reads of the progress counts that the pages and the API share.

Each read is one statement: the folded counts plus the changes still pending, from one
consistent read of the database, so it is exact whether or not the folder has run, and costs
the same for the nation as for a kecamatan (a handful of index lookups and the few pending
changes under the area). The timeline reads an area's points over time
(uploads.progress.services.timeline_point_take), also in one
statement.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.utils import timezone

from regions import codes
from regions.models import Contest
from uploads.progress.models import COLUMNS, COUNTED, POINT_COLUMNS, TIMELINE_MAX_CODE_LENGTH
from uploads.progress.percent import cut_percent


@dataclass(frozen=True)
class Counts:
    """One area's TPS for the contests read, in each status, and how many of them are stuck."""

    code: str  # "" is the nation
    name: str  # "" for the nation
    total: int = 0
    missing: int = 0
    queued: int = 0
    sending: int = 0
    retrying: int = 0
    delivered: int = 0
    published: int = 0
    rejected: int = 0
    stuck: int = 0

    @property
    def percent(self) -> Decimal | None:
        return cut_percent(self.published, self.total)

    @property
    def complete(self) -> bool:
        """Every TPS published (and there is at least one): a live page stops polling."""
        return 0 < self.total == self.published

    @property
    def on_the_way(self) -> int:
        """TPS whose document is here and not yet accepted by the publication server: queued,
        being sent or waiting to be sent again."""
        return self.queued + self.sending + self.retrying


@dataclass(frozen=True)
class AreaCounts:
    area: Counts
    children: list[Counts]  # by code; only children with TPS in the contests


# The orders of a children table (?sort=): by code, lowest progress first, most stuck first.
CHILD_SORTS = {
    "code": lambda row: row.code,
    "progress": lambda row: (row.percent is None, row.percent or 0, row.code),
    "stuck": lambda row: (-row.stuck, row.code),
}
# An area page lists the longest stuck TPS first; past this many it says how many more there are.
STUCK_LIST_LIMIT = 25


@dataclass(frozen=True)
class SiteFigure:
    """What the KPU's public site last said about an area, beside our own count."""

    published: int | None
    total: int | None
    at: datetime | None  # the site's own time stamp, when it gave a readable one
    children: dict[str, int]  # its published count per child area


class CountsPage:
    """What the area pages (staff and public) show of an area's counts; the pages' dataclasses
    give it their counts, the stuck TPS they list and the public site's figure."""

    counts: AreaCounts
    stuck: Sequence[object]
    site: SiteFigure | None

    @property
    def site_children(self) -> dict[str, int]:
        """The public site's published count per child code, where the poller read it."""
        return self.site.children if self.site else {}

    @property
    def area(self) -> Counts:
        return self.counts.area

    @property
    def complete(self) -> bool:
        return self.area.complete

    @property
    def stuck_not_listed(self) -> int:
        return max(self.area.stuck - len(self.stuck), 0)

    def children(self, sort: str) -> list[tuple[Counts, int | None]]:
        """The children in a CHILD_SORTS order, each with the public site's published count."""
        site = self.site_children
        rows = sorted(self.counts.children, key=CHILD_SORTS[sort])
        return [(child, site.get(child.code)) for child in rows]


def _each(template: str, columns=COLUMNS) -> str:
    return ", ".join(template.format(c=column) for column in columns)


# An area's name, looked up for each row of a result (a few dozen; at a desa up to 999 TPS), never
# joined: with changes pending, the planner expected a thousand rows from the grouping sets below
# and read the whole of regions_area to hash it, 18.8 ms of the national page's 24.8 ms of SQL at
# 20,000 TPS (docs/performance.md).
_NAME = "coalesce((SELECT a.name FROM regions_area a WHERE a.code = c.code), '')"

# Folded rows of the area and its children, plus the pending changes under the area: per child,
# and all of them for the area itself (the grouping set ()). {child} is the children's code length.
_COUNTED_LEVELS = f"""
    SELECT c.code, {_NAME}, {_each("coalesce(sum(c.{c}), 0)::bigint")}
    FROM (
        SELECT area_code AS code, {_each("{c}")} FROM progress_areaprogress
        WHERE contest_id = ANY(%(contests)s) AND (area_code = %(area)s OR parent_code = %(area)s)
        UNION ALL
        SELECT CASE WHEN GROUPING(left(desa, {{child}})) = 1 THEN %(area)s
                    ELSE left(desa, {{child}}) END,
               0, {_each("sum({c})", COUNTED)}
        FROM progress_progresschange
        WHERE contest_id = ANY(%(contests)s) AND desa LIKE %(prefix)s
        GROUP BY GROUPING SETS ((left(desa, {{child}})), ())
    ) c
    GROUP BY c.code ORDER BY c.code
"""

# A desa's children are its TPS, at most 999: counted from the uploads themselves.
_DESA = f"""
    SELECT c.code, {_NAME}, {_each("c.{c}")}
    FROM (
        SELECT CASE WHEN GROUPING(tps_id) = 1 THEN %(area)s ELSE tps_id END AS code,
               count(*) AS total,
               {_each("count(*) FILTER (WHERE status = '{c}') AS {c}", COUNTED[:-1])},
               count(*) FILTER (WHERE stuck) AS stuck
        FROM uploads_upload
        WHERE contest_id = ANY(%(contests)s) AND tps_id LIKE %(prefix)s
        GROUP BY GROUPING SETS ((tps_id), ())
    ) c
    ORDER BY c.code
"""


def progress_of_area(*, contest_ids: Sequence[int], area_code: str) -> AreaCounts:
    """An area's counts and one row per child, summed over the given contests (e.g. one contest,
    or every ppwp contest for a national page). area_code: "" for the nation, down to a desa."""
    child_length = codes.child_code_length(area_code)
    at_desa = child_length == codes.TPS_LENGTH
    sql = _DESA if at_desa else _COUNTED_LEVELS.format(child=child_length)
    params: dict[str, Any] = {
        "contests": list(contest_ids),
        "area": area_code,
        "prefix": f"{area_code}%",
    }
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = [Counts(*row) for row in cursor.fetchall()]
    area = next((row for row in rows if row.code == area_code), None)
    children = [row for row in rows if row.code != area_code]
    return AreaCounts(area or Counts(area_code, ""), children)


# The contests of one kind, each with its region, for the reads of many areas below: an area is
# looked up only in the contests over it or under it (a few of a kind's dozens or hundreds).
_CONTESTS_OF_KIND = """
    WITH contest AS MATERIALIZED (
        SELECT id, region_id AS region FROM regions_contest WHERE kind = %(kind)s
    )
"""
_COVERS = "(starts_with({area}, contest.region) OR starts_with(contest.region, {area}))"

# The children of several areas of one level at once, for the contests of one kind: each child's
# folded row found by its parent (an index scan per area and contest there), plus the pending
# changes under them. {parent} and {child} are the code lengths. No names: the poller compares
# counts only.
_CHILDREN_OF_AREAS = f"""
    {_CONTESTS_OF_KIND}
    SELECT c.parent, c.code, {_each("coalesce(sum(c.{c}), 0)::bigint")}
    FROM (
        SELECT a.parent_code AS parent, a.area_code AS code, {_each("a.{c}")}
        FROM unnest(%(areas)s::text[]) AS area(code)
        JOIN contest ON {_COVERS.format(area="area.code")}
        JOIN progress_areaprogress a ON a.contest_id = contest.id AND a.parent_code = area.code
        UNION ALL
        SELECT left(desa, {{parent}}), left(desa, {{child}}), 0, {_each("sum({c})", COUNTED)}
        FROM progress_progresschange
        WHERE contest_id IN (SELECT id FROM contest) AND left(desa, {{parent}}) = ANY(%(areas)s)
        GROUP BY 1, 2
    ) c
    GROUP BY c.parent, c.code ORDER BY c.parent, c.code
"""

# The TPS of several desa at once, counted from the uploads: per desa, a range scan of the
# (contest, TPS) index in each contest over it (a TPS code is its desa's and three digits).
# LATERAL, and grouped inside, so that it stays a scan per desa: as a plain join the planner,
# expecting thousands of rows a desa, read every upload of the kind for a few desa (0.5-1.5 s a
# call at national scale).
_TPS_OF_DESAS = f"""
    {_CONTESTS_OF_KIND}
    SELECT desa.code, tps.*
    FROM unnest(%(areas)s::text[]) AS desa(code)
    CROSS JOIN LATERAL (
        SELECT upload.tps_id, count(*),
            {_each("count(*) FILTER (WHERE upload.status = '{c}')", COUNTED[:-1])},
            count(*) FILTER (WHERE upload.stuck)
        FROM contest
        JOIN uploads_upload upload ON upload.contest_id = contest.id
        WHERE upload.tps_id BETWEEN desa.code || '000' AND desa.code || '999'
            AND {_COVERS.format(area="desa.code")}
        GROUP BY upload.tps_id
    ) tps
    ORDER BY desa.code, tps.tps_id
"""


def progress_of_children(*, kind: str, area_codes: Sequence[str]) -> dict[str, list[Counts]]:
    """The children of each of these areas (all of one level) that have TPS in the contests of
    `kind`, with their counts summed over those contests, exact as progress_of_area's: one
    statement whatever the number of areas. Children's names are left empty.

    Summing over every contest of the kind gives what progress_of_area gives for the contests
    over or under each area: a contest elsewhere has no counts there."""
    if not area_codes:
        return {}
    length = len(area_codes[0])
    child_length = codes.child_code_length(area_codes[0])
    if child_length == codes.TPS_LENGTH:
        sql = _TPS_OF_DESAS
    else:
        sql = _CHILDREN_OF_AREAS.format(parent=length, child=child_length)
    children: dict[str, list[Counts]] = {code: [] for code in area_codes}
    with connection.cursor() as cursor:
        cursor.execute(sql, {"kind": kind, "areas": list(area_codes)})
        for parent, code, *counts in cursor.fetchall():
            children[parent].append(Counts(code, "", *counts))
    return children


# The nation's counts of each contest kind: the national row of each contest (its primary key:
# the contest ids come first, as an array, so that each row is an index lookup and no level below
# is read) plus every change still pending, which the folder keeps to a few thousand rows.
_NATION_BY_KIND = f"""
    SELECT contest.kind, {_each("coalesce(sum(c.{c}), 0)::bigint")}
    FROM (
        SELECT contest_id, {_each("{c}")} FROM progress_areaprogress
        WHERE contest_id = ANY(ARRAY(SELECT id FROM regions_contest)) AND area_code = ''
        UNION ALL
        SELECT contest_id, 0, {_each("{c}", COUNTED)} FROM progress_progresschange
    ) c JOIN regions_contest contest ON contest.id = c.contest_id
    GROUP BY contest.kind ORDER BY contest.kind
"""


def progress_of_nation_by_kind() -> dict[str, Counts]:
    """The nation's TPS of each contest kind held, in each status and stuck, exact (folded and
    pending), in one statement that costs the same whatever the size of the country."""
    with connection.cursor() as cursor:
        cursor.execute(_NATION_BY_KIND)
        return {kind: Counts("", "", *counts) for kind, *counts in cursor.fetchall()}


# --- The timeline


@dataclass(frozen=True)
class Point:
    """An area's counts from this moment until the next point, summed over the contests read."""

    at: datetime
    total: int
    published: int
    delivered: int
    stuck: int


@dataclass(frozen=True)
class Timeline:
    area_code: str
    points: list[Point]  # by time; a step function: each point holds until the next


# Each contest's series is a step function, and their sum steps whenever one of them does: the
# sum at any moment is the running sum of every contest's steps (its change from its previous
# point) so far. A contest's value at `since` comes from its last point before it, ordered
# before a point taken at `since` itself.
_TIMELINE = f"""
    WITH series AS (
        SELECT contest_id, taken_at, 1 AS is_point, {_each("{c}", POINT_COLUMNS)}
        FROM progress_timelinepoint
        WHERE contest_id = ANY(%(contests)s) AND area_code = %(area)s
              AND taken_at >= %(since)s
        UNION ALL
        SELECT contest.id, %(since)s, 0, {_each("before.{c}", POINT_COLUMNS)}
        FROM unnest(%(contests)s::bigint[]) AS contest(id)
        CROSS JOIN LATERAL (
            SELECT {_each("{c}", POINT_COLUMNS)} FROM progress_timelinepoint
            WHERE contest_id = contest.id AND area_code = %(area)s AND taken_at < %(since)s
            ORDER BY taken_at DESC LIMIT 1
        ) before
    ), steps AS (
        SELECT taken_at, {_each("{c} - lag({c}, 1, 0) OVER per_contest AS {c}", POINT_COLUMNS)}
        FROM series
        WINDOW per_contest AS (PARTITION BY contest_id ORDER BY taken_at, is_point)
    )
    SELECT taken_at, {_each("(sum(sum({c})) OVER (ORDER BY taken_at))::bigint", POINT_COLUMNS)}
    FROM steps GROUP BY taken_at ORDER BY taken_at
"""


def progress_timeline(
    *,
    contest_ids: Sequence[int],
    area_code: str,
    since: datetime | None = None,
    current: Counts | None = None,
    now: datetime | None = None,
) -> Timeline:
    """An area's counts over time from its points, summed over the given contests, from since
    (default: the first point) on. One query, a range of the points' key per contest.

    current: the area's counts now as a page read them (progress_of_area, same contests); once
    there are points, they end the timeline as its last point, at now (default: the present),
    so that the line runs up to the present. Without points the timeline stays empty: the
    chart says there are none yet.

    area_code: "" for the nation down to a kecamatan; desa have no points (ValueError; see
    uploads.progress.models.TIMELINE_MAX_CODE_LENGTH, and has_timeline).
    """
    codes.child_code_length(area_code)  # a valid code
    if not has_timeline(area_code):
        raise ValueError(f"no points are taken of this area: {area_code!r}")
    params: dict[str, Any] = {
        "contests": list(contest_ids),
        "area": area_code,
        "since": since or datetime.min.replace(tzinfo=UTC),
    }
    with connection.cursor() as cursor:
        cursor.execute(_TIMELINE, params)
        points = [Point(*row) for row in cursor.fetchall()]
    if current is not None and points:
        at = max(now or timezone.now(), points[-1].at)
        points.append(Point(at, *(getattr(current, column) for column in POINT_COLUMNS)))
    return Timeline(area_code, points)


def has_timeline(area_code: str) -> bool:
    """Whether points are taken of the area ("" the nation, down to a kecamatan)."""
    return len(area_code) <= TIMELINE_MAX_CODE_LENGTH


# The rate of publication is measured over this much of the past, up to the last publication...
ESTIMATE_WINDOW = timedelta(minutes=30)
# ... and must span at least this much for an estimate to be made at all.
ESTIMATE_MIN_HISTORY = timedelta(minutes=5)
# No TPS published for this long: the recent rate says nothing of what is left.
STALLED_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class Estimate:
    """What can be said of when an area will be complete, from its timeline.

    `left` TPS are not published, `stuck` of them flagged stuck: those wait for a person, not
    for the rate, and are left out of `at`. `at` is when the others should all be published at
    the recent rate; it is None when that cannot be said: too little history, no TPS left but
    stuck ones, or no publication for STALLED_AFTER (then `last_published_at` says since when).
    Never a time in the past, and never one that moves on with the clock: it is counted from
    the last publication, not from now.
    """

    left: int = 0
    stuck: int = 0
    at: datetime | None = None
    last_published_at: datetime | None = None

    @property
    def only_stuck_left(self) -> bool:
        return 0 < self.left == self.stuck

    @property
    def stalled(self) -> bool:
        return self.last_published_at is not None and self.at is None


def completion_estimate(timeline: Timeline, *, now: datetime) -> Estimate:
    """When the TPS of the area that are not stuck should all be published, at the rate of the
    ESTIMATE_WINDOW before the last publication (from the first point, when the timeline is
    younger than that), counted from that last publication (see Estimate)."""
    points = timeline.points
    if not points:
        return Estimate()
    last = points[-1]
    left = max(last.total - last.published, 0)
    stuck = min(last.stuck, left)
    if left == 0 or left == stuck:
        return Estimate(left, stuck)
    gained_at = _last_publication(points)
    if gained_at is None:
        return Estimate(left, stuck)
    start = max(gained_at - ESTIMATE_WINDOW, points[0].at)
    at_start = [point for point in points if point.at <= start][-1]
    gained = last.published - at_start.published
    elapsed = gained_at - start
    if gained <= 0 or elapsed < ESTIMATE_MIN_HISTORY:
        return Estimate(left, stuck)
    at = gained_at + elapsed * (left - stuck) / gained
    if now - gained_at >= STALLED_AFTER or at <= now:
        return Estimate(left, stuck, last_published_at=gained_at)
    return Estimate(left, stuck, at=at)


def _last_publication(points: list[Point]) -> datetime | None:
    """When the published count last rose (the point where it did), or None: it never did."""
    for before, point in zip(points[-2::-1], points[:0:-1], strict=False):
        if point.published > before.published:
            return point.at
    return None


# --- Where progress pages open


def progress_home() -> tuple[str, str] | None:
    """(kind, area code) where progress pages open, /dashboard/ and the public /: the configured
    home (DASHBOARD_CONTEST, DASHBOARD_AREA) or else the first contest kind held, over its region
    when only one contest has that kind (a Pilkada kabupaten) and over the nation otherwise.
    None when no contest is open."""
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
