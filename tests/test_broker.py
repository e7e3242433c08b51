"""Celery's queues live in the Redis database REDIS_URL names, whatever its spelling: two
deployments (or the tests and `make run`) on one Redis server never take each other's tasks."""

import base64
import json
import uuid

import pytest
import redis
import structlog
from celery.utils.collections import DictAttribute
from django.conf import settings
from kombu.exceptions import OperationalError

from sirekap_tracker.celery import app
from sirekap_tracker.config import broker_url
from sirekap_tracker.health import redis_client
from uploads.services.delivery import DELIVER_TASK, deliveries_enqueue


def test_a_task_sent_lands_in_the_database_of_redis_url():
    queue = f"probe-{uuid.uuid4().hex}"
    app.send_task("sirekap_tracker.health.beat_heartbeat", queue=queue)
    try:
        assert redis_client().llen(queue) == 1
    finally:
        redis_client().delete(queue)


def test_a_unix_socket_url_keeps_its_database_number(throwaway_redis):
    _, url = throwaway_redis  # unix://...?db=0
    with app.connection_for_write(broker_url(url.replace("db=0", "db=5"))) as connection:
        connection.SimpleQueue("probe").put({"hello": "dunia"})
    path = url.removeprefix("unix://").split("?")[0]
    assert redis.Redis(unix_socket_path=path, db=5).llen("probe") == 1
    assert redis.Redis(unix_socket_path=path, db=0).llen("probe") == 0


def test_sending_tasks_builds_no_redis_client_a_task(monkeypatch):
    # kombu would build a redis.Redis for every task sent, a quarter of what sending one costs
    # (sirekap_tracker/celery.py keeps one per channel).
    queue = f"probe-{uuid.uuid4().hex}"
    app.send_task("sirekap_tracker.health.beat_heartbeat", queue=queue)
    built = []
    build = redis.Redis.__init__

    def counted(self, *args, **kwargs):
        built.append(kwargs)
        build(self, *args, **kwargs)

    monkeypatch.setattr(redis.Redis, "__init__", counted)
    try:
        for _ in range(5):
            app.send_task("sirekap_tracker.health.beat_heartbeat", queue=queue)
        assert built == []
        monkeypatch.undo()
        assert redis_client().llen(queue) == 6
    finally:
        redis_client().delete(queue)


def test_tasks_are_sent_again_once_redis_is_back_from_an_outage(restartable_redis):
    url = broker_url(restartable_redis.url)
    back = redis.Redis(unix_socket_path=str(restartable_redis.socket))
    with app.connection_for_write(url) as connection:
        app.send_task("sirekap_tracker.health.beat_heartbeat", connection=connection)
        restartable_redis.stop()
        with pytest.raises(OperationalError):
            app.send_task("sirekap_tracker.health.beat_heartbeat", connection=connection)
        restartable_redis.start()
        app.send_task("sirekap_tracker.health.beat_heartbeat", connection=connection)
        app.send_task("sirekap_tracker.health.beat_heartbeat", connection=connection)
    # The outage lost the first (this Redis keeps nothing on disk); the two after it are there.
    assert back.llen("celery") == 2


def test_a_delivery_task_lands_in_the_default_queue_with_its_upload_and_request_id():
    with structlog.contextvars.bound_contextvars(request_id="req-1234abcd"):
        deliveries_enqueue([412, 413])
    messages = [json.loads(raw) for raw in redis_client().lrange("celery", 0, -1)]
    assert [message["headers"]["task"] for message in messages] == [DELIVER_TASK] * 2
    assert sorted(json.loads(base64.b64decode(m["body"]))[0][0] for m in messages) == [412, 413]
    contexts = [message["headers"]["__django_structlog__"] for message in messages]
    assert [context["request_id"] for context in contexts] == ["req-1234abcd"] * 2


def test_celery_takes_every_celery_setting_and_reads_them_from_a_plain_dict():
    ours = {name: getattr(settings, name) for name in dir(settings) if name.startswith("CELERY_")}
    assert {name: app.conf[name.removeprefix("CELERY_").lower()] for name in ours} == ours
    # Not through Django's settings object, which costs each name Celery asks ~20 µs.
    assert not any(isinstance(source, DictAttribute) for source in app.conf.maps)
