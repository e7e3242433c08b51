"""/healthz: database, Redis, workers and beat, 200 when all are fine and 503 otherwise."""

import pytest
from django.test import override_settings

from sirekap_tracker.health import redis_client
from tests.conftest import wait_until

pytestmark = pytest.mark.django_db


@pytest.fixture
def isolated_redis(throwaway_redis):
    """Points the health checks at a Redis of the test's own, which it may stop."""
    server, url = throwaway_redis
    redis_client.cache_clear()
    with override_settings(REDIS_URL=url):
        yield server
    redis_client.cache_clear()


def test_healthz_is_ok_with_a_worker_and_beat_running(client, celery_worker, celery_beat):
    def healthy():
        response = client.get("/healthz")
        return response if response.status_code == 200 else None

    response = wait_until(healthy, timeout=60, interval=0.5)
    body = response.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] and body["redis"]["ok"] and body["beat"]["ok"]
    assert body["workers"]["count"] >= 1
    assert any(name.startswith("test-") for name in body["workers"]["names"])
    assert response["Cache-Control"].startswith("max-age=0")


def test_healthz_is_503_without_a_worker(client, isolated_redis):
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["database"]["ok"] and body["redis"]["ok"]
    assert body["workers"] == {
        "ok": False,
        "count": 0,
        "error": "no worker heartbeat in the last 30 s",
    }


def test_healthz_is_503_when_redis_stops(client, isolated_redis):
    isolated_redis.terminate()
    isolated_redis.wait()
    response = client.get("/healthz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert body["database"]["ok"] is True
    assert body["redis"]["ok"] is False
    assert body["redis"]["error"]
    assert body["workers"] == {"ok": False, "error": "redis is down"}


def test_livez_answers_without_touching_the_services(client, isolated_redis):
    isolated_redis.terminate()
    isolated_redis.wait()
    response = client.get("/livez")
    assert response.status_code == 200
    assert response.content == b"ok"
