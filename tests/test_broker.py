"""Celery's queues live in the Redis database REDIS_URL names, whatever its spelling: two
deployments (or the tests and `make run`) on one Redis server never take each other's tasks."""

import uuid

import redis

from sirekap_tracker.celery import app
from sirekap_tracker.config import broker_url
from sirekap_tracker.health import redis_client


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
