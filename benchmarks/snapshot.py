"""What the public snapshot costs the workers at national scale.

    python -m benchmarks.snapshot [--tps 823236] [--changes 20000] [--burst 2000] [--processes 2]
    python -m benchmarks.snapshot --cost [--tps 823236] [--runs 3] [--profile]

In a throwaway database: the synthetic national tree with five Pemilu contests (4.1 million
uploads at 823,236 TPS), --changes random status changes with timeline snapshots (as
benchmarks.dashboard). Then, for each contest kind, the entries the public reads most are built
as first requests would build them: the nation, every provinsi and every kabupaten, each as its
page in Indonesian and English, its 15-second poll part, its hhcw file and its CSV. Then --burst
more status changes (about two seconds of election night at 1,000 a second), and a refresh of
each kind in turn, with no time budget, rebuilds everything they touched: how many areas and
entries, how long, and so how many areas a refresh can rebuild in its budget
(SNAPSHOT_REFRESH_BUDGET_SECONDS). Then as many changes again, refreshed by --processes processes
taking a kind each at a time, as that many snapshot worker processes would. Last, a refresh
that finds nothing changed.

With --cost, instead: what a refresh costs the refreshing process per area, in CPU time (not
wall time: the machine is shared). The most-read areas of ppwp (the nation, every provinsi and
every kabupaten) with the entries the public reads on the night (the Indonesian page, its poll
part and the hhcw file; benchmarks.snapshot_lag) are built, then rebuilt --runs times as a
refresh rebuilds them; each run prints its CPU ms per area. PostgreSQL's share is apart.
--profile adds cProfile's view of one more run.

Django's own modules and the apps' are imported inside the functions that use them: the
benchmark points Django at a throwaway database (benchmarks.throwaway) before any is loaded.
"""

import argparse
import cProfile
import pstats
import random
import tempfile
import time
from multiprocessing import get_context

from benchmarks.dashboard import liven_up
from benchmarks.progress import KINDS, NATIONAL_TPS, load_data
from benchmarks.throwaway import DEFAULT_NAME, machine, throwaway_database

LANGUAGES = ("id", "en")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tps", type=int, default=NATIONAL_TPS)
    parser.add_argument("--changes", type=int, default=20_000)
    parser.add_argument("--burst", type=int, default=2_000)
    parser.add_argument("--processes", type=int, default=2, help="refreshing kinds at once")
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    parser.add_argument("--cost", action="store_true", help="CPU ms per area of a refresh")
    parser.add_argument("--runs", type=int, default=3, help="with --cost")
    parser.add_argument("--profile", action="store_true", help="with --cost: cProfile one run")
    options = parser.parse_args()
    with throwaway_database(options.database):
        _use_a_folder_of_its_own()
        print(f"public snapshot at {options.tps:,} TPS x {len(KINDS)} contests ({machine()})")
        load_data(options.tps)
        liven_up(options.changes)
        if options.cost:
            refresh_cost(options.runs, profile=options.profile)
            return
        build_most_read()
        refresh_after(options.burst, options.processes)


def _use_a_folder_of_its_own() -> None:

    from django.conf import settings

    settings.SNAPSHOT_ROOT = tempfile.mkdtemp(prefix="sirekap-bench-snapshot-")


def _names() -> list[str]:
    from public.entries import page_name

    pages = [page_name(language=language, part="page", sort="code") for language in LANGUAGES]
    return [*pages, page_name(language="id", part="live", sort="code"), "hhcw.json", "progress.csv"]


def build_most_read() -> None:
    from public.services import snapshot_entry, snapshot_refresh_all
    from public.snapshots import Key
    from regions.models import Area, Level

    areas = Area.objects.filter(level__in=[Level.PROVINSI, Level.KABUPATEN])
    codes = ["", *areas.values_list("code", flat=True)]
    started = time.perf_counter()
    for kind in KINDS:
        for code in codes:
            for name in _names():
                assert snapshot_entry(Key(kind, code, name)) is not None
    took = time.perf_counter() - started
    areas = len(KINDS) * len(codes)
    print(
        f"first build of {areas:,} areas x {len(_names())} entries: {took:.1f} s "
        f"({took / areas * 1000:.0f} ms an area, one entry at a time)"
    )
    snapshot_refresh_all(budget_seconds=float("inf"))  # the refreshers' state, as beat's would be


def refresh_after(burst: int, processes: int) -> None:
    from django.conf import settings

    from public.services import snapshot_refresh_all

    _change(burst, seed=3)
    started = time.perf_counter()
    refreshes = list(snapshot_refresh_all(budget_seconds=float("inf")).values())
    took = time.perf_counter() - started
    changed = sum(refresh.changed for refresh in refreshes)
    rebuilt = sum(refresh.rebuilt for refresh in refreshes)
    entries = sum(refresh.entries for refresh in refreshes)
    per_area = took / max(rebuilt, 1)
    budget = settings.SNAPSHOT_REFRESH_BUDGET_SECONDS
    print(
        f"refresh after {burst:,} status changes, one process, kind after kind: {changed:,} "
        f"areas changed, {rebuilt:,} with entries rebuilt ({entries:,} entries) in {took:.1f} s: "
        f"{per_area * 1000:.0f} ms an area, about {budget / per_area:.0f} areas per {budget} s "
        "budget"
    )
    _change(burst, seed=4)
    started = time.perf_counter()
    refreshes = _refresh_in_parallel(processes)
    took_parallel = time.perf_counter() - started
    rebuilt = sum(refresh.rebuilt for refresh in refreshes)
    print(
        f"the same after {burst:,} other changes, {processes} processes taking a kind each at a "
        f"time (as {processes} snapshot worker processes would): {rebuilt:,} areas rebuilt in "
        f"{took_parallel:.1f} s, {took_parallel / max(rebuilt, 1) * 1000:.0f} ms an area"
    )
    idle = snapshot_refresh_all(budget_seconds=float("inf")).values()
    print(f"refresh with nothing changed: {sum(r.seconds for r in idle) * 1000:.0f} ms")


# What the public reads on the night, of each most-read area (benchmarks.snapshot_lag).
HOT_NAMES = ("page.id.page.code.html", "page.id.live.code.html", "hhcw.json")
COST_KIND = "ppwp"


def refresh_cost(runs: int, *, profile: bool) -> None:
    from django.conf import settings

    from public.services import _rebuild, snapshot_entry
    from public.snapshots import Key
    from regions.models import Area, Level

    settings.SNAPSHOT_READ_WINDOW_SECONDS = 10**9  # every entry built counts as read
    levels = [Level.PROVINSI, Level.KABUPATEN]
    codes = [
        "",
        *Area.objects.filter(level__in=levels).order_by("code").values_list("code", flat=True),
    ]
    for code in codes:
        for name in HOT_NAMES:
            assert snapshot_entry(Key(COST_KIND, code, name)) is not None
    areas = [[COST_KIND, code, 0.0] for code in codes]
    for run in range(1, runs + 1):
        started = time.process_time()
        rebuilt, entries, _ = _rebuild(areas, deadline=float("inf"))
        took = time.process_time() - started
        print(
            f"run {run}: {rebuilt} areas of {COST_KIND} ({entries} entries) rebuilt in "
            f"{took:.2f} s of this process's CPU: {took / rebuilt * 1000:.2f} ms an area"
        )
    if profile:
        profiler = cProfile.Profile()
        profiler.runcall(_rebuild, areas, deadline=float("inf"))
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(40)


def _change(burst: int, *, seed: int) -> None:
    from uploads.models import Status, Upload
    from uploads.progress.services import progress_fold
    from uploads.services.transitions import upload_transition

    rng = random.Random(seed)
    first = Upload.objects.order_by("pk").values_list("pk", flat=True)[0]
    last = Upload.objects.order_by("-pk").values_list("pk", flat=True)[0]
    for _ in range(burst):
        upload_transition(
            upload_id=rng.randint(first, last),
            expected=tuple(Status.values),
            new=rng.choice([Status.PUBLISHED, Status.DELIVERED, Status.QUEUED]),
            action="bench",
        )
    progress_fold()


def _refresh_in_parallel(processes: int) -> list:

    from django.db import connections

    from public.services import snapshot_kinds_due

    kinds = snapshot_kinds_due()
    connections.close_all()  # each forked process opens its own
    with get_context("fork").Pool(processes) as pool:
        return pool.map(_refresh_kind, kinds, chunksize=1)


def _refresh_kind(kind: str):
    from public.services import snapshot_refresh

    return snapshot_refresh(kind, budget_seconds=float("inf"))


if __name__ == "__main__":
    main()
