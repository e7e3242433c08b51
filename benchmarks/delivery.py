"""Deliveries per second against the publication server stand-in with no latency.

    python -m benchmarks.delivery [--uploads 2000] [--pool threads] [--concurrency 16]

In a throwaway database: the PPU demo with five contests opened (2,051 uploads); the uploads are
taken in through the intake service (its rate is printed too), then one Celery worker delivers
them to the stand-in, with --pool and --concurrency as docker-compose.yml runs it (16 threads),
the stand-in answering each PUT after --latency-ms (0: as fast as it can; the KPU's server is
further away). The rate counts from the first claim to the last delivery, from the upload
events, so worker start-up is not in it.

Django's own modules and the apps' are imported inside the functions that use them: the
benchmark points Django at a throwaway database (benchmarks.throwaway) before any is loaded.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from io import StringIO
from pathlib import Path

from benchmarks.throwaway import DEFAULT_NAME, bench_redis_url, machine, throwaway_database

PROJECT_DIR = Path(__file__).resolve().parent.parent
BENCH_REDIS_DB = 7
CONTESTS = ["ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=2000)
    parser.add_argument("--pool", default="threads", choices=["threads", "prefork"])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=int, default=0, help="of the stand-in, per PUT")
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    options = parser.parse_args()
    os.environ["REDIS_URL"] = bench_redis_url(BENCH_REDIS_DB)
    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="sirekap-bench-media-")
    with throwaway_database(options.database):
        _prepare()
        server, url = _start_stand_in(options.latency_ms)
        try:
            _run(options, url)
        finally:
            server.terminate()
            server.wait()


def _prepare() -> None:

    from django.core.management import call_command

    from sirekap_tracker.health import redis_client
    from uploads.services.contests import contest_open

    redis_client().flushdb()
    call_command("load_demo", stdout=StringIO())
    for kind in CONTESTS:
        contest_open(kind=kind, region_code="6409")


def _start_stand_in(latency_ms: int) -> tuple[subprocess.Popen, str]:
    server = subprocess.Popen(
        [sys.executable, "manage.py", "run_publication_server", "--port", "0",
         "--latency-ms", str(latency_ms)],
        cwd=PROJECT_DIR, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    line = server.stdout.readline()
    if not line.startswith("listening on "):
        sys.exit(f"error: the publication server stand-in did not start: {line!r}")
    return server, line.removeprefix("listening on ").strip()


def _run(options, url: str) -> None:
    worker = f"--pool {options.pool} --concurrency {options.concurrency}"
    print(f"delivery, {options.uploads} uploads, worker {worker}, stand-in latency "
          f"{options.latency_ms} ms ({machine()})")  # fmt: skip
    started = time.perf_counter()
    _receive(options.uploads)
    seconds = time.perf_counter() - started
    print(f"intake: {options.uploads} in {seconds:.1f} s, {options.uploads / seconds:,.0f}/s")
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "--app", "sirekap_tracker", "worker", "--pool",
         options.pool, "--concurrency", str(options.concurrency), "--loglevel", "WARNING"],
        cwd=PROJECT_DIR, env={**os.environ, "PUBLICATION_URL": url},
    )  # fmt: skip
    try:
        _wait_delivered(options.uploads)
    finally:
        worker.terminate()
        worker.wait()
    span = _delivery_span()
    print(f"delivery: {options.uploads} in {span:.1f} s, {options.uploads / span:,.0f}/s")


def _receive(count: int) -> None:
    from django.core.files.uploadedfile import SimpleUploadedFile

    from accounts.services import operator_create  # after django.setup()
    from simulator.kpps import form_png
    from uploads.models import Upload
    from uploads.services.intake import upload_receive

    user = operator_create(username="bench", role="staff")
    targets = Upload.objects.order_by("pk").values_list("tps_id", "contest__kind")[:count]
    for tps, kind in targets:
        page = SimpleUploadedFile("c.png", form_png(f"{kind}/{tps}"), "image/png")
        upload_receive(tps_code=tps, kind=kind, files=[page], user=user)


def _wait_delivered(count: int) -> None:
    from uploads.models import Status, Upload

    deadline = time.monotonic() + 600
    while Upload.objects.filter(status=Status.DELIVERED).count() < count:
        if time.monotonic() > deadline:
            sys.exit("error: not all delivered within 10 minutes")
        time.sleep(0.2)


def _delivery_span() -> float:
    from django.db.models import Max, Min

    from uploads.models import UploadEvent

    first = UploadEvent.objects.filter(action="claimed").aggregate(t=Min("created_at"))["t"]
    last = UploadEvent.objects.filter(action="delivered").aggregate(t=Max("created_at"))["t"]
    return (last - first).total_seconds()


if __name__ == "__main__":
    main()
