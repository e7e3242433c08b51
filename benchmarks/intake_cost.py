"""What one upload costs the intake: CPU time of the web process and of its PostgreSQL backend.

    python -m benchmarks.intake_cost [--uploads 300] [--profile intake.prof] [--refused]

In a throwaway database: the PPU demo with five contests opened and one KPPS account with a
token per TPS, as in the field. Then --uploads documents (one PNG page each, made beforehand)
go through `POST /api/uploads/` with Django's test client, each with its TPS's token, an
Idempotency-Key and a phone's address in X-Forwarded-For, with production's settings (DEBUG
off, JSON log lines at INFO, written to /dev/null): middleware, token, checks, decoding, the
file, the transaction and the delivery task sent to Redis. No worker runs; the tasks are
dropped at the end.

Printed per upload: CPU time of this process (time.process_time), of its PostgreSQL backend
(/proc/<pid>/stat, in clock ticks: 10 ms each, so over hundreds of uploads) and the statements
sent (BEGIN and COMMIT included). --refused sends as many requests with a wrong token (401) to
show what a request costs before any of the intake's own work. --profile writes cProfile's
figures of the uploads (process_time as its clock) and prints the costliest functions.

CPU time, not wall time: the machine is shared, and CPU time is what 200 uploads a second on
two cores must fit in.
"""

import argparse
import cProfile
import ipaddress
import os
import pstats
import sys
import tempfile
import time
from io import StringIO

from benchmarks.cpu import cpu_seconds
from benchmarks.throwaway import DEFAULT_NAME, bench_redis_url, machine, throwaway_database

BENCH_REDIS_DB = 6
CONTESTS = ["ppwp", "pdpr", "pdpd", "pdprdp", "pdprdk"]
# The phones' addresses, one each, as nginx passes them on in X-Forwarded-For.
PHONES = int(ipaddress.IPv4Address("10.0.0.1"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, default=300)
    parser.add_argument("--refused", action="store_true", help="also time 401s (wrong token)")
    parser.add_argument("--profile", metavar="PATH", help="cProfile the uploads into PATH")
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    options = parser.parse_args()
    os.environ["REDIS_URL"] = bench_redis_url(BENCH_REDIS_DB)
    os.environ["MEDIA_ROOT"] = tempfile.mkdtemp(prefix="sirekap-bench-media-")
    # Production's log lines: each request and each status change formatted as JSON at INFO.
    os.environ["LOG_LEVEL"] = "INFO"
    os.environ["LOG_FORMAT"] = "json"
    os.environ["DEBUG"] = "false"
    with throwaway_database(options.database):
        _logs_to_devnull()
        targets = _prepare(options.uploads)
        print(f"intake cost, {len(targets)} uploads through POST /api/uploads/ ({machine()})")
        if options.refused:
            _report("refused at the token (401)", _measure(_refused_requests(targets), None))
        figures = _measure(_upload_requests(targets), options.profile)
        _report("taken (201)", figures)
        _check_taken(len(targets))
        _redis_flush()


def _logs_to_devnull() -> None:
    import logging

    devnull = open(os.devnull, "w")  # noqa: SIM115 (open for the whole run)
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)


def _prepare(count: int) -> list[tuple[str, str, str, bytes]]:
    """The uploads to send: (TPS, contest, token, page), every page made now, not while timed."""
    from django.core.management import call_command

    from simulator.kpps import form_png, kpps_tokens
    from uploads.models import Upload
    from uploads.services.contests import contest_open

    _redis_flush()
    call_command("load_demo", stdout=StringIO())
    for kind in CONTESTS:
        contest_open(kind=kind, region_code="6409")
    # Five contests a TPS, as a KPPS sends them: count // 5 TPS (each its own token).
    rows = list(Upload.objects.order_by("tps_id", "contest__kind").values_list(
        "tps_id", "contest__kind"
    )[:count])  # fmt: skip
    tokens = kpps_tokens({tps for tps, _ in rows})
    return [(tps, kind, tokens[tps], form_png(f"{kind}/{tps}")) for tps, kind in rows]


def _redis_flush() -> None:
    from sirekap_tracker.health import redis_client

    redis_client().flushdb()


def _upload_requests(targets):
    from django.test.client import BOUNDARY, MULTIPART_CONTENT, encode_multipart

    for number, (tps, kind, token, page) in enumerate(targets):
        body = encode_multipart(
            BOUNDARY, {"tps": tps, "contest": kind, "file": _named(page, f"{tps}-{kind}.png")}
        )
        headers = {
            "HTTP_AUTHORIZATION": f"Token {token}",
            "HTTP_IDEMPOTENCY_KEY": f"bench-{kind}-{tps}",
            "HTTP_X_FORWARDED_FOR": str(ipaddress.IPv4Address(PHONES + number)),
        }
        yield body, MULTIPART_CONTENT, headers, 201


def _refused_requests(targets):
    for body, content_type, headers, _ in _upload_requests(targets):
        yield body, content_type, {**headers, "HTTP_AUTHORIZATION": "Token wrong"}, 401


def _named(data: bytes, name: str):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, "image/png")


def _measure(requests, profile_path: str | None) -> dict:
    """Sends the requests (bodies encoded beforehand), timing only the client's call."""
    from django.db import connection
    from django.test import Client

    client = Client(SERVER_NAME="127.0.0.1")
    prepared = list(requests)
    connection.ensure_connection()
    backend = connection.cursor().connection.info.backend_pid
    counter = _StatementCounter(connection)
    profiler = cProfile.Profile(time.process_time) if profile_path else None
    backend_before = cpu_seconds(backend)
    cpu = 0.0
    with connection.execute_wrapper(counter):
        for body, content_type, headers, expected in prepared:
            # What gunicorn's request_started does to a kept connection (Django's test client
            # leaves it out): its health check, a SELECT 1, is due again on first use.
            connection.health_check_done = False
            started = time.process_time()
            if profiler:
                profiler.enable()
            response = client.generic("POST", "/api/uploads/", body, content_type, **headers)
            if profiler:
                profiler.disable()
            cpu += time.process_time() - started
            if response.status_code != expected:
                sys.exit(f"error: expected {expected}, got {response.status_code}: "
                         f"{response.content[:300]!r}")  # fmt: skip
    backend_seconds = cpu_seconds(backend) - backend_before
    counter.restore()
    if profiler:
        _profile_report(profiler, profile_path, len(prepared))
    count = len(prepared)
    return {
        "count": count,
        "cpu_ms": cpu * 1000 / count,
        "backend_ms": backend_seconds * 1000 / count,
        "statements": counter.statements / count,
        "transactions": counter.commits / count,
    }


class _StatementCounter:
    """Counts what this process sends PostgreSQL: Django's statements (execute_wrapper), its
    health check's SELECT 1 (sent past the wrapper) and the BEGIN and COMMIT around each
    transaction (psycopg sends BEGIN before a transaction's first statement; Django commits
    through connection.commit)."""

    def __init__(self, connection) -> None:
        self.statements = 0
        self.commits = 0
        self.connection = connection
        self._commit = connection.commit
        self._is_usable = connection.is_usable
        connection.commit = self._counted_commit
        connection.is_usable = self._counted_is_usable

    def __call__(self, execute, sql, params, many, context):
        self.statements += 1
        return execute(sql, params, many, context)

    def _counted_commit(self) -> None:
        self.commits += 1
        self.statements += 2
        self._commit()

    def _counted_is_usable(self) -> bool:
        self.statements += 1
        return self._is_usable()

    def restore(self) -> None:
        del self.connection.commit
        del self.connection.is_usable


def _profile_report(profiler: cProfile.Profile, path: str, count: int) -> None:
    profiler.dump_stats(path)
    out = StringIO()
    stats = pstats.Stats(profiler, stream=out).sort_stats("cumulative")
    stats.print_stats(40)
    print(out.getvalue())
    print(f"profile of {count} uploads in {path} (process_time; pstats or snakeviz to read)")


def _report(what: str, figures: dict) -> None:
    print(f"{what}: {figures['count']} requests, per request: CPU {figures['cpu_ms']:.2f} ms "
          f"(this process), PostgreSQL {figures['backend_ms']:.2f} ms, "
          f"{figures['statements']:.1f} statements in {figures['transactions']:.1f} "
          "transactions")  # fmt: skip


def _check_taken(count: int) -> None:
    from uploads.models import Status, Upload

    queued = Upload.objects.filter(status=Status.QUEUED).count()
    if queued != count:
        sys.exit(f"error: {queued} uploads queued, {count} sent")


if __name__ == "__main__":
    main()
