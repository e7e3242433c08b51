"""Election night at national scale, compressed: every real process at once, uploads arriving
through the intake API at a set rate, faults on the way, and what everyone sees.

    python -m benchmarks.election [--tps 823236] [--rate 150] [--minutes 15] [--json PATH]

In a throwaway database (BENCH_DATABASE, created and dropped) on a PostgreSQL of the replay's own,
with a Redis of its own (so the drills restart nothing else; --use-database-url for the server
DATABASE_URL names): the synthetic national tree and the five Pemilu contests opened over every
provinsi; one KPPS account per TPS that uploads; then the night, with gunicorn, the worker, the
snapshot worker and beat as docker-compose.yml runs them and the publication server stand-in
failing --fail-rate of the deliveries transiently and never accepting --never-rate of them.
Uploads arrive for --minutes; then the replay waits for what is on its way to settle and checks:
nothing lost, nothing twice, the counts equal a recount. Exits 1 when any of those is not 0.

The clocks are shorter than production's so that a night of minutes shows the whole story
(CLOCKS below, each a setting of docs/configuration.md): the never-accepted uploads are flagged
stuck within seconds (STUCK_AFTER_ATTEMPTS 5, backoff from 1 s), a killed worker's lease runs out
in 20 s (production: 240; it exceeds the three 5-second phases of a delivery), beat polls the
public site every 10 s as `make run` does (production: 60).
"""

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from benchmarks.election import drills, figures, night, probes, statements
from benchmarks.election.stack import (
    PROJECT_DIR,
    ClusterPostgres,
    OwnPostgres,
    OwnRedis,
    Service,
    Stack,
    compose_commands,
    compose_niceness,
    wait_for,
)
from benchmarks.progress import NATIONAL_TPS, load_data
from benchmarks.throwaway import DEFAULT_NAME, machine, throwaway_database

CLOCKS = {
    "DELIVERY_TIMEOUT_SECONDS": "5",
    "DELIVERY_BACKOFF_BASE_SECONDS": "1",
    "DELIVERY_BACKOFF_CAP_SECONDS": "30",
    "DELIVERY_LEASE_SECONDS": "20",
    "STUCK_AFTER_ATTEMPTS": "5",
    "STUCK_AFTER_MINUTES": "2",
    "SWEEP_INTERVAL_SECONDS": "5",
    "DISPATCH_GRACE_SECONDS": "30",
    "POLL_INTERVAL_SECONDS": "10",
}
MEMORY_EVERY = 5.0


def main() -> None:
    options = _options()
    signal.signal(signal.SIGTERM, _stop_once)
    folder = Path(tempfile.mkdtemp(prefix="sirekap-replay-"))
    try:
        code = _replay(folder, options)
    finally:
        if not options.keep:
            shutil.rmtree(folder, ignore_errors=True)
    sys.exit(code)


def _stop_once(signum, frame) -> None:
    """A kill stops the night as Ctrl-C does: every process stopped, the database dropped. A
    second signal (`timeout` forwards its own) must not cut that cleanup short."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(143)


def _options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tps", type=int, default=NATIONAL_TPS)
    parser.add_argument("--rate", type=float, default=150, help="uploads a second")
    parser.add_argument("--minutes", type=float, default=15, help="of uploads arriving")
    parser.add_argument("--json", type=Path, help="write every figure to this file")
    parser.add_argument("--fail-rate", type=float, default=0.10)
    parser.add_argument("--never-rate", type=float, default=0.005)
    parser.add_argument("--publish-delay-s", type=float, default=5)
    for drill in drills.DRILLS:
        parser.add_argument(
            f"--{drill}-at",
            type=_minute,
            default=None,
            # argparse formats help with %: a percent sign is written twice.
            help=f"minute of the drill (default {drills.DEFAULT_SHARES[drill] * 100:.0f}%% of "
            "--minutes; 'off' for none)",
        )
    parser.add_argument(
        "--down-seconds", type=float, default=3, help="Redis and PostgreSQL stay down this long"
    )
    parser.add_argument("--drain-minutes", type=float, default=None, help="longest wait at the end")
    parser.add_argument("--worker-concurrency", default="", help="WORKER_CONCURRENCY (compose's)")
    parser.add_argument("--snapshot-concurrency", default="", help="SNAPSHOT_CONCURRENCY")
    parser.add_argument("--web-concurrency", default="", help="WEB_CONCURRENCY (gunicorn.conf.py)")
    parser.add_argument(
        "--same-priority",
        action="store_true",
        help="every service at nice 0, not at the CPU weights of compose's cpu_shares",
    )
    parser.add_argument(
        "--worker-arg",
        action="append",
        default=[],
        help="added to the worker's command, for experiments: --worker-arg=--pool=prefork",
    )
    parser.add_argument("--clients", type=int, default=48, help="phones uploading at once, at most")
    parser.add_argument("--probe-interval", type=float, default=0.5, help="seconds between probes")
    parser.add_argument("--sample-every", type=float, default=2, help="seconds between lag samples")
    parser.add_argument("--log-level", default="INFO", help="LOG_LEVEL of every process")
    parser.add_argument("--use-database-url", action="store_true")
    parser.add_argument("--pg-cluster", default="", help="pg_ctlcluster's VERSION/NAME")
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--keep", action="store_true", help="keep the folder of logs")
    options = parser.parse_args()
    if options.drain_minutes is None:
        options.drain_minutes = max(2.0, options.minutes / 3)
    return options


def _minute(text: str) -> float | str:
    return "off" if text == "off" else float(text)


def _replay(folder: Path, options) -> int:
    print(
        f"election night: {options.tps:,} TPS x 5 contests, {options.rate:g} uploads/s for "
        f"{options.minutes:g} minutes ({machine()}); logs in {folder}",
        flush=True,
    )
    redis = OwnRedis(folder / "redis")
    redis.start()
    postgres = _postgres(folder, options)
    os.environ["REDIS_URL"] = redis.url()
    os.environ["LOG_LEVEL"] = "WARNING"  # this process's own lines
    os.environ.update(CLOCKS)
    try:
        with throwaway_database(options.database):
            return _night(folder, options, redis, postgres)
    finally:
        redis.stop()
        if isinstance(postgres, OwnPostgres):
            postgres.stop()


def _postgres(folder: Path, options) -> OwnPostgres | ClusterPostgres:
    if options.use_database_url:
        if not os.environ.get("DATABASE_URL"):
            sys.exit("error: --use-database-url: DATABASE_URL is not set")
        return ClusterPostgres(options.pg_cluster)
    postgres = OwnPostgres(folder / "postgres")
    postgres.start()
    os.environ["DATABASE_URL"] = postgres.url("postgres")
    return postgres


def _night(folder: Path, options, redis: OwnRedis, postgres) -> int:
    started = time.perf_counter()
    load_data(options.tps)
    uploads = round(options.rate * options.minutes * 60)
    plan = night.plan_make(uploads=uploads, never_rate=options.never_rate, seed=options.seed)
    if len(plan.uploads) < uploads:
        print(f"note: {options.tps:,} TPS hold {len(plan.uploads):,} of the {uploads:,} uploads")
    staff = night.staff_make()
    areas = _areas()
    night.plan_write(plan, folder / "plan.tsv")
    print(
        f"{len(plan.uploads):,} uploads planned from {len(plan.tokens):,} TPS (a KPPS account "
        f"each), {len(plan.never)} never accepted; ready in {time.perf_counter() - started:.0f} s",
        flush=True,
    )
    env = _environment(folder, options, redis)
    stand_in = _stand_in(folder, env, options)
    env.update(PUBLICATION_URL=stand_in.url, SIREKAP_DATA_URL=f"{stand_in.url}/data")
    stack = _stack(folder, env, options, redis, postgres, stand_in.service)
    with httpx.Client(base_url=stand_in.url, timeout=60) as control:
        night.never_accepted_script(control, plan)
        stack.start()
        try:
            for url in [env["WEB_URL"], env["INTAKE_URL"]]:
                _wait_for_gunicorn(url)
            return _run(folder, options, plan, stack, env, staff, areas, control)
        finally:
            stack.stop()


def _wait_for_gunicorn(url: str) -> None:
    wait_for(lambda: httpx.get(f"{url}/livez").status_code == 200, 90,
             f"gunicorn at {url} did not answer")  # fmt: skip


def _areas() -> tuple[list[str], list[str]]:
    from regions.models import Area, Level

    levels = [Level.PROVINSI, Level.KABUPATEN]
    found = list(Area.objects.filter(level__in=levels).values_list("code", "level"))
    return (
        [code for code, level in found if level == Level.PROVINSI],
        [code for code, level in found if level == Level.KABUPATEN],
    )


def _environment(folder: Path, options, redis: OwnRedis) -> dict:
    """What every process of the night reads: production's settings, the replay's servers and
    folders, loopback host names, the shorter clocks."""
    port, intake_port = _free_port(), _free_port()
    env = {
        **os.environ,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",  # plain HTTP on loopback: the prober's login cookie
        "REDIS_URL": redis.url(),
        "MEDIA_ROOT": str(folder / "media"),
        "SNAPSHOT_ROOT": str(folder / "snapshots"),
        "PROMETHEUS_MULTIPROC_DIR": str(folder / "prometheus"),
        "LOG_LEVEL": options.log_level,
        "PYTHONUNBUFFERED": "1",
        "WEB_PORT": str(port),
        "WEB_URL": f"http://127.0.0.1:{port}",
        "INTAKE_PORT": str(intake_port),
        "INTAKE_URL": f"http://127.0.0.1:{intake_port}",
        **CLOCKS,
    }
    if options.web_concurrency:
        env["WEB_CONCURRENCY"] = options.web_concurrency
    return env


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class _StandIn:
    def __init__(self, service: Service, url: str) -> None:
        self.service, self.url = service, url


def _stand_in(folder: Path, env: dict, options) -> _StandIn:
    port = _free_port()
    service = Service(
        "publication stand-in",
        [sys.executable, "manage.py", "run_publication_server", "--port", str(port),
         "--fail-rate", str(options.fail_rate), "--publish-delay-s", str(options.publish_delay_s),
         "--seed", str(options.seed)],
        env, folder / "publication.log",
    )  # fmt: skip
    service.start()
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: "listening on" in service.log.read_text(), 300, "the stand-in did not start")
    return _StandIn(service, url)


def _stack(folder: Path, env: dict, options, redis, postgres, stand_in: Service) -> Stack:
    commands = compose_commands(
        {"WORKER_CONCURRENCY": options.worker_concurrency,
         "SNAPSHOT_CONCURRENCY": options.snapshot_concurrency}
    )  # fmt: skip
    commands["web"] += ["--bind", f"127.0.0.1:{env['WEB_PORT']}"]
    commands["intake"] += ["--bind", f"127.0.0.1:{env['INTAKE_PORT']}"]
    commands["worker"] += ["--hostname", "worker@%h", *options.worker_arg]
    commands["snapshot-worker"] += ["--hostname", "snapshot@%h"]
    beat = commands["beat"]
    beat[beat.index("--schedule") + 1] = str(folder / "celerybeat-schedule")
    niceness = {} if options.same_priority else compose_niceness()
    services = {}
    for name, command in commands.items():
        log = folder / f"{name}.log"
        services[name] = Service(name, [sys.executable, "-m", *command], env, log,
                                 nice=niceness.get(name, 0))  # fmt: skip
    return Stack({"publication stand-in": stand_in, **services}, redis, postgres)


def _run(folder, options, plan, stack, env, staff, areas, control) -> int:
    url = env["WEB_URL"]
    latency = probes.LatencyProbe(url, staff, areas, options.probe_interval)
    visibility = probes.VisibilityProbe(url, staff, options.sample_every, at_once=8)
    latency.start()
    visibility.start()
    unavailable = statements.statements_reset()
    start = time.time() + 3
    load = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.election.load", str(folder / "plan.tsv"),
         str(folder / "results.jsonl"), "--url", env["INTAKE_URL"], "--rate", str(options.rate),
         "--start-at", str(start), "--until", str(start + options.minutes * 60 + 1),
         "--clients", str(options.clients)],
        cwd=PROJECT_DIR, env=env,
    )  # fmt: skip
    runner = drills.DrillRunner(stack, _drills(options), start, options.down_seconds)
    runner.start()
    memory: list = []
    others = {"load generator": [load.pid], "replay (probes)": [os.getpid()]}
    sampling = threading.Event()
    sampler = threading.Thread(
        target=_sample_usage, args=(stack, others, memory, load, sampling), daemon=True
    )
    sampler.start()
    try:
        _watch(load, start, options, folder)
    finally:
        if load.poll() is None:
            load.terminate()
    intake_end = time.time()
    print(f"intake over; the rest on its way ({options.drain_minutes:g} minutes at most)")
    _drain(time.time() + options.drain_minutes * 60)
    end = time.time()
    # The poller may publish the last uploads all at once and the drain end right after: the
    # prober still takes a look after that (on a slow night it may not have seen one publication
    # yet), and the publications being watched get their time to show (GIVE_UP_SECONDS at most).
    wait_for(
        lambda: visibility.failure or (visibility.looked_at > end and not visibility.pending()),
        probes.GIVE_UP_SECONDS + 10,
        "samples unseen",
    )
    if visibility.failure:
        sys.exit(f"error: the visibility prober stopped: {visibility.failure}")
    sampling.set()
    runner.stopping.set()
    latency.stopping.set()
    visibility.stopping.set()
    latency.join(35)
    visibility.join(35)
    writes = control.get("/_stats").raise_for_status().json()["writes"]
    stack.stop()
    results = figures.load_results(folder / "results.jsonl")
    taken = len(figures.taken_in(results))
    # Read before the checks, whose recount is not the night's work.
    by_statement = [] if unavailable else statements.statements_read(taken)
    checks = _checks(plan, results, writes)
    inputs = figures.Inputs(
        start,
        intake_end,
        end,
        results,
        latency.timings,
        visibility.samples,
        memory,
        stack.events,
        len(plan.uploads),
        [folder / "web.log", folder / "intake.log"],
    )
    found = figures.compute(inputs, checks)
    found["options"] = {k: str(v) for k, v in vars(options).items()}
    found["restarts"] = {name: s.restarts for name, s in stack.services.items()}
    found["postgres"] = {"unavailable": unavailable, "statements": by_statement}
    print(figures.report(found))
    print("\n".join(statements.statements_report(found["postgres"])))
    if options.json:
        figures.write_json(found, options.json)
        print(f"figures written to {options.json}")
    failed = found["lost"] or found["duplicated"] or found["recount_drift"]
    return 1 if failed else 0


def _drills(options) -> list[drills.Drill]:
    chosen = []
    for name in drills.DRILLS:
        minute = getattr(options, f"{name.replace('-', '_')}_at")
        if minute == "off":
            continue
        chosen.append(drills.Drill(name, minute if minute is not None else
                                   drills.DEFAULT_SHARES[name] * options.minutes))  # fmt: skip
    return chosen


def _sample_usage(stack: Stack, others: dict, samples: list, load, stop: threading.Event) -> None:
    """Memory and CPU time of every process, every MEMORY_EVERY seconds, until the end."""
    while True:
        samples.append((time.time(), stack.usage(others if load.poll() is None else {})))
        if stop.wait(MEMORY_EVERY):
            return


def _watch(load: subprocess.Popen, start: float, options, folder: Path) -> None:
    """Waits for the load generator, printing a line a minute: what was taken in, delivered
    and published so far."""
    next_line = start + 60
    while load.poll() is None:
        time.sleep(1)
        if time.time() >= next_line:
            next_line += 60
            taken = _count_lines(folder / "results.jsonl")
            minute = round((time.time() - start) / 60)
            print(f"  minute {minute}: {taken:,} answered; {_statuses()}", flush=True)
    if load.returncode != 0:
        sys.exit(f"error: the load generator failed ({load.returncode})")


def _count_lines(path: Path) -> int:
    with contextlib.suppress(FileNotFoundError), path.open("rb") as lines:
        return sum(1 for _ in lines)
    return 0


def _statuses() -> str:
    counts = _status_counts()
    return ", ".join(f"{status} {count:,}" for status, count in sorted(counts.items()))


def _status_counts() -> Counter:
    """Uploads that have a document, by status (stuck apart)."""
    from django.db import DatabaseError, connection
    from django.db.models import Count

    from uploads.models import Upload

    try:
        rows = (
            Upload.objects.filter(document__isnull=False)
            .values_list("status", "stuck")
            .annotate(count=Count("pk"))
            .order_by()
        )
        return Counter(
            {f"{status}{' stuck' if stuck else ''}": count for status, stuck, count in rows}
        )
    except DatabaseError:
        connection.close()
        return Counter()


def _drain(deadline: float) -> None:
    """Until every upload with a document is published or stuck, or the deadline."""
    settled = {"published", "delivered stuck", "queued stuck", "sending stuck", "retrying stuck"}
    while time.time() < deadline:
        counts = _status_counts()
        if counts and set(counts) <= settled:
            return
        time.sleep(2)


def _checks(plan, results: list[list], writes: int) -> dict:
    """Nothing lost, nothing twice, the counts equal a recount; and the stuck ones. results:
    the phones' (figures.load_results)."""
    from uploads.models import Status, Upload
    from uploads.progress.services import progress_fold, progress_recount

    taken = {(row[0], row[1]) for row in figures.taken_in(results)}
    with_document = Upload.objects.filter(document__isnull=False)
    held = {
        (tps, kind): (status, stuck, reason)
        for tps, kind, status, stuck, reason in with_document.values_list(
            "tps_id", "contest__kind", "status", "stuck", "stuck_reason"
        )
    }
    delivered = (Status.DELIVERED, Status.PUBLISHED)

    def accounted(state) -> bool:
        return state is not None and (state[0] in delivered or (state[1] and bool(state[2])))

    lost = sum(1 for upload in taken | set(held) if not accounted(held.get(upload)))
    delivered_count = sum(1 for state in held.values() if state[0] in delivered)
    progress_fold()
    stuck = [state for state in held.values() if state[1]]
    return {
        "lost": lost,
        "duplicated": writes - delivered_count,
        "recount_drift": len(progress_recount().drifts),
        "stand_in_writes": writes,
        "stuck": len(stuck),
        "never_accepted": len(plan.never),
        "stuck_reasons": dict(Counter(state[2] for state in stuck)),
    }


if __name__ == "__main__":
    main()
