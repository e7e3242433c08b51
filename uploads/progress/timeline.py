"""The timeline as a chart: the geometry of a small SVG drawn by the server
(progress/templates/progress/timeline.html), from a Timeline. No query, no chart library.

The chart holds times, not their text: the template writes them in the language it is rendered
in (the public point renders one chart in two languages)."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from regions.selectors import ContestArea
from regions.zones import WIB, Zone
from uploads.progress.selectors import (
    Counts,
    Estimate,
    Point,
    Timeline,
    completion_estimate,
    has_timeline,
    progress_timeline,
)

# Room around the plot for the axis labels, in SVG units.
# The right margin holds half of a time label centred on the last tick (e.g. "21:58").
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 48, 24, 12, 28
PERCENT_TICKS = (0, 25, 50, 75, 100)
# The time axis takes the finest of these steps that gives at most MAX_TIME_TICKS ticks. Each
# step under a day divides a day, so ticks fall on round clock times.
TIME_STEPS = tuple(
    timedelta(minutes=minutes)
    for minutes in (1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440, 2880, 10080)
)
MAX_TIME_TICKS = 6
# How far back the timeline of a page reaches.
TIMELINE_SPAN = timedelta(hours=24)
# A timeline of one point is drawn over this long, as a flat line.
MIN_SPAN = timedelta(minutes=1)


@dataclass(frozen=True)
class Tick:
    position: float  # along its axis, in SVG units
    label: str = ""  # a percentage; "" on the time axis, whose ticks are times
    at: datetime | None = None  # in the chart's zone
    midnight: bool = False  # a time tick at 00:00 is labelled with its date


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    # The plot area; y grows downwards, so 100% is `top`.
    left: float
    top: float
    right: float
    bottom: float
    percent_ticks: list[Tick]
    zone: Zone
    time_ticks: list[Tick] = field(default_factory=list)
    published: str = ""  # polyline points "x,y x,y ...": the published share, as steps
    received: str = ""  # the same for published + in the server queue
    last: Point | None = None  # None: no points yet
    estimate: Estimate = field(default_factory=Estimate)

    @property
    def complete(self) -> bool:
        return self.last is not None and 0 < self.last.total <= self.last.published


def timeline_chart(
    timeline: Timeline,
    *,
    width: int = 640,
    height: int = 240,
    zone: Zone = WIB,
    estimate: Estimate | None = None,
) -> Chart:
    """The chart of a timeline: percent published over time, times in the area's zone, with
    what can be said of its completion (completion_estimate)."""
    left, top = MARGIN_LEFT, MARGIN_TOP
    right, bottom = width - MARGIN_RIGHT, height - MARGIN_BOTTOM
    percent_ticks = [Tick(_y(percent, top, bottom), f"{percent}%") for percent in PERCENT_TICKS]
    frame = (width, height, left, top, right, bottom, percent_ticks, zone)
    points = timeline.points
    if not points:
        return Chart(*frame)
    start = points[0].at
    span = max(points[-1].at - start, MIN_SPAN)

    def x(moment: datetime) -> float:
        return round(left + (moment - start) / span * (right - left), 1)

    def steps(share: Callable[[Point], float]) -> str:
        values = [(x(point.at), _y(share(point), top, bottom)) for point in points]
        # Each value holds until the next point (a vertical step there), the last to the end.
        corners = [values[0]]
        for (at, value), (_, before) in zip(values[1:], values, strict=False):
            corners += [(at, before), (at, value)]
        if corners[-1][0] < right:
            corners.append((right, values[-1][1]))
        return " ".join(f"{cx:g},{cy:g}" for cx, cy in corners)

    time_ticks = [
        Tick(x(moment), at=moment, midnight=midnight)
        for moment, midnight in _time_ticks(start, start + span, zone)
    ]
    return Chart(
        *frame,
        published=steps(lambda point: _share(point.published, point.total)),
        received=steps(lambda point: _share(point.published + point.delivered, point.total)),
        time_ticks=time_ticks,
        last=points[-1],
        estimate=estimate or Estimate(),
    )


def _share(part: int, total: int) -> float:
    return 100 * part / total if total else 0.0


def _y(percent: float, top: float, bottom: float) -> float:
    return round(bottom - percent / 100 * (bottom - top), 1)


def _time_ticks(start: datetime, end: datetime, zone: Zone) -> list[tuple[datetime, bool]]:
    """Round clock times between start and end, in the zone, each with whether it is midnight
    (labelled with its date rather than its time)."""
    step = next((s for s in TIME_STEPS if (end - start) / s <= MAX_TIME_TICKS), TIME_STEPS[-1])
    local = start.astimezone(zone.info)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    # The first multiple of the step since midnight at or after start.
    moment = midnight - (midnight - local) // step * step
    ticks = []
    while moment <= end:
        ticks.append((moment, moment.time() == midnight.time()))
        moment += step
    return ticks


def contest_area_chart(
    *, contest_area: ContestArea, current: Counts, now: datetime
) -> Chart | None:
    """The chart of a page's area over its last day, with the completion estimate, in the
    area's zone; None at a desa, whose progress is its few TPS rows (no points are kept of
    desa). One query."""
    if not has_timeline(contest_area.code):
        return None
    # To the minute, like the points: the chart then stays the same, and so does its ETag,
    # between the polls of one minute.
    now = now.replace(second=0, microsecond=0)
    timeline = progress_timeline(
        contest_ids=contest_area.contest_ids,
        area_code=contest_area.code,
        since=now - TIMELINE_SPAN,
        current=current,
        now=now,
    )
    estimate = completion_estimate(timeline, now=now)
    return timeline_chart(timeline, zone=contest_area.zone, estimate=estimate)
