"""The upload pipeline end to end, with nothing stood in for but the KPU's server.

Real PostgreSQL, real Redis, real Celery worker and beat processes, and the publication server
stand-in as a real HTTP server over loopback. Each test is one promise of the design: nothing
lost, nothing duplicated, whatever fails on the way.
"""

import os
import signal
import socket
import sys
import time

import httpx
import pytest
from django.contrib.auth import get_user_model

from accounts.services import api_token_create
from tests.conftest import child_env, wait_until
from tests.documents import page_bytes
from tests.world import person
from uploads.models import Status, Upload, UploadEvent
from uploads.services.contests import contest_open

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.pipeline]

# Short clocks, so that retries, sweeps and lease expiry happen within a test's patience.
FAST = {
    "SWEEP_INTERVAL_SECONDS": "1",
    "POLL_INTERVAL_SECONDS": "1",
    "DISPATCH_GRACE_SECONDS": "5",
    "DELIVERY_BACKOFF_BASE_SECONDS": "1",
    "DELIVERY_BACKOFF_CAP_SECONDS": "3",
    "DELIVERY_LEASE_SECONDS": "6",
    "DELIVERY_TIMEOUT_SECONDS": "10",
}


@pytest.fixture
def world(ppu, settings):
    """The PPU demo, and what the processes of a test share with it: the documents' folder and a
    token of a KPU staff member."""
    person("kpu", "staff")
    return {"MEDIA_ROOT": settings.MEDIA_ROOT, "token": api_token_create(username="kpu")}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pipeline_env(world, server, **overrides) -> dict:
    return child_env(
        MEDIA_ROOT=world["MEDIA_ROOT"],
        PUBLICATION_URL=server.url,
        SIREKAP_DATA_URL=server.data_url,
        **FAST,
        **overrides,
    )


def start_worker(start_process, env, concurrency: int = 2):
    return start_process(
        [
            sys.executable, "-m", "celery", "--app", "sirekap_tracker", "worker",
            "--queues", "celery,snapshot",
            "--pool", "prefork", "--concurrency", str(concurrency), "--loglevel", "INFO",
            "--hostname", f"pipeline-{free_port()}@%h",
        ],
        name="worker",
        env=env,
    )  # fmt: skip


def start_beat(start_process, env, tmp_path):
    schedule = tmp_path / f"beat-{free_port()}"
    return start_process(
        [
            sys.executable, "-m", "celery", "--app", "sirekap_tracker", "beat",
            "--loglevel", "INFO", "--schedule", str(schedule),
        ],
        name="beat",
        env=env,
    )  # fmt: skip


def start_web(start_process, env) -> str:
    port = free_port()
    start_process(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        name="web",
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: httpx.get(f"{url}/livez").status_code == 200, timeout=30)
    return url


def post_upload(web: str, token: str, tps: str, kind: str = "pkwkk", data: bytes | None = None):
    return httpx.post(
        f"{web}/api/uploads/",
        data={"tps": tps, "contest": kind},
        files={"file": ("c-hasil.jpg", data or page_bytes(), "image/jpeg")},
        headers={"Authorization": f"Token {token}"},
        timeout=30,
    )


def receive(user, tps: str, kind: str = "pkwkk") -> Upload:
    """Intake in the test process: the same service the API calls; the delivery task is sent
    for real."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from uploads.services.intake import upload_receive

    page = SimpleUploadedFile("c-hasil.jpg", page_bytes(), "image/jpeg")
    return upload_receive(tps_code=tps, kind=kind, files=[page], user=user).upload


def staff():
    return get_user_model().objects.get(username="kpu")


def count(status: str) -> int:
    return Upload.objects.filter(status=status).count()


def published_events(upload_id: int) -> int:
    return UploadEvent.objects.filter(upload_id=upload_id, action="published").count()


def test_a_thousand_uploads_through_thirty_percent_failures_all_end_published_once(
    world, start_process, tmp_path, publication_server_factory
):
    contest_open(kind="ppwp", region_code="6409")
    contest_open(kind="pdpr", region_code="6409")
    chosen = list(Upload.objects.order_by("pk").values_list("tps_id", "contest__kind")[:1000])
    server = publication_server_factory(fail_rate=0.3)
    env = pipeline_env(world, server)
    # Four processes: deliveries wait on the network, not on the cores.
    start_worker(start_process, env, concurrency=4)
    start_beat(start_process, env, tmp_path)
    for tps, kind in chosen:
        receive(staff(), tps, kind)
    wait_until(lambda: count(Status.PUBLISHED) == 1000, timeout=300, interval=1)
    stats = server.stats()
    assert stats["keys"] == 1000 and stats["writes"] == 1000
    assert stats["puts"] > 1000  # the failures really happened and were retried
    assert UploadEvent.objects.filter(action="published").count() == 1000
    assert count(Status.MISSING) == Upload.objects.count() - 1000


def test_a_worker_killed_mid_delivery_still_ends_published_once(
    world, start_process, tmp_path, publication_server_factory
):
    # The server finishes the write the killed worker started, but publishes only after the lease
    # (6 s) expired: the document is sent again by another worker, with the same key.
    server = publication_server_factory(latency_ms=3000, publish_delay_s=12)
    env = pipeline_env(world, server)
    worker = start_worker(start_process, env, concurrency=1)
    start_beat(start_process, env, tmp_path)
    upload = receive(staff(), "6409032002001")
    wait_until(lambda: server.stats()["puts"] >= 1, timeout=60)
    os.killpg(worker.process.pid, signal.SIGKILL)
    worker.process.wait()
    start_worker(start_process, env, concurrency=1)
    wait_until(lambda: count(Status.PUBLISHED) == 1, timeout=120, interval=0.5)
    stats = server.stats()
    assert stats["puts"] == 2 and stats["keys"] == 1 and stats["writes"] == 1
    assert published_events(upload.pk) == 1
    actions = list(UploadEvent.objects.filter(upload_id=upload.pk).values_list("action", flat=True))
    assert actions == ["received", "claimed", "lease expired", "claimed", "delivered", "published"]


def test_the_same_upload_rung_twice_at_once_is_delivered_once(
    world, start_process, tmp_path, publication_server_factory
):
    from uploads.tasks import deliver_upload

    server = publication_server_factory(latency_ms=300)
    env = pipeline_env(world, server)
    upload = receive(staff(), "6409032002001")
    deliver_upload.delay(upload.pk)
    deliver_upload.delay(upload.pk)
    start_worker(start_process, env, concurrency=2)
    wait_until(lambda: count(Status.DELIVERED) == 1, timeout=60)
    assert server.stats()["puts"] == 1
    assert UploadEvent.objects.filter(upload_id=upload.pk, action="claimed").count() == 1


def test_a_4xx_is_not_retried_and_a_429_waits_as_retry_after_says(
    world, start_process, tmp_path, publication_server_factory
):
    server = publication_server_factory()
    server.script("/documents/pkwkk/6409032002001", [{"status": 422, "error": "tidak terbaca"}])
    server.script("/documents/pkwkk/6409032002002", [{"status": 429, "retry_after": 4}])
    env = pipeline_env(world, server)
    start_worker(start_process, env)
    start_beat(start_process, env, tmp_path)
    rejected = receive(staff(), "6409032002001")
    waited = receive(staff(), "6409032002002")
    wait_until(lambda: count(Status.PUBLISHED) == 1, timeout=60, interval=0.5)
    refused = Upload.objects.get(pk=rejected.pk)
    assert refused.status == Status.REJECTED and "tidak terbaca" in refused.last_error
    claims = list(
        UploadEvent.objects.filter(upload_id=waited.pk, action__in=["retry", "claimed"])
        .order_by("id")
        .values_list("action", "created_at")
    )
    assert [action for action, _ in claims] == ["claimed", "retry", "claimed"]
    assert (claims[2][1] - claims[1][1]).total_seconds() >= 4
    before = server.stats()["puts"]
    wait_until(lambda: server.stats()["gets"] > 0, timeout=10)
    assert server.stats()["puts"] == before  # the rejected one is never sent again


def test_intake_keeps_answering_while_redis_is_down_and_nothing_is_lost(
    world, start_process, tmp_path, publication_server_factory, restartable_redis
):
    # Slow answers, so the worker holds an unacknowledged task when Redis goes away.
    server = publication_server_factory(latency_ms=1500)
    env = pipeline_env(world, server, REDIS_URL=restartable_redis.url)
    web = start_web(start_process, env)
    worker = start_worker(start_process, env)
    beat = start_beat(start_process, env, tmp_path)
    # Up and connected first: the outage must hit running processes, not their start.
    wait_until(lambda: "ready." in worker.output(), timeout=60)
    wait_until(lambda: "Sending due task" in beat.output(), timeout=60)
    babulu = Upload.objects.filter(tps__code__startswith="640903", contest__kind="pkwkk")
    tps_codes = list(babulu.order_by("tps_id").values_list("tps_id", flat=True)[:11])
    assert post_upload(web, world["token"], tps_codes.pop()).status_code == 201
    wait_until(lambda: server.stats()["puts"] == 1, timeout=30)
    restartable_redis.stop()
    codes = []
    for tps in tps_codes:  # one upload a second through a 10 s outage
        codes.append(post_upload(web, world["token"], tps).status_code)
        time.sleep(1)
    assert codes == [201] * 10
    assert count(Status.QUEUED) == 10
    restartable_redis.start()
    wait_until(lambda: count(Status.PUBLISHED) == 11, timeout=120, interval=0.5)
    assert worker.process.poll() is None and beat.process.poll() is None
    assert server.stats()["keys"] == 11 and server.stats()["writes"] == 11


def sessions_opened() -> int:
    """Connections made to this test's database so far (PostgreSQL's own count)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_stat_clear_snapshot()")
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return cursor.fetchone()[0]


def test_a_worker_keeps_its_database_connection_from_one_delivery_to_the_next(
    world, start_process, tmp_path, publication_server_factory
):
    # A new PostgreSQL connection per task is a process forked and authenticated for every
    # delivery; one worker process delivering forty uploads, each a task of its own, needs one.
    chosen = list(Upload.objects.order_by("pk").values_list("tps_id", flat=True)[:40])
    server = publication_server_factory()
    start_worker(start_process, pipeline_env(world, server), concurrency=1)
    receive(staff(), chosen[0])
    wait_until(lambda: server.stats()["writes"] == 1, timeout=60)
    before = sessions_opened()
    for tps in chosen[1:]:
        receive(staff(), tps)
    wait_until(lambda: server.stats()["writes"] == 40, timeout=120, interval=0.5)
    time.sleep(1.5)  # the backends report what they counted within a second of going idle
    # This test's own connection may reconnect once; the worker's stays.
    assert sessions_opened() - before <= 3


def test_the_worker_recovers_by_itself_when_postgresql_restarts(
    start_process, tmp_path, publication_server_factory, restartable_postgres
):
    """On a PostgreSQL of its own, so that restarting it cannot disturb the rest of the suite."""
    import psycopg

    url = restartable_postgres.create_database()
    env = child_env(DATABASE_URL=url, MEDIA_ROOT=str(tmp_path / "media"), **FAST)
    manage(env, "migrate", "--no-input")
    manage(env, "load_demo")
    manage(env | {"DJANGO_SUPERUSER_PASSWORD": "x"}, "createsuperuser", "--no-input",
           "--username", "kpu", "--email", "kpu@example.test")  # fmt: skip
    token = manage(env, "api_token", "kpu").strip()
    server = publication_server_factory(env=env)
    env |= {"PUBLICATION_URL": server.url, "SIREKAP_DATA_URL": server.data_url}
    web = start_web(start_process, env)
    start_worker(start_process, env, concurrency=1)
    start_beat(start_process, env, tmp_path)

    assert post_upload(web, token, "6409032002001").status_code == 201
    wait_until(lambda: server.stats()["writes"] == 1, timeout=60)
    restartable_postgres.stop()
    restartable_postgres.start()
    assert post_upload(web, token, "6409032002002").status_code == 201
    wait_until(lambda: server.stats()["writes"] == 2, timeout=90, interval=0.5)

    def published() -> int:
        with psycopg.connect(restartable_postgres.server.get_uri("sirekap")) as connection:
            query = "SELECT count(*) FROM uploads_upload WHERE status = 'published'"
            return connection.execute(query).fetchone()[0]

    wait_until(lambda: published() == 2, timeout=60, interval=0.5)


def manage(env: dict, *args: str) -> str:
    import subprocess

    from tests.conftest import PROJECT_DIR

    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=PROJECT_DIR, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result.stdout
