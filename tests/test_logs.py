"""Logs: JSON lines in production, readable text in development, one request id from the web
into the task it causes, the upload on every pipeline line, and no secret anywhere."""

import io
import json
import logging
import os
import signal
import struct
import sys
import uuid

import httpx
import pytest
import structlog
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from structlog.testing import capture_logs

from accounts.services import api_token_create
from sirekap_tracker import logs
from tests.conftest import child_env, gunicorn_start, publication_server_start, wait_until
from tests.documents import page_bytes
from tests.nginx import free_port
from tests.world import person
from uploads.models import Status, Upload


def jpeg_with(marker: bytes) -> bytes:
    """A real JPEG carrying `marker` in a comment segment: bytes that must reach no log."""
    data, comment = page_bytes(), marker * 64
    return data[:2] + b"\xff\xfe" + struct.pack(">H", len(comment) + 2) + comment + data[2:]


def json_lines(output: str) -> list[dict]:
    """Every line of a process's output, each of which must be one JSON object."""
    lines = [line for line in output.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line!r}\nin:\n{output}")
    return parsed


@pytest.mark.parametrize(
    ("incoming", "kept"),
    [
        ("proxy-7f3a9c2e-1b4d", True),
        ("4bf92f3577b34da6a3ce929d0e0e4736", True),
        ("short", False),
        ("has spaces in it", False),
        ('{"injected": "json"}', False),
        ("x" * 65, False),
    ],
)
def test_a_sane_request_id_from_the_proxy_is_kept_and_anything_else_replaced(
    client, db, incoming, kept
):
    answered = client.get("/livez", headers={"X-Request-ID": incoming})["X-Request-ID"]
    if kept:
        assert answered == incoming
    else:
        assert answered != incoming and len(answered) == 32
        assert int(answered, 16) >= 0  # a fresh id of our own


def test_every_answer_carries_a_request_id_of_its_own(client, db):
    first, second = client.get("/livez"), client.get("/livez")
    assert first["X-Request-ID"] != second["X-Request-ID"]


def test_the_request_line_counts_the_statements_the_request_sent(client, db):
    staff = person("kpu", "staff")
    client.force_login(staff)
    with capture_logs() as lines, CaptureQueriesContext(connection) as sent:
        assert client.get("/en/akun/dua-langkah/").status_code == 200
    (line,) = [line for line in lines if line["event"] == "request"]
    assert line["queries"] == len(sent) > 0
    assert 0 < line["db_ms"] < line["duration_ms"] and line["cpu_ms"] > 0


def test_in_development_the_lines_are_readable_text_with_their_fields(settings):
    config = logs.logging_config(log_format="text", level="INFO")["formatters"]["structured"]
    formatter = structlog.stdlib.ProcessorFormatter(
        processors=config["processors"], foreign_pre_chain=config["foreign_pre_chain"]
    )
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    target = logging.getLogger("tests.text")
    target.addHandler(handler)
    target.propagate = False
    try:
        with structlog.contextvars.bound_contextvars(request_id="req-1234abcd"):
            structlog.get_logger("tests.text").info(
                "upload delivered", upload_id=412, tps="6409032002001", contest="pkwkk"
            )
            logging.getLogger("tests.text").warning("poll: %s: %s", "url", "HTTP 500")
            # A library passing a credential along: its value never reaches the line.
            logging.getLogger("tests.text").info("sent", extra={"authorization": "Token sekret1"})
    finally:
        target.removeHandler(handler)
    first, second, third = stream.getvalue().splitlines()
    assert "sekret1" not in third and "authorization=[redacted]" in third
    assert not first.startswith("{")
    assert "upload delivered" in first and "[info     ]" in first
    for field in ["upload_id=412", "tps=6409032002001", "contest=pkwkk", "request_id=req-1234abcd"]:
        assert field in first
    assert "poll: url: HTTP 500" in second and "request_id=req-1234abcd" in second


@pytest.mark.django_db(transaction=True)
def test_json_lines_carry_the_request_id_into_the_task_and_never_a_secret(
    start_process, settings, tmp_path
):
    media = tmp_path / "media"
    settings.MEDIA_ROOT = str(media)
    call_command("load_demo", verbosity=0)
    person("kpu", "staff")
    token = api_token_create(username="kpu")
    server = publication_server_start(start_process)
    env = child_env(MEDIA_ROOT=str(media), PUBLICATION_URL=server.url)
    # As docker-compose.yml runs them: gunicorn with its config, a quiet worker.
    worker = start_process(
        [sys.executable, "-m", "celery", "--quiet", "--app", "sirekap_tracker", "worker",
         "--queues", "celery", "--concurrency", "1", "--hostname", f"logs-{free_port()}@%h",
         "--without-mingle", "--without-gossip"],
        name="worker", env=env,
    )  # fmt: skip
    web, url = gunicorn_start(start_process, env, workers=1)

    request_id = f"proxy-{uuid.uuid4().hex}"
    session, csrf = f"session-{uuid.uuid4().hex}", f"csrf-{uuid.uuid4().hex}"
    marker = f"DOCUMENT-BYTES-{uuid.uuid4().hex}".encode()
    response = httpx.post(
        f"{url}/api/uploads/",
        data={"tps": "6409032002001", "contest": "pkwkk"},
        files={"file": ("c-hasil.jpg", jpeg_with(marker), "image/jpeg")},
        headers={
            "Authorization": f"Token {token}",
            "Cookie": f"sessionid={session}; csrftoken={csrf}",
            "X-Request-ID": request_id,
        },
        timeout=30,
    )
    assert response.status_code == 201, response.text
    assert response.headers["X-Request-ID"] == request_id
    upload_id = response.json()["id"]

    def delivered() -> bool:
        return Upload.objects.get(pk=upload_id).status == Status.DELIVERED

    wait_until(delivered, timeout=60, interval=0.2)
    wait_until(lambda: "succeeded" in worker.output(), timeout=30)

    web_lines, worker_lines = json_lines(web.output()), json_lines(worker.output())
    by_request = [line for line in web_lines + worker_lines if line.get("request_id") == request_id]
    events = {line["event"] for line in by_request}
    assert {"upload received", "request", "upload delivered"} <= events, by_request
    assert any("succeeded" in line["event"] for line in by_request)  # Celery's own, in the task
    pipeline = [line for line in by_request if line["event"].startswith("upload ")]
    for line in pipeline:
        assert (line["upload_id"], line["tps"], line["contest"]) == (
            upload_id,
            "6409032002001",
            "pkwkk",
        ), line
    assert next(line for line in worker_lines if line["event"] == "upload delivered")["task_id"]
    # One line per request, Django's; gunicorn's access log would only repeat it.
    (request_line,) = [line for line in by_request if line["event"] == "request"]
    assert request_line["status"] == 201
    # Where its time went: its own CPU and its statements, each within the whole.
    assert request_line["queries"] > 0
    assert 0 < request_line["db_ms"] < request_line["duration_ms"]
    assert 0 < request_line["cpu_ms"] <= request_line["duration_ms"]
    assert not [line for line in web_lines if line["logger"] == "gunicorn.access"]
    # Both built what they serve before the first request or task (sirekap_tracker/warm.py).
    for lines, process in [(web_lines, "gunicorn worker"), (worker_lines, "celery worker")]:
        (warmed,) = [line for line in lines if line["event"] == "process warmed"]
        assert warmed["process"] == process and warmed["templates"] > 0, warmed

    everything = web.output() + worker.output()
    for secret in [token, session, csrf, marker.decode(), settings.SECRET_KEY]:
        assert secret not in everything
    os.killpg(worker.process.pid, signal.SIGKILL)  # done: no warm shutdown to wait for
