"""Requests per second of the public area page and of its open data file under load, beside what
Django and nginx manage at best on the same machine.

    python -m benchmarks.public_load [--seconds 10] [--database sirekap_bench]

In a throwaway database with the PPU demo (load_demo): gunicorn with gunicorn.conf.py (only the
bind changed, to a free loopback port) and a local nginx, then wrk -t2 with 32 connections
(requests/s, p50, p99, errors) and with 200 (requests/s, errors) against, for the page
/progress/pkwkk/6409/ and for the JSON /api/hhcw/pkwkk/64/6409.json:

  - the view, from gunicorn;
  - a trivial Django view answering the same bytes through the same middleware and gunicorn
    (benchmarks/load_urls.py): what Django and gunicorn cost alone;
  - nginx serving the same bytes as a file: what this machine does at best;
  - the production nginx config (deploy/nginx/) in front of the same gunicorn: the short cache.

The views answer from the public snapshot (public/snapshots.py), which a thread of this process
refreshes every few seconds as beat and a worker would; no data changes during the runs.
wrk, gunicorn, nginx and PostgreSQL share the cores, as they would on one small server.

Django's own modules and the apps' are imported inside the functions that use them: the
benchmark points Django at a throwaway database (benchmarks.throwaway) before any is loaded.
"""

import argparse
import contextlib
import http.client
import os
import re
import runpy
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from io import StringIO
from pathlib import Path

from benchmarks.delivery import _bench_redis_url
from benchmarks.throwaway import DEFAULT_NAME, machine, throwaway_database
from tests.nginx import NGINX, LocalNginx, free_port, production_config, static_config

PROJECT_DIR = Path(__file__).resolve().parent.parent
WRK = Path("/usr/bin/wrk")
PAGE_URL = "/progress/pkwkk/6409/"
JSON_URL = "/api/hhcw/pkwkk/64/6409.json"
FEW, MANY = 32, 200
GOALS = (
    "goals: page and JSON at least 0.5 x their trivial view's requests/s; "
    f"p99 under 50 ms at {FEW} connections; no errors at {MANY} connections"
)


@dataclass(frozen=True)
class Target:
    name: str
    port: int
    path: str
    body: bytes  # what it must answer: the bytes captured from the view


@dataclass(frozen=True)
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    # Socket errors (connect, read, write, timeout: no answer within wrk's 2 s) and answers other
    # than 2xx/3xx, by kind.
    error_kinds: dict[str, int]

    @property
    def errors(self) -> int:
        return sum(self.error_kinds.values())


@dataclass(frozen=True)
class Result:
    runs: dict[int, Run]  # by connections
    reached_django: int  # requests gunicorn saw for the target's path during its runs

    @property
    def requests(self) -> int:
        return sum(run.requests for run in self.runs.values())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="per wrk run")
    parser.add_argument("--database", default=DEFAULT_NAME, help="dropped, created, dropped")
    parser.add_argument(
        "--gunicorn-arg",
        action="append",
        default=[],
        help="added to gunicorn's command line, for experiments: --gunicorn-arg=--max-requests=0",
    )
    options = parser.parse_args()
    _require_tools()
    # A plain kill must clean up as Ctrl-C does: stop gunicorn and nginx, drop the database.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        with tempfile.TemporaryDirectory(prefix="sirekap-bench-public-") as folder:
            _run(Path(folder), options)
    except KeyboardInterrupt:
        sys.exit("interrupted; what it started is stopped and its database dropped")


def _require_tools() -> None:
    for tool in (WRK, NGINX):
        if not tool.exists():
            sys.exit(f"error: {tool} is missing: `make bench-public` installs it when run as root")


def _run(folder: Path, options) -> None:
    _environment(folder)
    with throwaway_database(options.database), contextlib.ExitStack() as processes:
        print(f"public load, wrk -t2 for {options.seconds} s a run ({machine()}, {_versions()})")
        _load_demo()
        bodies = _capture(folder)
        print(_setup(bodies, options.gunicorn_arg))
        processes.enter_context(_refresher())
        django = processes.enter_context(_gunicorn(folder, options.gunicorn_arg))
        static, cached = processes.enter_context(_nginx(folder, django))
        targets = _targets(django, static, cached, bodies)
        for target in targets:
            _warm_up(target)
        results = {target: _measure(target, options.seconds, folder) for target in targets}
        booted = (folder / "gunicorn.log").read_text(errors="replace").count("Booting worker")
    _report(results)
    workers = _gunicorn_config()["workers"]
    print(f"gunicorn booted {booted} workers for its {workers}: {booted - workers} replaced one "
          "that had served max_requests")  # fmt: skip


def _environment(folder: Path) -> None:
    """What gunicorn and this process's Django read: production-like settings, loopback hosts."""
    os.environ.update(
        DEBUG="false",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECRET_KEY=secrets.token_urlsafe(50),
        SECURE_SSL_REDIRECT="false",
        REDIS_URL=_bench_redis_url(),
        SNAPSHOT_ROOT=str(folder / "snapshots"),
        BENCH_PAGE_FILE=str(folder / "static" / "page.html"),
        BENCH_JSON_FILE=str(folder / "static" / "6409.json"),
    )


def _versions() -> str:
    nginx = subprocess.run([NGINX, "-v"], capture_output=True, text=True).stderr.strip()
    wrk = subprocess.run([WRK, "-v"], capture_output=True, text=True).stdout.split()[:2]
    return f"{nginx.removeprefix('nginx version: ')}, {' '.join(wrk)}"


def _setup(bodies: dict[str, bytes], extra: list[str]) -> str:
    config = _gunicorn_config()
    return (
        f"page {len(bodies[PAGE_URL]):,} bytes, JSON {len(bodies[JSON_URL]):,} bytes; gunicorn: "
        f"gunicorn.conf.py, {config['workers']} sync workers, max_requests "
        f"{config['max_requests']} (+/- {config['max_requests_jitter']}), access log to a file"
        + (f", plus {' '.join(extra)}" if extra else "")
    )


def _gunicorn_config() -> dict:

    return runpy.run_path(str(PROJECT_DIR / "gunicorn.conf.py"))


def _load_demo() -> None:

    from django.core.management import call_command

    from public.services import snapshot_refresh_all

    call_command("load_demo", stdout=StringIO())
    snapshot_refresh_all()


@contextlib.contextmanager
def _refresher() -> Iterator[None]:
    """Refreshes the public snapshot every SNAPSHOT_REFRESH_SECONDS, as beat and a worker do;
    without it, what the views serve would be marked stale after SNAPSHOT_STALE_AFTER_SECONDS.
    No data changes here, so a refresh rebuilds nothing."""
    from django.conf import settings
    from django.db import connection

    from public.services import snapshot_refresh_all

    stop = threading.Event()

    def refresh() -> None:
        while not stop.wait(settings.SNAPSHOT_REFRESH_SECONDS):
            snapshot_refresh_all()
        connection.close()

    thread = threading.Thread(target=refresh, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _capture(folder: Path) -> dict[str, bytes]:
    """The page and the JSON as the views answer them, into the files the trivial views and
    nginx's static server read."""
    from django.test import Client

    client = Client(headers={"Host": "127.0.0.1"})
    (folder / "static").mkdir()
    bodies = {}
    for url, variable in [(PAGE_URL, "BENCH_PAGE_FILE"), (JSON_URL, "BENCH_JSON_FILE")]:
        response = client.get(url)
        if response.status_code != 200:
            sys.exit(f"error: {url} answered {response.status_code} in this process")
        Path(os.environ[variable]).write_bytes(response.content)
        bodies[url] = response.content
    return bodies


@contextlib.contextmanager
def _gunicorn(folder: Path, extra: list[str]) -> Iterator[int]:
    """gunicorn as docker-compose.yml runs it (gunicorn.conf.py), bound to a loopback port. Its
    access log goes to a file, as production's goes to the container's log."""
    port = free_port()
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "benchmarks.load_settings"}
    log = folder / "gunicorn.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "sirekap_tracker.wsgi:application",
             "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", *extra],
            cwd=PROJECT_DIR, env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        _wait_answering(process, port, log)
        yield port
    finally:
        _stop(process, timeout=40)


def _wait_answering(process: subprocess.Popen, port: int, log: Path) -> None:
    deadline = time.monotonic() + 60
    while _status(port, "/livez") != 200:
        if process.poll() is not None or time.monotonic() > deadline:
            sys.exit(f"error: gunicorn did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def _stop(process: subprocess.Popen, timeout: float) -> None:
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextlib.contextmanager
def _nginx(folder: Path, django: int) -> Iterator[tuple[int, int]]:
    """One nginx: a server of the captured files, and the production config in front of
    gunicorn (the same worker processes serve both, never at the same time)."""
    static, cached = free_port(), free_port()
    servers = [
        static_config(port=static, root=folder / "static"),
        production_config(
            upstream=f"127.0.0.1:{django}", port=cached, cache_folder=folder / "cache"
        ),
    ]
    with LocalNginx(folder / "nginx", servers, [static, cached]):
        yield static, cached


def _targets(django: int, static: int, cached: int, bodies: dict[str, bytes]) -> list[Target]:
    page, data = bodies[PAGE_URL], bodies[JSON_URL]
    return [
        Target("page: the view", django, PAGE_URL, page),
        Target("page: trivial Django view", django, "/_bench/page", page),
        Target("page: nginx, static file", static, "/page.html", page),
        Target("page: nginx cache in front", cached, PAGE_URL, page),
        Target("JSON: the view", django, JSON_URL, data),
        Target("JSON: trivial Django view", django, "/_bench/json", data),
        Target("JSON: nginx, static file", static, "/6409.json", data),
        Target("JSON: nginx cache in front", cached, JSON_URL, data),
    ]


def _warm_up(target: Target) -> None:
    status, body = _get(target.port, target.path)
    if status != 200 or body != target.body:
        sys.exit(f"error: {target.name} answered {status} and not the bytes the view answered")


def _status(port: int, path: str) -> int | None:
    try:
        return _get(port, path)[0]
    except OSError:
        return None


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def _measure(target: Target, seconds: int, folder: Path) -> Result:
    before = _reached_django(folder, target.path)
    runs = {}
    for connections in (FEW, MANY):
        url = f"http://127.0.0.1:{target.port}{target.path}"
        runs[connections] = _wrk(url, connections, seconds)
        time.sleep(2)  # let the queues drain and the machine settle between runs
    return Result(runs, _reached_django(folder, target.path) - before)


def _reached_django(folder: Path, path: str) -> int:
    """Requests for path in gunicorn's access log so far."""
    return (folder / "gunicorn.log").read_text(errors="replace").count(f'"GET {path} HTTP/1.1"')


def _wrk(url: str, connections: int, seconds: int) -> Run:
    command = [str(WRK), "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    finished = subprocess.run(command, capture_output=True, text=True)
    if finished.returncode != 0:
        sys.exit(f"error: {' '.join(command)} failed: {finished.stderr.strip()}")
    out = finished.stdout
    latency = dict(re.findall(r"^\s+(50|99)%\s+(\S+)\s*$", out, re.MULTILINE))
    if set(latency) != {"50", "99"}:
        sys.exit(f"error: no latency distribution from {' '.join(command)}:\n{out}")
    return Run(
        rps=float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]),
        p50_ms=_milliseconds(latency["50"]),
        p99_ms=_milliseconds(latency["99"]),
        requests=int(re.search(r"(\d+) requests in", out)[1]),
        error_kinds=_error_kinds(out),
    )


def _error_kinds(out: str) -> dict[str, int]:
    """wrk prints these lines only when there were such errors."""
    kinds = {}
    if found := re.search(r"Socket errors: (.*)", out):
        kinds = {kind: int(count) for kind, count in re.findall(r"(\w+) (\d+)", found[1])}
    if found := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        kinds["non-2xx/3xx"] = int(found[1])
    return {kind: count for kind, count in kinds.items() if count}


def _milliseconds(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * {"us": 0.001, "ms": 1, "s": 1000, "m": 60_000}[unit]


def _report(results: dict[Target, Result]) -> None:
    print(f"\n{'':<28} {f' {FEW} connections ':-^31}   {f' {MANY} connections ':-^16}")
    print(f"{'target':<28} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} {'errors':>7}   "
          f"{'req/s':>8} {'errors':>7}")  # fmt: skip
    for target, result in results.items():
        few, many = result.runs[FEW], result.runs[MANY]
        print(f"{target.name:<28} {few.rps:>8,.0f} {few.p50_ms:>7.1f} {few.p99_ms:>7.1f} "
              f"{few.errors:>7,}   {many.rps:>8,.0f} {many.errors:>7,}")  # fmt: skip
    print()
    for target, result in results.items():
        for connections, run in result.runs.items():
            if run.errors:
                kinds = ", ".join(f"{kind} {count:,}" for kind, count in run.error_kinds.items())
                print(f"{target.name}, errors at {connections} connections: {kinds}")
    for target, result in results.items():
        if target.name.endswith("cache in front"):
            print(f"{target.name}: {result.reached_django:,} of its {result.requests:,} "
                  "requests reached Django")  # fmt: skip
    _report_goals({target.name: result.runs for target, result in results.items()})


def _report_goals(runs: dict[str, dict[int, Run]]) -> None:
    print(f"\n{GOALS}")
    for kind in ("page", "JSON"):
        ratio = _ratio(runs, f"{kind}: the view", f"{kind}: trivial Django view")
        print(f"{kind}, the view / its trivial view: {ratio:.2f} ({_verdict(ratio >= 0.5)})")
    for kind in ("page", "JSON"):
        ratio = _ratio(runs, f"{kind}: nginx cache in front", f"{kind}: nginx, static file")
        print(f"{kind}, through the nginx cache / nginx static file: {ratio:.2f}")
    for name, by_connections in runs.items():
        if name.endswith(("the view", "cache in front")):
            p99, errors = by_connections[FEW].p99_ms, by_connections[MANY].errors
            print(f"{name}: p99 {p99:.1f} ms at {FEW} connections ({_verdict(p99 < 50)}), "
                  f"{errors:,} errors at {MANY} ({_verdict(errors == 0)})")  # fmt: skip


def _ratio(runs: dict[str, dict[int, Run]], name: str, baseline: str) -> float:
    return runs[name][FEW].rps / runs[baseline][FEW].rps


def _verdict(met: bool) -> str:
    return "met" if met else "MISSED"


if __name__ == "__main__":
    main()
