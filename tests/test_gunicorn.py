"""The web process as deployed: gunicorn with gunicorn.conf.py, started for real.

It must boot and serve while Redis and PostgreSQL are down (a worker recycled during an outage),
and believe X-Forwarded-Proto from the proxy in front only.
"""

import re
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import PROJECT_DIR, ChildProcess, child_env, wait_until
from tests.nginx import free_port

pytestmark = pytest.mark.usefixtures("small_world")

PAGE = "/en/progress/pkwkk/6409/"


def closed_port() -> int:
    """A loopback port nothing listens on: connecting to it is refused at once."""
    return free_port()


def start_gunicorn(start_process, **env: str) -> tuple[str, ChildProcess]:
    port = free_port()
    process = start_process(
        [
            sys.executable, "-m", "gunicorn", "sirekap_tracker.wsgi:application",
            "--config", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
        ],
        name="gunicorn",
        env=child_env(WEB_CONCURRENCY="1", **env),
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        if process.process.poll() is not None:
            pytest.fail(f"gunicorn exited:\n{process.output()}")
        return httpx.get(f"{url}/livez", timeout=5).status_code == 200

    wait_until(answers, timeout=60, interval=0.2)
    return url, process


def test_gunicorn_boots_and_serves_the_snapshot_with_redis_and_postgresql_down(
    client, start_process
):
    assert client.get(PAGE).status_code == 200  # in the snapshot, as before an outage
    web, process = start_gunicorn(
        start_process,
        REDIS_URL=f"redis://127.0.0.1:{closed_port()}/0",
        DATABASE_URL=f"postgresql://nobody@127.0.0.1:{closed_port()}/sirekap",
    )
    page = httpx.get(web + PAGE, timeout=30)
    assert page.status_code == 200
    assert "0 of 3 TPS published" in " ".join(page.text.split())
    assert httpx.get(web + "/livez", timeout=30).text == "ok"
    # The worker built every template of ours before its first request, without the services,
    # and froze what it held out of the garbage collector's full passes (sirekap_tracker/warm.py).
    (warmed,) = [line for line in process.output().splitlines() if "process warmed" in line]
    templates, frozen = (re.search(rf"{field}\W+(\d+)", warmed) for field in FIELDS)
    assert templates and int(templates[1]) == len(our_templates()), warmed
    assert frozen and int(frozen[1]) > 10_000, warmed


FIELDS = ("templates", "objects_frozen")


def our_templates() -> list[Path]:
    """The template files of the project's own folders (not the installed libraries', nor
    anything in a hidden folder such as .venv)."""
    folders = [top for top in PROJECT_DIR.iterdir() if top.is_dir() and top.name[0] not in "._"]
    return [
        path for top in folders for path in top.glob("**/templates/**/*.*") if path.is_file()
    ] + [path for path in (PROJECT_DIR / "templates").glob("**/*.*") if path.is_file()]


def test_gunicorn_believes_x_forwarded_proto_from_the_proxy_only(client, start_process):
    """The proxy is 127.0.0.1; a client on 127.0.0.2 claiming HTTPS over plain HTTP is
    redirected to HTTPS like any plain request, the proxy's word is taken."""
    client.get(PAGE)
    web, _ = start_gunicorn(
        start_process, SECURE_SSL_REDIRECT="true", FORWARDED_ALLOW_IPS="127.0.0.1"
    )
    claim = {"X-Forwarded-Proto": "https"}
    proxy = httpx.get(web + PAGE, headers=claim, timeout=30)
    outsider = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"))
    with outsider:
        claimed = outsider.get(web + PAGE, headers=claim)
        plain = outsider.get(web + PAGE)
    assert proxy.status_code == 200
    assert proxy.headers["Strict-Transport-Security"].startswith("max-age=")
    for answer in (claimed, plain):
        assert answer.status_code == 301
        assert answer.headers["Location"] == web.replace("http:", "https:") + PAGE
