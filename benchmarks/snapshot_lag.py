"""How long a publication takes to show in the public snapshot at a sustained national rate.

    python -m benchmarks.snapshot_lag [--tps 823236] [--rate 150] [--seconds 120]
        [--concurrency 1] [--deep-every 100] [--read-all]

In a throwaway database: the synthetic national tree with five Pemilu contests (4.1 million
uploads), --changes random status changes (benchmarks.dashboard.liven_up), then the entries the
public reads most, as first requests build them (benchmarks.snapshot.build_most_read: the
nation, every provinsi and every kabupaten of each contest kind, each as its page in Indonesian
and English, its 15-second poll part, its hhcw file and its CSV).

Then the refreshers run as the deployment runs them: a Celery worker on the snapshot queue
with --concurrency processes (docker-compose.yml's SNAPSHOT_CONCURRENCY, default 1) and beat,
with the settings' period and budget. A writer process takes --rate uploads a second, each
queued, delivered a second later and published three seconds after that (three status
changes per publication, spread over the national tree), for --seconds; another process folds
the counts every 2 s, as beat's fold does. Before the run, readers open the kecamatan, desa and
TPS of every --deep-every-th publication to come (page, poll part and file), so that some
entries below the kabupaten exist, as they do on the night.

Meanwhile this process reads, like the public, the hhcw file, the Indonesian page and its live
part of every area watched, every half second (through public.services.snapshot_entry, what the
views call), and records for each publication the time from its commit until each of those
shows it: at the nation, its provinsi, its kabupaten and, for the deep ones, below. The English
pages and the CSVs are read by nobody during the run, unless --read-all (then this process
also reads every other entry of each area it reads). Printed: p50 / p95 / max per level and
entry, and the expectations (a publication at a level and entry) not met within two minutes
after the last publication.

Django's own modules and the apps' are imported inside the functions that use them: the
benchmark points Django at a throwaway database (benchmarks.throwaway) before any is loaded.
"""

import argparse
import json
import multiprocessing
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.delivery import PROJECT_DIR
from benchmarks.progress import FOLD_EVERY, NATIONAL_TPS, load_data
from benchmarks.snapshot import LANGUAGES
from benchmarks.throwaway import DEFAULT_NAME, bench_redis_url, machine, throwaway_database

BENCH_REDIS_DB = 6  # bench-delivery has 7
DELIVERED_AFTER = 1.0  # seconds from queued to delivered
PUBLISHED_AFTER = 4.0  # seconds from queued to published
READ_EVERY = 0.5  # how often the readers look at an area with a publication not yet seen
DRAIN_SECONDS = 120.0
LEVELS = ("nation", "provinsi", "kabupaten", "kecamatan", "desa", "tps")
ENTRIES = ("json", "page", "live")
# An area page's big bar, and a TPS page's status (public/templates, progress/parts/summary.html).
BAR = re.compile(rb'<progress class="bar" max="\d+" value="(\d+)"')
TPS_STATUS = re.compile(rb'class="big-status">\s*<span class="status status-(\w+)"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tps", type=int, default=NATIONAL_TPS)
    parser.add_argument("--changes", type=int, default=20_000, help="before the run")
    parser.add_argument("--rate", type=float, default=150, help="publications a second")
    parser.add_argument("--seconds", type=float, default=120)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=int(os.environ.get("SNAPSHOT_CONCURRENCY", "1")),
        help="snapshot worker processes (SNAPSHOT_CONCURRENCY)",
    )
    parser.add_argument("--deep-every", type=int, default=100)
    parser.add_argument("--read-all", action="store_true", help="every entry, not the hot ones")
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    options = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sirekap-bench-snapshot-lag-"))
    os.environ["REDIS_URL"] = bench_redis_url(BENCH_REDIS_DB)
    os.environ["SNAPSHOT_ROOT"] = str(folder / "snapshots")
    with throwaway_database(options.database):
        print(
            f"snapshot lag at {options.tps:,} TPS x 5 contests, {options.rate:g} publications/s "
            f"for {options.seconds:g} s, {options.concurrency} snapshot process(es) "
            f"({machine()})"
        )
        load_data(options.tps)
        from benchmarks.dashboard import liven_up

        liven_up(options.changes)
        _build_most_read()
        _run(options, folder)
    shutil.rmtree(folder / "snapshots", ignore_errors=True)  # the log stays


def _build_most_read() -> None:
    """The entries of benchmarks.snapshot.build_most_read, each area's read once for all of
    them, in two processes: the same files in half the time, so that the run starts sooner."""
    from django.db import connections

    from public import snapshots
    from public.services import snapshot_refresh_all
    from regions.models import Area, Level

    areas = Area.objects.filter(level__in=[Level.PROVINSI, Level.KABUPATEN])
    codes = ["", *areas.values_list("code", flat=True)]
    kinds = ["ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"]
    work = [(kind, code) for kind in kinds for code in codes]
    started = time.perf_counter()
    connections.close_all()
    with multiprocessing.get_context("fork").Pool(2) as pool:
        pool.map(_build_area, work, chunksize=50)
    print(f"built {len(work):,} areas' entries in {time.perf_counter() - started:.1f} s")
    assert snapshots.kinds() == sorted(kinds)
    snapshot_refresh_all(budget_seconds=float("inf"))  # the refreshers' state, as beat's would be


def _build_area(work: tuple[str, str]) -> None:
    from public import snapshots
    from public.entries import EntryInputs, entry_build, page_name

    kind, code = work
    source = EntryInputs(kind, code)
    pages = [page_name(language=language, part="page", sort="code") for language in LANGUAGES]
    live = page_name(language="id", part="live", sort="code")
    for name in [live, *pages, "hhcw.json", "progress.csv"]:
        entry = entry_build(source, name)
        assert entry is not None, (kind, code, name)
        snapshots.entry_write(snapshots.Key(kind, code, name), entry)


def _run(options, folder: Path) -> None:
    from django.db import connections

    from sirekap_tracker.health import redis_client

    redis_client().flushdb()
    log = folder / "refreshers.log"
    print(f"refreshers' log: {log}")
    connections.close_all()  # the children must not share this process's connection
    with open(log, "w") as out:
        processes = [
            _celery(out, "worker", "--queues", "snapshot", "--pool", "prefork",
                    "--concurrency", str(options.concurrency)),
            _celery(out, "beat", "--schedule", str(folder / "beat-schedule")),
        ]  # fmt: skip
        try:
            _wait_refreshed()
            results = _measure(options)
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait()
    redis_client().flushdb()
    _report(results, options)


def _celery(out, *arguments: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "--app", "sirekap_tracker", *arguments],
        cwd=PROJECT_DIR,
        stdout=out,
        stderr=subprocess.STDOUT,
    )


def _wait_refreshed() -> None:
    """Until every contest kind was refreshed once by the worker, with nothing left behind."""
    from public import snapshots

    started = time.time()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        kinds = snapshots.kinds()
        states = [snapshots.state_read(kind) for kind in kinds]
        if kinds and all(
            state.get("finished_at", 0) > started and not state.get("pending") for state in states
        ):
            return
        time.sleep(0.5)
    sys.exit("error: the snapshot worker did not refresh every kind within 5 minutes")


# --- The run


@dataclass
class Tracked:
    """An area (or TPS) whose entries the readers watch: what each entry showed at the start,
    and the publications under it since, in order, with when each was committed."""

    level: str
    base: dict[str, int]
    published: int = 0
    waiting: dict[str, deque] = field(default_factory=lambda: {e: deque() for e in ENTRIES})


def _measure(options) -> dict[tuple[str, str], list[float]]:
    from django.db import connections

    context = multiprocessing.get_context("fork")
    news = context.Queue()
    candidates = _candidates(int(options.rate * options.seconds * 1.2) + 100)
    tracked = _most_read()
    tracked |= _opened_below(candidates[:: options.deep_every] if options.deep_every else [])
    stop_folding = context.Event()
    children = [
        context.Process(target=_fold, args=(stop_folding,)),
        context.Process(target=_write, args=(candidates, options.rate, options.seconds, news)),
    ]
    connections.close_all()  # the children must not share this process's connection
    for child in children:
        child.start()
    try:
        lags, unseen = _observe(news, tracked, read_all=options.read_all)
    finally:
        stop_folding.set()
        for child in children:
            child.join()
    lags[("unseen", "")] = [float(unseen)]
    return lags


def _candidates(count: int) -> list[tuple[int, str, str]]:
    """(upload id, TPS, contest kind) of random uploads still missing, in random order."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT upload.id, upload.tps_id, contest.kind FROM uploads_upload upload
            JOIN regions_contest contest ON contest.id = upload.contest_id
            WHERE upload.status = 'missing' ORDER BY random() LIMIT %s
            """,
            [count],
        )
        return cursor.fetchall()


def _fold(stop) -> None:
    from uploads.progress.services import progress_fold

    while not stop.wait(FOLD_EVERY):
        progress_fold()


def _write(candidates, rate: float, seconds: float, news) -> None:
    """Queued, delivered, published: one upload after the other at `rate` a second."""
    from uploads.models import Status
    from uploads.services.transitions import upload_transition

    steps: deque = deque()  # (due, upload id, tps, kind, expected, new), in due order
    started = time.monotonic()
    taken = 0
    last_taken = started
    while True:
        now = time.monotonic()
        due_new = int(rate * min(now - started, seconds))
        while taken < due_new:
            upload_id, tps, kind = candidates[taken]
            taken += 1
            last_taken = now
            upload_transition(
                upload_id=upload_id, expected=(Status.MISSING,), new=Status.QUEUED, action="bench"
            )
            steps.append((now + DELIVERED_AFTER, upload_id, tps, kind, Status.QUEUED,
                          Status.DELIVERED))  # fmt: skip
        while steps and steps[0][0] <= now:
            _, upload_id, tps, kind, expected, new = steps.popleft()
            upload_transition(upload_id=upload_id, expected=(expected,), new=new, action="bench")
            if new == Status.DELIVERED:
                due = now + PUBLISHED_AFTER - DELIVERED_AFTER
                steps.append((due, upload_id, tps, kind, Status.DELIVERED, Status.PUBLISHED))
            else:
                news.put(("published", kind, tps, time.time()))
        if taken >= len(candidates) or (now - started >= seconds and not steps):
            break
        time.sleep(0.005)
    news.put(("done", taken, last_taken - started))


def _opened_below(candidates) -> dict[tuple[str, str], "Tracked"]:
    """Readers open these TPS's kecamatan, desa and TPS before the run: their entries are
    built, as first requests build them, and watched from then on."""
    started = time.perf_counter()
    tracked = {}
    for _, tps, kind in candidates:
        for code in (tps[:6], tps[:10], tps):
            tracked[kind, code] = Tracked(_level(code), _shown(kind, code))
    took = time.perf_counter() - started
    print(f"opened {len(tracked):,} areas and TPS below the kabupaten in {took:.1f} s")
    return tracked


def _shown(kind: str, code: str) -> dict[str, int]:
    """What each entry the readers watch shows now (built if it was not)."""
    from public.services import snapshot_entry
    from public.snapshots import Key

    return {
        entry: _count(snapshot_entry(Key(kind, code, name)), entry, code)
        for entry, name in _names().items()
    }


def _names() -> dict[str, str]:
    from public.entries import page_name

    return {
        "json": "hhcw.json",
        "page": page_name(language="id", part="page", sort="code"),
        "live": page_name(language="id", part="live", sort="code"),
    }


def _count(entry, what: str, code: str) -> int:
    """The published TPS an entry shows (for a TPS: 1 once it shows it published)."""
    if entry is None:
        raise SystemExit(f"error: no {what} entry for {code!r}")
    tps = len(code) == 13
    if what == "json":
        value = json.loads(entry.body)
        return int(value["status_suara"]) if tps else value["progres"]["progres"]
    if tps:
        found = TPS_STATUS.search(entry.body)
        return int(found is not None and found.group(1) == b"published")
    return int(BAR.search(entry.body).group(1))


def _most_read() -> dict[tuple[str, str], Tracked]:
    """The nation, provinsi and kabupaten of every kind, as their entries show them now."""
    from public import snapshots
    from regions.models import Area, Level

    areas = Area.objects.filter(level__in=[Level.PROVINSI, Level.KABUPATEN])
    codes = ["", *areas.values_list("code", flat=True)]
    return {
        (kind, code): Tracked(_level(code), _shown(kind, code))
        for kind in snapshots.kinds()
        for code in codes
    }


def _level(code: str) -> str:
    return LEVELS[{0: 0, 2: 1, 4: 2, 6: 3, 10: 4, 13: 5}[len(code)]]


def _observe(news, tracked: dict, *, read_all: bool) -> tuple[dict, int]:
    """Reads every watched area's entries every READ_EVERY seconds, as the public does, until
    every publication was seen (or DRAIN_SECONDS after the writer's last one); the lags by
    (level, entry) and how many were never seen."""
    from public import snapshots

    # Every entry read stays in memory, checked by a stat per read, as in a web process.
    snapshots.CACHED_ENTRIES = 10**6
    lags: dict[tuple[str, str], list[float]] = defaultdict(list)
    seen: dict[tuple, tuple] = {}
    done_at = None
    while True:
        started = time.monotonic()
        done_at = _take_news(news, tracked) or done_at
        for key, area in tracked.items():
            _look(key, area, lags, seen, read_all=read_all)
        waiting = sum(len(queue) for area in tracked.values() for queue in area.waiting.values())
        if done_at and (not waiting or time.monotonic() - done_at > DRAIN_SECONDS):
            return lags, waiting
        time.sleep(max(0.0, READ_EVERY - (time.monotonic() - started)))


def _take_news(news, tracked: dict) -> float | None:
    import queue

    done_at = None
    while True:
        try:
            message = news.get_nowait()
        except queue.Empty:
            return done_at
        if message[0] == "published":
            _, kind, tps, at = message
            for code in (tps[:length] for length in (0, 2, 4, 6, 10, 13)):
                area = tracked.get((kind, code))
                if area is not None:
                    area.published += 1
                    for entry in ENTRIES:
                        area.waiting[entry].append((area.base[entry] + area.published, at))
        else:
            _, taken, took = message
            print(f"writer: {taken:,} publications in {took:.1f} s, {taken / took:.0f}/s")
            done_at = time.monotonic()


def _look(key, area: Tracked, lags, seen, *, read_all: bool) -> None:
    from public import snapshots
    from public.services import snapshot_entry
    from public.snapshots import Key

    kind, code = key
    now = time.time()
    for entry, name in _names().items():
        found = snapshot_entry(Key(kind, code, name))
        waiting = area.waiting[entry]
        if not waiting or seen.get((kind, code, entry)) is found:
            continue
        seen[kind, code, entry] = found
        shown = _count(found, entry, code)
        while waiting and waiting[0][0] <= shown:
            lags[area.level, entry].append(now - waiting.popleft()[1])
    if read_all:
        for name in snapshots.entry_names(kind, code):
            snapshot_entry(Key(kind, code, name))


def _report(lags: dict, options) -> None:
    unseen = int(lags.pop(("unseen", ""))[0])
    print(f"time from a publication's commit to its showing (seconds), read every {READ_EVERY} s:")
    print(f"  {'level':<10} {'entry':<5} {'count':>7} {'p50':>6} {'p95':>6} {'max':>6}")
    for level in LEVELS:
        for entry in ENTRIES:
            found = sorted(lags.get((level, entry), []))
            if not found:
                continue
            p50 = statistics.median(found)
            p95 = found[min(len(found) - 1, int(len(found) * 0.95))]
            print(
                f"  {level:<10} {entry:<5} {len(found):>7,} {p50:>6.1f} {p95:>6.1f} "
                f"{found[-1]:>6.1f}"
            )
    print(f"not seen within {DRAIN_SECONDS:.0f} s after the last publication: {unseen:,}")


if __name__ == "__main__":
    main()
