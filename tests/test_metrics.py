"""/metrics: refused without the token, Prometheus text with it, and every figure read for real
(the progress counts, the broker's queues, the pipeline's counters in Redis, a real delivery)."""

import datetime

import httpx
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from sirekap_tracker.celery import app
from sirekap_tracker.health import BEAT_KEY, redis_client
from tests.conftest import child_env, gunicorn_start, publication_server_start, wait_until
from tests.documents import page_bytes
from tests.world import babulu_tps, move
from uploads import poller, tasks
from uploads.models import Status, StuckReason, Upload
from uploads.services.intake import upload_receive
from uploads.services.stuck import upload_mark_stuck

TOKEN = "metrics-token-for-the-tests-0123456789"


@pytest.fixture(autouse=True)
def metrics_on(settings):
    settings.METRICS_TOKEN = TOKEN


def scrape(client, **headers) -> dict[tuple[str, tuple], float]:
    """Every sample of /metrics by (name, labels), read with prometheus-client's own parser."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
    assert response.status_code == 200, response.content
    return samples(response.content.decode())


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(found: dict, name: str, **labels) -> float:
    return found[(name, tuple(sorted(labels.items())))]


# --- Who may read it


def test_without_a_token_configured_there_is_no_metrics_page(client, settings, db):
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404


@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("Bearer", 401),
        (f"Token {TOKEN}", 401),
        ("Bearer not-the-token", 403),
        (f"Bearer {TOKEN}x", 403),
        (f"Bearer {TOKEN[:-1]}", 403),
    ],
)
def test_metrics_are_refused_without_the_right_bearer_token(client, db, authorization, status):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == status
    assert b"sirekap_" not in response.content
    if status == 401:
        assert response["WWW-Authenticate"] == 'Bearer realm="metrics"'


def test_metrics_answer_the_scraper_at_any_address_and_are_never_cached(client, db):
    """Prometheus asks each web container by its address inside the deployment, which is in no
    ALLOWED_HOSTS; every other path still refuses such a Host."""
    response = client.get(
        "/metrics", headers={"Authorization": f"Bearer {TOKEN}", "Host": "172.18.0.5:8000"}
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain; version=")
    assert "no-store" in response["Cache-Control"]
    assert client.get("/livez", headers={"Host": "172.18.0.5:8000"}).status_code == 400


# --- What it says


def test_uploads_by_status_and_kind_come_from_the_progress_counts(client, ppu):
    first, second, third = babulu_tps(3)
    move(first, Status.PUBLISHED)
    move(second, Status.DELIVERED)
    move(third, Status.RETRYING, kind="pkwkp")
    upload_mark_stuck(
        upload_id=Upload.objects.get(tps_id=third, contest__kind="pkwkp").pk,
        reason=StuckReason.NETWORK,
    )
    found = scrape(client)
    assert value(found, "sirekap_uploads", kind="pkwkk", status="published") == 1
    assert value(found, "sirekap_uploads", kind="pkwkk", status="delivered") == 1
    assert value(found, "sirekap_uploads", kind="pkwkk", status="missing") == 291
    assert value(found, "sirekap_uploads", kind="pkwkp", status="retrying") == 1
    assert value(found, "sirekap_uploads_stuck", kind="pkwkp", reason="network") == 1
    assert ("sirekap_uploads_stuck", (("kind", "pkwkk"), ("reason", "network"))) not in found
    assert value(found, "sirekap_dependency_up", part="database") == 1
    assert value(found, "sirekap_dependency_up", part="redis") == 1


def test_the_oldest_queued_upload_is_measured_from_when_its_document_came_in(
    client, ppu, kpu_staff, time_machine
):
    time_machine.move_to(timezone.now() - datetime.timedelta(minutes=10))
    upload_receive(tps_code=babulu_tps(1)[0], kind="pkwkk", files=[page()], user=kpu_staff)
    time_machine.move_to(timezone.now() + datetime.timedelta(minutes=10))
    found = scrape(client)
    assert 600 <= value(found, "sirekap_oldest_queued_age_seconds") < 660
    assert value(found, "sirekap_oldest_retrying_age_seconds") == 0


def test_the_queue_length_follows_the_broker_in_redis(client, db):
    for _ in range(3):
        app.send_task("sirekap_tracker.health.beat_heartbeat")
    app.send_task("sirekap_tracker.health.beat_heartbeat", priority=6)
    app.send_task("public.tasks.refresh_public_snapshot")
    found = scrape(client)
    assert value(found, "sirekap_celery_queue_length", queue="celery") == 4
    assert value(found, "sirekap_celery_queue_length", queue="snapshot") == 1
    # No worker takes them: the page and the alerts say so.
    assert value(found, "sirekap_celery_queue_workers", queue="celery") == 0
    with app.connection_for_write() as connection:
        for queue in ("celery", "snapshot"):
            connection.default_channel.queue_purge(queue)
    found = scrape(client)
    assert value(found, "sirekap_celery_queue_length", queue="celery") == 0
    assert value(found, "sirekap_celery_queue_length", queue="snapshot") == 0


def test_heartbeat_ages_are_infinite_until_beat_has_run(client, db):
    assert value(scrape(client), "sirekap_beat_heartbeat_age_seconds") == float("inf")
    redis_client().set(BEAT_KEY, timezone.now().timestamp() - 42)
    assert 42 <= value(scrape(client), "sirekap_beat_heartbeat_age_seconds") < 50


def test_request_latency_is_recorded_by_view_name_never_by_path(client, ppu):
    before = scrape(client)
    for code in ["6409", "640903", "6409032002"]:
        assert client.get(f"/progress/pkwkk/{code}/").status_code == 200
    client.get("/en/progress/pkwkk/6409/")
    client.get("/no/such/page/")
    found = scrape(client)

    def grown(name: str, **labels) -> float:
        return value(found, name, **labels) - before.get((name, tuple(sorted(labels.items()))), 0)

    assert grown("sirekap_http_request_duration_seconds_count", view="progress:area") == 4
    assert grown("sirekap_http_responses_total", view="progress:area", code="200") == 4
    assert grown("sirekap_http_responses_total", view="unresolved", code="404") == 1
    assert not any("6409" in str(labels) for _, labels in found)


# --- Counters written by the workers, read by the web


def page() -> SimpleUploadedFile:
    return SimpleUploadedFile("c-hasil.jpg", page_bytes(), "image/jpeg")


@pytest.mark.django_db(transaction=True)
def test_deliveries_are_counted_by_outcome_when_real_deliveries_happen(
    client, settings, tmp_path, kpu_staff, start_process
):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    call_command("load_demo", verbosity=0)
    server = publication_server_start(start_process)
    settings.PUBLICATION_URL = server.url
    accepted, retried, rejected = babulu_tps(3)
    server.script(f"/documents/pkwkk/{retried}", [{"status": 503}])
    server.script(f"/documents/pkwkk/{rejected}", [{"status": 422, "error": "tidak terbaca"}])
    for tps in (accepted, retried, rejected):
        upload = upload_receive(tps_code=tps, kind="pkwkk", files=[page()], user=kpu_staff).upload
        tasks.deliver_upload(upload.pk)  # what a worker runs, here in this process
    found = scrape(client)
    assert value(found, "sirekap_deliveries_total", outcome="accepted") == 1
    assert value(found, "sirekap_deliveries_total", outcome="transient") == 1
    assert value(found, "sirekap_deliveries_total", outcome="permanent") == 1
    assert server.stats()["puts"] == 3

    settings.SIREKAP_DATA_URL = server.data_url
    poller.poll()
    settings.SIREKAP_DATA_URL = "http://127.0.0.1:9/data"  # nothing listens there
    settings.POLL_RETRIES = 0
    poller.poll()
    found = scrape(client)
    assert value(found, "sirekap_poll_runs_total") == 2
    assert value(found, "sirekap_poll_requests_total") >= 3
    assert value(found, "sirekap_poll_errors_total") == 2  # the pkwkp and pkwkk roots
    # The second run read nothing: the last success is still the first.
    assert value(found, "sirekap_poll_last_success_age_seconds") < 60


# --- Under gunicorn, several worker processes, one answer


def test_under_gunicorn_every_worker_process_counts_in_the_one_answer(start_process, tmp_path, db):
    folder = tmp_path / "prometheus"
    folder.mkdir()
    (folder / "counter_99999.db").write_bytes(b"left by an earlier run")
    env = child_env(PROMETHEUS_MULTIPROC_DIR=str(folder), METRICS_TOKEN=TOKEN)
    web, url = gunicorn_start(start_process, env, workers=2)
    assert not (folder / "counter_99999.db").exists(), web.output()
    before = livez_count(url)
    sent = 0

    def both_workers_answered() -> bool:
        nonlocal sent
        assert httpx.get(f"{url}/livez").status_code == 200
        sent += 1
        # Each worker process keeps its histograms in files of its own, named by its pid.
        return len({path.name for path in folder.glob("histogram_*.db")}) >= 2

    wait_until(both_workers_answered, timeout=60, interval=0.02)
    # The answer adds every worker's files up, whichever worker gives it.
    assert [livez_count(url) - before for _ in range(4)] == [sent] * 4


def livez_count(url: str) -> float:
    response = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    found = samples(response.text)
    return found.get(("sirekap_http_request_duration_seconds_count", (("view", "livez"),)), 0)
