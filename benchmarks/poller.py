"""The poller's CPU per poll and per published TPS, after a busy interval of the night.

    python -m benchmarks.poller [--tps 20000] [--published 1000] [--rounds 2] [--profile]

In a throwaway database: a generated tree of --tps TPS with the five Pemilu contests opened over
every provinsi, and the publication server stand-in (a process of its own, as in production the
KPU's site is another machine). Each round, the stand-in is sent the five forms of --published TPS
picked at random over the whole tree (PUT as the Sirekap app does, published at once), then one
poll walks the site down to them and marks them published (the uploads were `missing`: the
source becomes the public site, as for a form that never came through here), then one more poll
finds nothing new (the steady state). After every round the folder runs, as beat's does every 2 s.

Measured per poll: CPU time of this process (time.process_time: the walk, its threads, the ORM),
of its PostgreSQL backend and of the stand-in (/proc/PID/stat; the backend's only when the
server runs on this machine), and what they come to per published upload. --profile prints
where this process's main thread spent the first busy poll (cProfile, wall time: waits on
PostgreSQL show; the fetching threads are not in it, but the profiler slows them too, so that
round's CPU figures are not comparable). The run ends with a recount: it exits 1 when a
published count or an area's counts are off.
"""

import argparse
import cProfile
import io
import os
import pstats
import random
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.cpu import backend_pid, cpu_seconds
from benchmarks.throwaway import DEFAULT_NAME, bench_redis_url, machine, throwaway_database

PROJECT_DIR = Path(__file__).resolve().parent.parent
BENCH_REDIS_DB = 7
KINDS = ["ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"]
# The poller's process (its main thread, which reads and writes, is part of it), its PostgreSQL
# backend and the stand-in.
PARTS = ("poller", "main thread", "postgres", "stand-in")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tps", type=int, default=20_000)
    parser.add_argument("--published", type=int, default=1000, help="TPS per round, x5 forms")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", action="store_true", help="cProfile of the busiest poll")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    options = parser.parse_args()
    os.environ["REDIS_URL"] = bench_redis_url(BENCH_REDIS_DB)
    with throwaway_database(options.database):
        print(f"poller at {options.tps:,} TPS x {len(KINDS)} contests, {options.published:,} TPS "
              f"published per round ({machine()})")  # fmt: skip
        prepare(options.tps)
        stand_in, url = _start_stand_in()
        try:
            ok = _rounds(options, stand_in.pid, url)
        finally:
            stand_in.terminate()
            stand_in.wait()
    sys.exit(0 if ok else 1)


def prepare(tps: int) -> None:
    from django.core.management import call_command
    from django.db import connection

    from regions.models import Area, Level
    from uploads.services.contests import contest_open

    call_command("generate_regions", "--tps", str(tps), "--seed", "1", stdout=io.StringIO())
    for kind in KINDS:
        for code in Area.objects.filter(level=Level.PROVINSI).values_list("code", flat=True):
            contest_open(kind=kind, region_code=code)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


def _start_stand_in() -> tuple[subprocess.Popen, str]:
    from django.db import connections

    connections.close_all()  # the stand-in reads its catalog: no connection held open meanwhile
    server = subprocess.Popen(
        [sys.executable, "manage.py", "run_publication_server", "--port", "0"],
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = server.stdout.readline() if server.stdout else ""
    if not line.startswith("listening on "):
        sys.exit(f"error: the publication server stand-in did not start: {line!r}")
    return server, line.removeprefix("listening on ").strip()


def _rounds(options, stand_in: int, url: str) -> bool:
    from django.conf import settings

    from regions.models import Area, Level
    from uploads.progress.services import progress_fold

    settings.SIREKAP_DATA_URL = f"{url}/data"
    _poll(stand_in)  # the first read of the site: every area's memory starts here
    progress_fold()
    rng = random.Random(options.seed)
    tps = list(Area.objects.filter(level=Level.TPS).values_list("code", flat=True))
    rng.shuffle(tps)
    published_before = 0
    profile = cProfile.Profile() if options.profile else None
    for number in range(1, options.rounds + 1):
        batch, tps = tps[: options.published], tps[options.published :]
        _publish_on_site(url, batch)
        busy = _poll(stand_in, profile if number == 1 else None)
        progress_fold()
        steady = _poll(stand_in)
        progress_fold()
        _print_round(number, len(batch), busy, steady)
        published_before += len(batch) * len(KINDS)
    if profile is not None:
        _print_profile(profile)
    return _check(published_before)


def _publish_on_site(url: str, tps_codes: list[str]) -> None:
    """Every form of these TPS sent straight to the stand-in, as the Sirekap app does."""
    import httpx

    from simulator.kpps import form_png

    def put(target: tuple[str, str]) -> None:
        kind, tps = target
        page = ("c.png", form_png(f"{kind}/{tps}"), "image/png")
        response = client.put(
            f"{url}/documents/{kind}/{tps}",
            files=[("file", page)],
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        response.raise_for_status()

    with httpx.Client(timeout=30) as client, ThreadPoolExecutor(8) as pool:
        list(pool.map(put, [(kind, tps) for tps in tps_codes for kind in KINDS]))


def _poll(stand_in: int, profile: cProfile.Profile | None = None) -> dict:
    from uploads import poller

    backend = backend_pid()
    clocks = (time.process_time, time.thread_time, lambda: cpu_seconds(backend),
              lambda: cpu_seconds(stand_in))  # fmt: skip
    before = [clock() for clock in clocks]
    if profile is not None:
        profile.enable()
    summary = poller.poll()
    if profile is not None:
        profile.disable()
    after = [clock() for clock in clocks]
    spent = [(end - start) * 1000 if start is not None and end is not None else None
             for start, end in zip(before, after, strict=True)]  # fmt: skip
    poller_ms, main_ms, postgres_ms, stand_in_ms = spent
    return {"summary": summary, "poller": poller_ms, "main thread": main_ms,
            "postgres": postgres_ms, "stand-in": stand_in_ms}  # fmt: skip


def _print_round(number: int, tps: int, busy: dict, steady: dict) -> None:
    uploads = busy["summary"].published
    print(f"round {number}: {tps:,} TPS x {len(KINDS)} published on the site")
    for name, poll in (("busy poll", busy), ("steady poll", steady)):
        print(f"  {name}: {poll['summary']}")
        parts = [f"{part} {_ms(poll[part])}" for part in PARTS]
        print(f"    CPU ms: {', '.join(parts)}")
    per = [f"{part} {_ms(busy[part], uploads)}" for part in PARTS]
    if uploads:
        print(f"    per published upload, busy poll: {', '.join(per)}")


def _ms(value: float | None, per: int = 1) -> str:
    return "n/a" if value is None else f"{value / per:,.2f}" if per > 1 else f"{value:,.0f}"


def _print_profile(profile: cProfile.Profile) -> None:
    out = io.StringIO()
    stats = pstats.Stats(profile, stream=out).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(40)
    print(out.getvalue())


def _check(expected: int) -> bool:
    from uploads.models import Source, Status, Upload
    from uploads.progress.services import progress_recount

    published = Upload.objects.filter(status=Status.PUBLISHED, source=Source.PUBLIC_SITE).count()
    drifts = progress_recount().drifts
    print(f"check: {published:,} published (expected {expected:,}), recount drift {len(drifts)}")
    return published == expected and not drifts


if __name__ == "__main__":
    main()
