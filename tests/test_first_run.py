"""`make run` as a newcomer meets it: from a fresh clone, every process of the Procfile comes up
whatever the order they start in, the night begins, and Ctrl-C ends it quietly."""

import contextlib
import os
import re
import signal
import subprocess
import time

import httpx
import pytest

from tests.conftest import PROJECT_DIR, child_env, wait_until
from tests.test_pipeline import free_port
from uploads.models import Source, Upload

pytestmark = pytest.mark.django_db(transaction=True)

STARTS = 10
# On a slow machine any process may come up last. Each start delays the Procfile's processes by
# steps of this many seconds, in an order that rotates with every start, so that each process is
# the last one up in two of the ten.
DELAY_STEP = 0.5


@pytest.fixture(scope="module")
def fresh_clone(tmp_path_factory):
    """The project's files as a clone has them (no .var/, no state of an earlier run), with the
    installed .venv lent to it."""
    clone = tmp_path_factory.mktemp("clone")
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=PROJECT_DIR,
        capture_output=True,
        check=True,
    ).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = PROJECT_DIR / name
        if source.is_file():
            target = clone / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            target.chmod(source.stat().st_mode)
    (clone / ".venv").symlink_to(PROJECT_DIR / ".venv")
    return clone


def make_run_environment(clone) -> dict[str, str]:
    """The environment `make run` exports (its `run: export NAME ?= value` lines) in the clone."""
    found: dict[str, str] = {"CURDIR": str(clone)}
    for name, value in re.findall(
        r"^run: export (\w+) \?= (.*)$", (PROJECT_DIR / "Makefile").read_text(), re.M
    ):
        found[name] = re.sub(r"\$\((\w+)\)", lambda match: found[match[1]], value.strip())
    return {name: value for name, value in found.items() if name != "CURDIR"}


def night_env(tmp_path, clone) -> dict[str, str]:
    web_port, publication_port = free_port(), free_port()
    env = make_run_environment(clone) | {
        "WEB_PORT": str(web_port),
        "PUBLICATION_PORT": str(publication_port),
        "PUBLICATION_URL": f"http://127.0.0.1:{publication_port}",
        "SIREKAP_DATA_URL": f"http://127.0.0.1:{publication_port}/data",
    }
    env = child_env(MEDIA_ROOT=str(tmp_path / "media"), **env)
    env["PATH"] = f"{PROJECT_DIR / '.venv' / 'bin'}:{env['PATH']}"
    return env


@pytest.fixture
def start():
    """Starts a command in a process group of its own; whatever is left of it is killed after
    the test, passed or not."""
    started: list[subprocess.Popen] = []

    def start(command: list[str], clone, env, log_path) -> subprocess.Popen:
        process = subprocess.Popen(
            command,
            cwd=clone,
            env=env,
            stdout=log_path.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                ctrl_c(process, timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def ctrl_c(process: subprocess.Popen, timeout: float = 60) -> int:
    """What a terminal does on Ctrl-C: SIGINT to the whole foreground process group (honcho
    then stops the processes it started, each in a session of its own)."""
    os.killpg(process.pid, signal.SIGINT)
    return process.wait(timeout=timeout)


def uploads_taken() -> int:
    return Upload.objects.filter(source=Source.KPPS).count()


def night_begins(process, log_path, env, before: int) -> None:
    """Every process is up and the simulator's uploads are being taken; none has stopped."""

    def begun():
        if process.poll() is not None:
            pytest.fail(f"make run ended by itself:\n{log_path.read_text()}")
        return uploads_taken() > before and httpx.get(env["PUBLICATION_URL"] + "/_stats").is_success

    wait_until(begun, timeout=240, interval=0.3)
    output = log_path.read_text()
    assert "Traceback" not in output, output
    assert " exited " not in output and "stopped (rc=" not in output, output


def procfile_delayed(clone, attempt: int) -> str:
    """The Procfile with each process started after a delay, rotating with the attempt."""
    lines = (clone / "Procfile").read_text().splitlines()
    delayed = []
    for position, line in enumerate(lines):
        name, command = line.split(": ", 1)
        delay = (position + attempt) % len(lines) * DELAY_STEP
        delayed.append(f"{name}: sleep {delay}; exec {command}")
    path = clone / f"Procfile.start-{attempt}"
    path.write_text("\n".join(delayed) + "\n")
    return path.name


def test_the_procfile_starts_ten_times_from_a_fresh_clone_without_a_failure(
    ppu, fresh_clone, tmp_path, start
):
    # What make run does before it starts the Procfile.
    env = night_env(tmp_path, fresh_clone)
    manage = ["python", "manage.py", "collectstatic", "--no-input", "--verbosity", "0"]
    subprocess.run(manage, cwd=fresh_clone, env=env, check=True)
    for attempt in range(STARTS):
        env = night_env(tmp_path, fresh_clone)
        log_path = tmp_path / f"honcho-{attempt}.log"
        procfile = procfile_delayed(fresh_clone, attempt)
        honcho = ["honcho", "--procfile", procfile, "--env", "/dev/null", "start"]
        process = start(honcho, fresh_clone, env, log_path)
        night_begins(process, log_path, env, before=uploads_taken())
        assert ctrl_c(process) == 130
        assert "SIGINT received" in log_path.read_text()


def test_make_run_plays_the_night_and_ctrl_c_ends_it_quietly(ppu, fresh_clone, tmp_path, start):
    env = night_env(tmp_path, fresh_clone)
    log_path = tmp_path / "make-run.log"
    process = start(["make", "--no-print-directory", "run"], fresh_clone, env, log_path)
    night_begins(process, log_path, env, before=0)
    output_before = log_path.read_text()
    assert "bad network at TPS 6409032001" in output_before  # the story's desa get the network
    first_view_weighs_under_30_kb(f"http://127.0.0.1:{env['WEB_PORT']}")
    ctrl_c(process)
    time.sleep(0.5)
    output = log_path.read_text()
    assert "make: ***" not in output, output
    assert "Error" not in output.removeprefix(output_before), output


def first_view_weighs_under_30_kb(web: str) -> None:
    """What a phone downloads for its first view of the home page: the page, then its styles,
    scripts and icon, compressed and named by their content so they are cached for a year."""
    with httpx.Client(base_url=web, headers={"Accept-Encoding": "gzip"}, timeout=30) as client:
        home = client.get("/")
        assert home.status_code == 200
        downloaded = home.num_bytes_downloaded
        assets = re.findall(r'(?:href|src)="(/static/[^"]+)"', home.text)
        assert len(assets) == 4, assets  # icon, styles, htmx, live.js
        for asset in assets:
            response = client.get(asset)
            assert response.status_code == 200, asset
            assert "immutable" in response.headers["Cache-Control"], asset
            downloaded += response.num_bytes_downloaded
        compressed = client.get(assets[2]).headers.get("Content-Encoding")
    assert compressed == "gzip"
    assert downloaded <= 30 * 1024, downloaded
