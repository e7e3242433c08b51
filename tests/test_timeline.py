"""Progress over time: snapshots taken by beat, compacted as they age, read as a timeline summed
over contests, the completion estimate, and the chart drawn from it."""

import re
from datetime import UTC, datetime, timedelta
from io import StringIO
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.core.management import call_command
from django.template.loader import render_to_string
from django.utils import translation

from regions.models import Contest
from regions.zones import Zone
from tests.world import BABULU, LABANGKA_TPS, SEPAKU_TPS
from uploads.models import Status, StuckReason, Upload
from uploads.progress.models import TimelinePoint
from uploads.progress.selectors import (
    Estimate,
    Point,
    Timeline,
    completion_estimate,
    progress_of_area,
    progress_timeline,
)
from uploads.progress.services import (
    progress_fold,
    timeline_point_take,
    timeline_points_compact,
)
from uploads.progress.tasks import compact_timeline_points, take_timeline_points
from uploads.progress.timeline import timeline_chart
from uploads.services.stuck import upload_mark_stuck
from uploads.services.transitions import upload_transition

# The PPU demo's morning after the 2024 Pilkada: 06:10 WITA is 22:10 UTC the day before.
MORNING = datetime(2024, 11, 27, 22, 10, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
WITA = Zone("WITA", ZoneInfo("Asia/Makassar"))
PPU_AREAS = {"", "64", "6409", "640901", "640902", "640903", "640904"}


@pytest.fixture
def ppu(db):
    call_command("load_demo", stdout=StringIO())


def contest_id(kind: str) -> int:
    return Contest.objects.get(kind=kind).pk


def publish(tps: str, kind: str = "pkwkk") -> None:
    upload = Upload.objects.get(tps_id=tps, contest__kind=kind)
    upload_transition(
        upload_id=upload.pk, expected=tuple(Status.values), new=Status.PUBLISHED, action="test"
    )


def written(at: datetime) -> set[tuple[str, str]]:
    rows = TimelinePoint.objects.filter(taken_at=at)
    return set(rows.values_list("contest__kind", "area_code"))


# --- Taking snapshots


def test_the_first_snapshot_records_every_area_down_to_kecamatan_but_no_desa(ppu):
    assert timeline_point_take(at=MORNING) == 2 * len(PPU_AREAS)
    assert {code for _, code in written(MORNING)} == PPU_AREAS
    national = TimelinePoint.objects.get(contest__kind="pkwkk", area_code="")
    counts = (national.total, national.published, national.delivered, national.stuck)
    assert counts == (293, 0, 0, 0)


def test_a_second_snapshot_with_nothing_changed_writes_nothing(ppu):
    timeline_point_take(at=MORNING)
    assert timeline_point_take(at=MORNING + MINUTE) == 0
    progress_fold()
    assert timeline_point_take(at=MORNING + 2 * MINUTE) == 0
    assert TimelinePoint.objects.count() == 2 * len(PPU_AREAS)


def test_a_snapshot_writes_only_the_areas_whose_counts_changed_folded_or_still_pending(ppu):
    timeline_point_take(at=MORNING)
    publish(LABANGKA_TPS)
    babulu_and_up = {("pkwkk", code) for code in ("", "64", "6409", BABULU)}
    assert timeline_point_take(at=MORNING + MINUTE) == 4
    assert written(MORNING + MINUTE) == babulu_and_up
    progress_fold()
    assert timeline_point_take(at=MORNING + 2 * MINUTE) == 0, "folding changes no count"
    upload = Upload.objects.get(tps_id=LABANGKA_TPS, contest__kind="pkwkp")
    upload_transition(
        upload_id=upload.pk, expected=(Status.MISSING,), new=Status.DELIVERED, action="test"
    )
    upload_mark_stuck(upload_id=upload.pk, reason=StuckReason.SERVER_QUEUE)
    assert timeline_point_take(at=MORNING + 3 * MINUTE) == 4
    babulu = TimelinePoint.objects.get(taken_at=MORNING + 3 * MINUTE, area_code=BABULU)
    assert (babulu.contest.kind, babulu.published, babulu.delivered, babulu.stuck) == (
        "pkwkp",
        0,
        1,
        1,
    )


def test_a_snapshot_is_stamped_with_the_present_and_beat_takes_one_every_minute(ppu, time_machine):
    time_machine.move_to(MORNING, tick=False)
    take_timeline_points()
    assert len(written(MORNING)) == 2 * len(PPU_AREAS)
    assert settings.CELERY_BEAT_SCHEDULE["take-timeline-points"]["schedule"] == 60
    assert settings.CELERY_BEAT_SCHEDULE["take-timeline-points"]["task"] == (
        "uploads.progress.tasks.take_timeline_points"
    )
    assert settings.CELERY_BEAT_SCHEDULE["compact-timeline-points"]["task"] == (
        "uploads.progress.tasks.compact_timeline_points"
    )


# --- Compaction


def series(contest: int, area: str, times: list[datetime]) -> list[TimelinePoint]:
    """A snapshot at each time, one more TPS published at each."""
    return TimelinePoint.objects.bulk_create(
        TimelinePoint(
            contest_id=contest,
            area_code=area,
            taken_at=at,
            total=293,
            published=n,
            delivered=0,
            stuck=0,
        )
        for n, at in enumerate(times)
    )


def step_value(rows, moment: datetime) -> int | None:
    """The published count of a series at moment: its last snapshot at or before it."""
    before = sorted((row.taken_at, row.published) for row in rows if row.taken_at <= moment)
    return before[-1][1] if before else None


def minutes(start: datetime, end: datetime, every: timedelta = MINUTE) -> list[datetime]:
    count = (end - start) // every
    return [start + n * every for n in range(count)]


def test_compaction_keeps_the_last_of_each_quarter_past_3_hours_and_of_each_hour_past_2_days(ppu):
    now = datetime(2024, 11, 28, 12, 0, tzinfo=UTC)
    pkwkk = contest_id("pkwkk")
    # Every 15 minutes just over 2 days ago (compacted once already), every minute in the last
    # 5 hours.
    old = minutes(now - timedelta(hours=51), now - timedelta(hours=48), timedelta(minutes=15))
    recent = minutes(now - timedelta(hours=5), now)
    before = series(pkwkk, "6409", old + recent)
    series(pkwkk, BABULU, recent[-10:])

    deleted = timeline_points_compact(now=now)

    kept = list(TimelinePoint.objects.filter(area_code="6409").order_by("taken_at"))
    kept_times = [row.taken_at for row in kept]
    # 09:45, 10:45 and 11:45 two days before; 07:14 to 08:59; then from 09:00 every minute.
    hourly = [old[3] + n * timedelta(hours=1) for n in range(3)]
    quarterly = [recent[14] + n * timedelta(minutes=15) for n in range(8)]
    every_minute = [at for at in recent if at >= now - timedelta(hours=3)]
    assert kept_times == hourly + quarterly + every_minute
    assert deleted == len(before) - len(kept)
    assert TimelinePoint.objects.filter(area_code=BABULU).count() == 10, "young ones stay"
    # The step function keeps its value at the end of every bucket, and at every kept point.
    for moment in [*hourly, *quarterly, *every_minute, now]:
        assert step_value(kept, moment) == step_value(before, moment), moment
    assert timeline_points_compact(now=now) == 0, "a second run deletes nothing"


def test_compaction_an_hour_later_thins_only_what_aged_in_that_hour(ppu, time_machine):
    now = datetime(2024, 11, 28, 12, 0, tzinfo=UTC)
    recent = minutes(now - timedelta(hours=4), now)
    series(contest_id("pkwkp"), "64", recent)
    timeline_points_compact(now=now)
    assert TimelinePoint.objects.count() == 4 + 180
    assert timeline_points_compact(now=now + timedelta(minutes=59)) == 45 - 3
    assert TimelinePoint.objects.count() == 4 + 3 + 135
    time_machine.move_to(now + timedelta(hours=2))
    compact_timeline_points()  # beat's: 09:45 to 10:59 aged past 3 hours, in 5 quarters
    assert TimelinePoint.objects.count() == 4 + 3 + 5 + 60


# --- The timeline


def test_the_timeline_of_two_contests_carries_each_contests_last_value_forward(
    ppu, django_assert_num_queries
):
    both = [contest_id("pkwkk"), contest_id("pkwkp")]
    timeline_point_take(at=MORNING)
    publish(LABANGKA_TPS, "pkwkk")
    timeline_point_take(at=MORNING + MINUTE)
    publish(SEPAKU_TPS, "pkwkp")
    timeline_point_take(at=MORNING + 2 * MINUTE)

    with django_assert_num_queries(1):
        timeline = progress_timeline(contest_ids=both, area_code="6409")
    assert [(p.at, p.published, p.total) for p in timeline.points] == [
        (MORNING, 0, 586),
        (MORNING + MINUTE, 1, 586),
        (MORNING + 2 * MINUTE, 2, 586),
    ]
    since = progress_timeline(contest_ids=both, area_code="6409", since=MORNING + MINUTE / 2)
    assert [(p.at, p.published) for p in since.points] == [
        (MORNING + MINUTE / 2, 0),
        (MORNING + MINUTE, 1),
        (MORNING + 2 * MINUTE, 2),
    ]
    babulu = progress_timeline(contest_ids=both, area_code=BABULU)
    assert [p.published for p in babulu.points] == [0, 1]


def test_the_timeline_ends_with_the_counts_read_now_once_there_are_snapshots(ppu):
    pkwkk = [contest_id("pkwkk")]
    current = progress_of_area(contest_ids=pkwkk, area_code="6409").area
    empty = progress_timeline(contest_ids=pkwkk, area_code="6409", current=current)
    assert empty.points == []
    timeline_point_take(at=MORNING)
    publish(LABANGKA_TPS)
    current = progress_of_area(contest_ids=pkwkk, area_code="6409").area
    later = MORNING + 5 * MINUTE
    timeline = progress_timeline(contest_ids=pkwkk, area_code="6409", current=current, now=later)
    assert [(p.at, p.published) for p in timeline.points] == [(MORNING, 0), (later, 1)]


def test_a_desa_has_no_timeline(ppu):
    with pytest.raises(ValueError, match="no points"):
        progress_timeline(contest_ids=[contest_id("pkwkk")], area_code="6409032002")


# --- The completion estimate


def steady(start: datetime, count: int, *, published: int, per_minute: int, total: int = 293):
    return Timeline(
        "6409",
        [
            Point(start + n * MINUTE, total, min(total, published + n * per_minute), 0, 0)
            for n in range(count)
        ],
    )


def with_stuck(timeline: Timeline, stuck: int) -> Timeline:
    last = timeline.points[-1]
    ended = Point(last.at, last.total, last.published, last.delivered, stuck)
    return Timeline(timeline.area_code, [*timeline.points[:-1], ended])


def test_a_steady_rate_estimates_completion_when_the_rest_are_in_at_that_rate():
    # 100 published, then two more each minute: 218 after 59 minutes, 60 of them in the last
    # 30; 75 left take 37.5 minutes more.
    timeline = steady(MORNING, 60, published=100, per_minute=2)
    now = MORNING + 59 * MINUTE
    assert completion_estimate(timeline, now=now).at == now + timedelta(minutes=37, seconds=30)


def test_the_estimate_is_counted_from_the_last_publication_and_stays_put_as_the_clock_moves():
    timeline = steady(MORNING, 60, published=100, per_minute=2)
    last_publication = MORNING + 59 * MINUTE
    for now in (last_publication, last_publication + 3 * MINUTE, last_publication + 7 * MINUTE):
        estimate = completion_estimate(timeline, now=now)
        assert estimate.at == last_publication + timedelta(minutes=37, seconds=30)


def test_a_young_timeline_measures_the_rate_from_its_first_point():
    timeline = steady(MORNING, 11, published=0, per_minute=10)
    now = MORNING + 10 * MINUTE
    assert completion_estimate(timeline, now=now).at == now + timedelta(minutes=19, seconds=18)


def test_the_first_minutes_of_the_night_give_no_estimate_yet():
    young = steady(MORNING, 3, published=0, per_minute=10)
    assert completion_estimate(young, now=MORNING + 2 * MINUTE).at is None
    timeline = steady(MORNING, 6, published=0, per_minute=10)
    assert completion_estimate(timeline, now=MORNING + 5 * MINUTE).at is not None


def test_no_publication_for_ten_minutes_gives_no_time_but_since_when():
    rising = steady(MORNING, 30, published=0, per_minute=5)
    flat = Point(MORNING + 40 * MINUTE, 293, 145, 0, 0)
    timeline = Timeline("6409", [*rising.points, flat])
    estimate = completion_estimate(timeline, now=MORNING + 40 * MINUTE)
    assert estimate.at is None and estimate.stalled
    assert estimate.last_published_at == MORNING + 29 * MINUTE
    assert completion_estimate(Timeline("6409", []), now=MORNING) == Estimate()


def test_an_estimate_that_would_be_in_the_past_is_no_estimate():
    # 10 left at 2 a minute should have been in 5 minutes after the last publication; 8 later
    # they are not: the rate says nothing any more.
    timeline = steady(MORNING, 60, published=163, per_minute=2)
    assert timeline.points[-1].published == 281
    estimate = completion_estimate(timeline, now=MORNING + 59 * MINUTE + 8 * MINUTE)
    assert estimate.at is None and estimate.stalled


def test_stuck_tps_are_left_out_of_the_estimate_and_said_apart():
    timeline = with_stuck(steady(MORNING, 60, published=100, per_minute=2), stuck=15)
    now = MORNING + 59 * MINUTE
    estimate = completion_estimate(timeline, now=now)
    assert (estimate.left, estimate.stuck) == (75, 15)
    assert estimate.at == now + timedelta(minutes=30)  # 60 not stuck, at 2 a minute


def test_when_only_stuck_tps_are_left_there_is_no_time_to_estimate():
    timeline = with_stuck(steady(MORNING, 61, published=230, per_minute=1), stuck=3)
    assert timeline.points[-1].published == 290
    estimate = completion_estimate(timeline, now=MORNING + 70 * MINUTE)
    assert estimate.only_stuck_left and estimate.at is None
    assert (estimate.left, estimate.stuck) == (3, 3)


def test_a_complete_area_gives_no_estimate():
    timeline = steady(MORNING, 60, published=200, per_minute=5)
    assert timeline.points[-1].published == 293
    assert completion_estimate(timeline, now=MORNING + 59 * MINUTE).at is None


# --- The chart


def corners(polyline: str) -> list[tuple[float, float]]:
    return [tuple(float(n) for n in corner.split(",")) for corner in polyline.split()]


def test_the_chart_draws_100_percent_at_the_top_and_0_at_the_bottom():
    timeline = Timeline("6409", [Point(MORNING, 4, 0, 2, 0), Point(MORNING + MINUTE, 4, 4, 0, 0)])
    chart = timeline_chart(timeline, width=400, height=200)
    left, right, top, bottom = chart.left, chart.right, chart.top, chart.bottom
    assert corners(chart.published) == [(left, bottom), (right, bottom), (right, top)]
    assert corners(chart.received)[0] == (left, (top + bottom) / 2), "2 of 4 received: halfway"
    assert [(tick.label, tick.position) for tick in chart.percent_ticks][::4] == [
        ("0%", chart.bottom),
        ("100%", chart.top),
    ]


def test_the_chart_marks_round_times_in_the_areas_zone_and_steps_between_points():
    # From 04:10 to 06:10 WITA, every 20 minutes.
    start = MORNING - 120 * MINUTE
    points = [Point(start + n * 20 * MINUTE, 293, 200 + 15 * n, 0, 0) for n in range(7)]
    chart = timeline_chart(Timeline("6409", points), zone=WITA)
    html = render(chart)
    labels = re.findall(r'class="timeline-label timeline-time-label"[^>]*>([^<]*)<', html)
    assert labels == ["04:30", "05:00", "05:30", "06:00"]
    assert len(corners(chart.published)) == 2 * len(points) - 1, "across, then up, per point"
    assert "at 28 Nov 06:10 WITA." in html


def test_a_chart_says_its_dates_in_the_language_it_is_rendered_in():
    # From 22:00 WITA on 1 December past midnight: the tick at 00:00 is labelled with its date.
    start = datetime(2026, 12, 1, 14, 0, tzinfo=UTC)
    points = [Point(start + n * 30 * MINUTE, 293, 100 + 10 * n, 0, 0) for n in range(6)]
    chart = timeline_chart(Timeline("6409", points), zone=WITA)
    assert "2 Dec" in render(chart, "en") and "2 Des" not in render(chart, "en")
    assert "2 Des" in render(chart, "id")


def test_the_chart_of_one_point_is_a_flat_line_across_and_of_none_is_empty():
    chart = timeline_chart(Timeline("6409", [Point(MORNING, 293, 290, 3, 3)]))
    height = chart.top + (chart.bottom - chart.top) * 3 / 293
    flat = pytest.approx(height, abs=0.05)
    assert corners(chart.published) == [(chart.left, flat), (chart.right, flat)]
    empty = timeline_chart(Timeline("6409", []))
    assert (empty.last, empty.published, empty.time_ticks) == (None, "", [])


def render(chart, language: str = "en") -> str:
    with translation.override(language):
        return render_to_string("progress/timeline.html", {"chart": chart, "timeline_id": "t1"})


def test_the_timeline_partial_describes_the_chart_in_words_without_styles_or_scripts():
    points = [Point(MORNING - 30 * MINUTE, 293, 260, 20, 0), Point(MORNING, 293, 290, 0, 3)]
    estimate = Estimate(left=3, stuck=0, at=MORNING + 4 * MINUTE)
    chart = timeline_chart(Timeline("6409", points), zone=WITA, estimate=estimate)
    html = render(chart)
    assert 'role="img" aria-labelledby="t1-title" aria-describedby="t1-desc"' in html
    assert '<title id="t1-title">Progress over time</title>' in html
    desc = re.search(r"<desc[^>]*>(.*?)</desc>", html).group(1)
    assert desc == "Published 290 of 293 at 28 Nov 06:10 WITA. Stuck: 3."
    assert "every TPS should be published by 28 Nov 06:14 WITA." in html


def test_the_timeline_partial_says_how_many_are_stuck_and_that_without_them_all_are_in():
    points = [Point(MORNING - 30 * MINUTE, 293, 280, 0, 3), Point(MORNING, 293, 290, 0, 3)]
    estimate = completion_estimate(Timeline("6409", points), now=MORNING + MINUTE)
    html = render(timeline_chart(Timeline("6409", points), zone=WITA, estimate=estimate), "id")
    assert "3 TPS macet; tanpa mereka, semua TPS sudah terpublikasi." in html
    assert "WITA" not in html.split("timeline-estimate")[1], "no time when only stuck TPS are left"
    assert "style=" not in html
    assert "<script" not in html
    assert 'class="timeline-published"' in html


def test_the_timeline_partial_keeps_svg_numbers_with_a_dot_in_indonesian():
    points = [Point(MORNING, 3, 1, 0, 0), Point(MORNING + 7 * MINUTE, 3, 2, 0, 0)]
    html = render(timeline_chart(Timeline("6409", points)), language="id")
    coordinates = re.search(r'class="timeline-published" points="([^"]*)"', html).group(1)
    assert "." in coordinates and re.fullmatch(r"[0-9., ]+", coordinates)
    assert all(len(corner.split(",")) == 2 for corner in coordinates.split())


def test_the_timeline_partial_says_so_when_there_are_no_snapshots_yet():
    html = render(timeline_chart(Timeline("6409", [])))
    assert "Nothing recorded yet of this area" in html
    assert "<svg" not in html


def test_the_timeline_partial_says_when_every_tps_is_published():
    chart = timeline_chart(Timeline("6409", [Point(MORNING, 293, 293, 0, 0)]))
    assert "Every TPS is published." in render(chart)
