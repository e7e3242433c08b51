"""Exact counts per area and contest: recorded with each change, folded, read, recounted."""

import sys
from dataclasses import asdict
from decimal import Decimal
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Count, Q
from django.db.models.functions import Left
from django.template import Context, Template
from django.utils import translation

from regions.models import Area, Contest, Level
from tests.conftest import child_env, database_url
from tests.world import BABULU, LABANGKA, LABANGKA_TPS
from uploads.models import Status, StuckReason, Upload
from uploads.progress.models import COLUMNS, AreaProgress, ProgressChange
from uploads.progress.percent import cut_percent
from uploads.progress.selectors import Counts, progress_of_area
from uploads.progress.services import FOLD_LOCK, progress_fold, progress_recount
from uploads.progress.tasks import fold_progress
from uploads.services.contests import contest_open
from uploads.services.publication import upload_mark_published
from uploads.services.stuck import upload_mark_stuck
from uploads.services.transitions import upload_transition


def contest_ids(kind: str | None = None) -> list[int]:
    contests = Contest.objects.filter(kind=kind) if kind else Contest.objects.all()
    return list(contests.values_list("pk", flat=True))


def upload_id(tps: str = LABANGKA_TPS, kind: str = "pkwkk") -> int:
    return Upload.objects.get(tps_id=tps, contest__kind=kind).pk


def move(upload: int, new: str) -> None:
    upload_transition(upload_id=upload, expected=tuple(Status.values), new=new, action="test")


def figures(counts: Counts) -> dict:
    return {column: value for column, value in asdict(counts).items() if column in COLUMNS}


def fresh_group_by(contests: list[int], area_code: str, child_length: int | None = None) -> dict:
    """The counts as a fresh GROUP BY over the uploads: of the area, or per child."""
    uploads = Upload.objects.filter(contest_id__in=contests, tps__code__startswith=area_code)
    tallies = {
        "total": Count("pk"),
        **{status: Count("pk", filter=Q(status=status)) for status in Status.values},
        "stuck": Count("pk", filter=Q(stuck=True)),
    }
    if child_length is None:
        return uploads.aggregate(**tallies)
    rows = uploads.annotate(child=Left("tps_id", child_length)).values("child")
    return {row.pop("child"): row for row in rows.annotate(**tallies).order_by("child")}


CHILD_LENGTH = {0: 2, Level.PROVINSI: 4, Level.KABUPATEN: 6, Level.KECAMATAN: 10, Level.DESA: 13}


def assert_exact(contests: list[int]) -> None:
    """Every area's counts and children, as a page reads them, equal a fresh GROUP BY."""
    areas = Area.objects.filter(level__lte=Level.DESA).values_list("code", "level")
    for code, level in [("", 0), *areas]:
        read = progress_of_area(contest_ids=contests, area_code=code)
        assert figures(read.area) == fresh_group_by(contests, code), code
        children = {child.code: figures(child) for child in read.children}
        assert children == fresh_group_by(contests, code, CHILD_LENGTH[level]), code


def assert_no_drift() -> None:
    assert progress_recount().drifts == []


def national(kind: str = "pkwkk") -> Counts:
    return progress_of_area(contest_ids=contest_ids(kind), area_code="").area


# --- Opening a contest


def test_opening_a_contest_counts_every_tps_as_missing_at_every_level(ppu):
    read = progress_of_area(contest_ids=contest_ids("pkwkk"), area_code="6409")
    assert (read.area.total, read.area.missing, read.area.published) == (293, 293, 0)
    assert [(child.name, child.total) for child in read.children] == [
        ("PENAJAM", 141),
        ("WARU", 30),
        ("BABULU", 61),
        ("SEPAKU", 61),
    ]
    assert national().total == 293
    assert progress_of_area(contest_ids=contest_ids(), area_code="").area.total == 586
    assert not ProgressChange.objects.exists()
    assert_exact(contest_ids())
    assert_no_drift()


def test_reopening_after_new_tps_counts_only_theirs(ppu):
    Area.objects.create(code="6409032002099", name="TPS 099", level=Level.TPS, parent_id=LABANGKA)
    opened = contest_open(kind="pkwkk", region_code="6409")
    assert opened.new_uploads == 1
    assert (national().total, national().missing) == (294, 294)
    contest_open(kind="pkwkk", region_code="6409")
    assert national().total == 294
    assert_exact(contest_ids())


# --- Changes, reads and the fold


def test_reads_are_exact_before_the_changes_are_folded(ppu):
    move(upload_id(), Status.QUEUED)
    move(upload_id(), Status.SENDING)
    move(upload_id("6409011011001"), Status.PUBLISHED)
    assert ProgressChange.objects.count() == 3
    assert AreaProgress.objects.get(contest__kind="pkwkk", area_code="").missing == 293
    babulu = progress_of_area(contest_ids=contest_ids("pkwkk"), area_code=BABULU)
    assert (babulu.area.missing, babulu.area.sending, babulu.area.queued) == (60, 1, 0)
    labangka = next(child for child in babulu.children if child.code == LABANGKA)
    assert labangka.sending == 1
    assert (national().missing, national().sending, national().published) == (291, 1, 1)
    assert_exact(contest_ids())


def test_a_page_reads_an_area_and_its_children_in_one_query(ppu, django_assert_num_queries):
    move(upload_id(), Status.QUEUED)
    contests = contest_ids()
    for code in ("", "64", "6409", BABULU, LABANGKA):
        with django_assert_num_queries(1):
            progress_of_area(contest_ids=contests, area_code=code)


def test_folding_moves_the_pending_changes_and_folding_again_changes_nothing(ppu):
    move(upload_id(), Status.QUEUED)
    move(upload_id(), Status.SENDING)
    assert progress_fold() == 2
    assert not ProgressChange.objects.exists()
    folded = list(AreaProgress.objects.order_by("contest", "area_code").values())
    assert progress_fold() == 0
    fold_progress()
    assert list(AreaProgress.objects.order_by("contest", "area_code").values()) == folded
    assert AreaProgress.objects.get(contest__kind="pkwkk", area_code="").sending == 1
    assert_exact(contest_ids())


# Committed, since the contest opening holds the lock until its transaction ends.
@pytest.mark.django_db(transaction=True)
def test_a_fold_leaves_the_changes_pending_while_another_writer_holds_the_counts():
    call_command("load_demo", stdout=StringIO())
    move(upload_id(), Status.QUEUED)
    with psycopg.connect(database_url(connection.settings_dict), autocommit=True) as other:
        other.execute("SELECT pg_advisory_lock(%s)", [FOLD_LOCK])
        assert progress_fold() == 0
        # Let go before closing: a closed connection's backend releases its locks when it gets
        # round to exiting, which the next fold could beat (seen once in CI).
        other.execute("SELECT pg_advisory_unlock(%s)", [FOLD_LOCK])
    assert ProgressChange.objects.count() == 1
    assert national().queued == 1
    assert progress_fold() == 1


def test_a_transition_rolled_back_counts_nothing(ppu):
    with pytest.raises(RuntimeError), transaction.atomic():
        move(upload_id(), Status.QUEUED)
        raise RuntimeError("the caller failed after the transition")
    assert not ProgressChange.objects.exists()
    assert national().queued == 0


def test_a_stuck_upload_is_counted_at_every_level_and_uncounted_when_published(ppu):
    babulu_upload = upload_id()
    move(babulu_upload, Status.DELIVERED)
    assert upload_mark_stuck(upload_id=babulu_upload, reason=StuckReason.SERVER_QUEUE)
    for code in ("", "64", "6409", BABULU, LABANGKA):
        assert progress_of_area(contest_ids=contest_ids("pkwkk"), area_code=code).area.stuck == 1
    progress_fold()
    assert (national().stuck, national().delivered) == (1, 1)
    assert upload_mark_published(upload_id=babulu_upload, images=["page-1.jpg"])
    assert (national().stuck, national().delivered, national().published) == (0, 0, 1)
    progress_fold()
    assert (national().stuck, national().published) == (0, 1)
    assert_exact(contest_ids())


@pytest.mark.django_db(transaction=True)
def test_counts_equal_a_fresh_group_by_after_a_burst_of_concurrent_changes_from_four_processes(
    start_process,
):
    call_command("load_demo", stdout=StringIO())
    env = child_env()
    bursts = [
        start_process(
            [sys.executable, "-m", "tests.progress_burst", "--seed", str(seed), "--changes", "300"],
            name=f"burst-{seed}",
            env=env,
        )
        for seed in range(4)
    ]
    # Folds run while the processes write, as beat's would.
    while any(burst.process.poll() is None for burst in bursts):
        progress_fold()
    for burst in bursts:
        assert burst.process.returncode == 0, burst.output()
    assert Upload.objects.exclude(status=Status.MISSING).count() > 100
    assert_exact(contest_ids())
    progress_fold()
    assert not ProgressChange.objects.exists()
    assert_exact(contest_ids())
    assert_exact(contest_ids("pkwkp"))
    assert_no_drift()


# --- Recount


def drift_by_sql() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE progress_areaprogress SET published = published + 5"
            " WHERE area_code = '6409' AND contest_id = %s",
            contest_ids("pkwkk"),
        )
        cursor.execute(
            "DELETE FROM progress_areaprogress WHERE area_code = %s AND contest_id = %s",
            [LABANGKA, *contest_ids("pkwkp")],
        )


def recount(*arguments: str) -> list[str]:
    out = StringIO()
    call_command("recount_progress", *arguments, stdout=out)
    return out.getvalue().splitlines()


def test_recount_reports_no_drift_when_the_counts_match(ppu):
    move(upload_id(), Status.QUEUED)
    assert recount() == ["no drift: 122 area counts match the uploads"]


def test_recount_reports_drift_per_area_and_fixes_it_with_fix(ppu):
    move(upload_id(), Status.QUEUED)
    drift_by_sql()
    labangka_tps = Upload.objects.filter(tps__code__startswith=LABANGKA, contest__kind="pkwkp")
    lines = recount()
    assert sorted(lines[:-1]) == [
        "pkwkk 6409 6409: published 5 counted, 0 actual",
        f"pkwkp 64 {LABANGKA}: total 0 counted, {labangka_tps.count()} actual, "
        f"missing 0 counted, {labangka_tps.count()} actual",
    ]
    assert lines[-1] == "2 of 122 area counts drifted; --fix repairs them"
    assert recount() == lines, "a report alone repairs nothing"
    assert recount("--fix")[-1] == "2 of 122 area counts drifted; repaired"
    assert recount() == ["no drift: 122 area counts match the uploads"]
    assert_exact(contest_ids())


def test_a_repair_with_changes_still_pending_stays_exact_once_they_are_folded(ppu):
    move(upload_id(), Status.QUEUED)
    move(upload_id("6409011011001"), Status.PUBLISHED)
    drift_by_sql()
    assert progress_recount(fix=True).fixed
    assert ProgressChange.objects.count() == 2
    assert_exact(contest_ids())
    progress_fold()
    assert_exact(contest_ids())
    assert_no_drift()


def test_recount_removes_counts_of_a_contest_without_uploads(ppu):
    contest = Contest.objects.create(kind="ppwp", region_id="64", name="empty")
    AreaProgress.objects.create(contest=contest, area_code="", total=3, missing=3)
    stray = "ppwp 64 national: total 3 counted, 0 actual, missing 3 counted, 0 actual"
    assert recount()[0] == stray
    recount("--fix")
    assert not AreaProgress.objects.filter(contest=contest).exists()


# --- Percent


@pytest.mark.parametrize(
    ("published", "total", "percent"),
    [
        (290, 293, Decimal("98.97")),
        (293, 293, Decimal("100.00")),
        (292_999, 293_000, Decimal("99.99")),
        (999_999_999, 1_000_000_000, Decimal("99.99")),
        (1, 3, Decimal("33.33")),
        (2, 3, Decimal("66.66")),
        (0, 293, Decimal("0.00")),
        (0, 0, None),
    ],
)
def test_percent_is_cut_not_rounded_so_100_means_all_are_in(published, total, percent):
    assert cut_percent(published, total) == percent


@pytest.mark.parametrize(
    ("language", "published", "total", "shown"),
    [
        ("id", 290, 293, "98,97%"),
        ("en", 290, 293, "98.97%"),
        ("id", 293, 293, "100,00%"),
        ("en", 293, 293, "100.00%"),
        ("id", 292_999, 293_000, "99,99%"),
        ("id", 0, 0, "\N{EN DASH}"),
        ("en", 0, 0, "\N{EN DASH}"),
    ],
)
def test_the_percent_filter_writes_it_in_the_active_language(language, published, total, shown):
    template = Template("{% load progress %}{{ counts.percent|percent }}")
    counts = Counts("6409", "PENAJAM PASER UTARA", total=total, published=published)
    with translation.override(language):
        assert template.render(Context({"counts": counts})) == shown
