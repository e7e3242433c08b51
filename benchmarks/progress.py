"""Status changes per second with the per-area counts maintained, the fold lag, and the reads.

    python -m benchmarks.progress [--tps 823236] [--seconds 20] [--writers 2]

In a throwaway database: the synthetic national tree, five Pemilu contests (ppwp, pdpr, pdpd,
pdprdp, pdprdk) opened over each of the 38 provinsi (4.1 million uploads at 823,236 TPS), then
--writers processes making random status changes through `upload_transition` all over the country
for --seconds while a folder process folds every 2 s as beat does, and the main process reads
a little. At the end the counts are recounted against a fresh GROUP BY: any drift is a failure.
The issue asks for at least 1,000 status changes per second and pages under 50 ms p95.

Django's own modules and the apps' are imported inside the functions that use them: the
benchmark points Django at a throwaway database (benchmarks.throwaway) before any is loaded.
"""

import argparse
import multiprocessing
import random
import statistics
import time

from benchmarks.throwaway import DEFAULT_NAME, machine, throwaway_database, timed

NATIONAL_TPS = 823_236
KINDS = ["ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"]
FOLD_EVERY = 2.0  # as CELERY_BEAT_SCHEDULE["fold-progress"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tps", type=int, default=NATIONAL_TPS)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--reads", type=int, default=200, help="per level, after the load")
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    options = parser.parse_args()
    with throwaway_database(options.database):
        print(f"progress at {options.tps:,} TPS x {len(KINDS)} contests ({machine()})")
        load_data(options.tps)
        load(seconds=options.seconds, writers=options.writers)
        report_reads(options.reads, "reads after the final fold")
        check_counts()


def load_data(tps: int) -> None:
    from django.db import connection

    from regions.models import Area, Level
    from uploads.services.contests import contest_open

    seconds, output = timed("generate_regions", "--tps", str(tps))
    print(f"generate_regions: {seconds:.1f} s; {output}")
    started = time.perf_counter()
    provinsi = Area.objects.filter(level=Level.PROVINSI).values_list("code", flat=True)
    uploads = sum(
        contest_open(kind=kind, region_code=code).new_uploads for kind in KINDS for code in provinsi
    )
    opened = time.perf_counter() - started
    print(f"contest_open x {len(KINDS) * len(provinsi)}: {uploads:,} uploads in {opened:.1f} s")
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def load(*, seconds: float, writers: int) -> None:
    from django.db import connections

    from uploads.models import Upload
    from uploads.progress.services import progress_fold

    progress_fold()
    # contest_open inserts in bulk: the ids run without gaps.
    first = Upload.objects.order_by("pk").values_list("pk", flat=True)[0]
    last = Upload.objects.order_by("-pk").values_list("pk", flat=True)[0]
    connections.close_all()  # the children must not share this process's connection
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    deadline = time.time() + seconds
    processes = [
        context.Process(target=_write, args=(seed, first, last, deadline, results))
        for seed in range(writers)
    ]
    processes.append(context.Process(target=_fold, args=(deadline, results)))
    for process in processes:
        process.start()
    read_timings = _read_under_load(deadline)
    outcomes = [results.get() for _ in processes]
    for process in processes:
        process.join()
    _report_load(seconds, outcomes, read_timings)


def _write(seed: int, first: int, last: int, deadline: float, results) -> None:
    from uploads.models import Status
    from uploads.services.transitions import upload_transition

    rng = random.Random(seed)
    changes = calls = 0
    while time.time() < deadline:
        new = rng.choice(Status.values)
        # From any other status: each call that finds its upload elsewhere is a real change.
        expected = tuple(status for status in Status.values if status != new)
        old = upload_transition(
            upload_id=rng.randint(first, last), expected=expected, new=new, action="bench"
        )
        calls += 1
        changes += old is not None
    results.put(("writer", calls, changes))


def _fold(deadline: float, results) -> None:
    from uploads.progress.services import progress_fold

    folds = []
    while time.time() < deadline:
        started = time.perf_counter()
        moved = progress_fold()
        took = time.perf_counter() - started
        folds.append((moved, took))
        time.sleep(max(0.0, FOLD_EVERY - took))
    results.put(("folder", folds))


def _read_under_load(deadline: float) -> dict[str, list[float]]:
    timings = {"national": [], "provinsi": [], "kabupaten": []}
    cases = _read_cases()
    while time.time() < deadline:
        for level, case in cases.items():
            timings[level].append(_timed_read(*case()))
        time.sleep(0.2)
    return timings


def _report_load(seconds: float, outcomes: list, read_timings: dict) -> None:
    writers = [outcome for outcome in outcomes if outcome[0] == "writer"]
    (folds,) = [outcome[1] for outcome in outcomes if outcome[0] == "folder"]
    calls = sum(calls for _, calls, _ in writers)
    changes = sum(changes for _, _, changes in writers)
    print(
        f"{len(writers)} writers for {seconds:.0f} s: {changes:,} status changes "
        f"({changes / seconds:,.0f}/s; {calls / seconds:,.0f} upload_transition calls/s)"
    )
    moved = [count for count, _ in folds]
    took = [duration * 1000 for _, duration in folds]
    print(
        f"folder every {FOLD_EVERY:.0f} s: {len(folds)} folds, {sum(moved):,} changes, "
        f"up to {max(moved):,} a fold; fold {_percentiles(took)}; "
        f"so a change waits at most ~{FOLD_EVERY + max(took) / 1000:.1f} s to be folded "
        "(reads count it at once)"
    )
    for level, values in read_timings.items():
        print(f"read under load, {level}: {_percentiles(values)} ({len(values)} reads)")


def report_reads(reads: int, title: str) -> None:
    from uploads.progress.services import progress_fold

    progress_fold()
    cases = _read_cases()
    for level, case in cases.items():
        values = [_timed_read(*case()) for _ in range(reads)]
        print(f"{title}, {level}: {_percentiles(values)} ({reads} reads)")


def _read_cases() -> dict:
    """For each page level, a function giving (contest ids, area code) for one read: the nation
    over the 38 ppwp contests, a random provinsi or kabupaten in its provinsi's ppwp contest."""
    from regions.models import Area, Contest, Level

    ppwp = dict(Contest.objects.filter(kind="ppwp").values_list("region_id", "pk"))
    provinsi = list(ppwp)
    kabupaten = list(Area.objects.filter(level=Level.KABUPATEN).values_list("code", flat=True))
    rng = random.Random(0)

    def national():
        return list(ppwp.values()), ""

    def one_provinsi():
        code = rng.choice(provinsi)
        return [ppwp[code]], code

    def one_kabupaten():
        code = rng.choice(kabupaten)
        return [ppwp[code[:2]]], code

    return {"national": national, "provinsi": one_provinsi, "kabupaten": one_kabupaten}


def _timed_read(contests: list[int], code: str) -> float:
    from uploads.progress.selectors import progress_of_area

    started = time.perf_counter()
    progress_of_area(contest_ids=contests, area_code=code)
    return (time.perf_counter() - started) * 1000


def _percentiles(milliseconds: list[float]) -> str:
    if len(milliseconds) < 2:
        return f"{milliseconds[0]:.1f} ms" if milliseconds else "none"
    cuts = statistics.quantiles(milliseconds, n=20)
    return f"p50 {statistics.median(milliseconds):.1f} ms, p95 {cuts[18]:.1f} ms"


def check_counts() -> None:
    from uploads.progress.services import progress_recount

    started = time.perf_counter()
    recount = progress_recount()
    seconds = time.perf_counter() - started
    print(
        f"recount against a fresh GROUP BY: {recount.areas:,} area counts, "
        f"{len(recount.drifts)} drifted ({seconds:.1f} s)"
    )
    if recount.drifts:
        raise SystemExit("error: the counts drifted")


if __name__ == "__main__":
    main()
