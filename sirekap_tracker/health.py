"""Liveness of the parts: PostgreSQL, Redis, Celery workers and beat.

Workers and beat leave a heartbeat in Redis; /healthz reads them, so a health check costs two
small queries and never waits on a broadcast to the workers.
"""

import functools
import logging
import time
from contextlib import suppress

import redis
from celery import bootsteps, shared_task, signals
from django.conf import settings
from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)

WORKERS_KEY = "sirekap:health:workers"
BEAT_KEY = "sirekap:health:beat"
HEARTBEAT_SECONDS = 10
# Three missed heartbeats and the part counts as gone.
STALE_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS


@functools.cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
    )


def system_health() -> dict:
    """Every check with its detail, and whether all are fine."""
    checks = {
        "database": _check_database(),
        "redis": _check_redis(),
    }
    checks["workers"] = _check_workers() if checks["redis"]["ok"] else _unknown("redis is down")
    checks["beat"] = _check_beat() if checks["redis"]["ok"] else _unknown("redis is down")
    return {"ok": all(check["ok"] for check in checks.values()), "checks": checks}


def _check_database() -> dict:
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        connection.close_if_unusable_or_obsolete()
        return {"ok": False, "error": _first_line(error)}
    return {"ok": True, "ms": _elapsed_ms(started)}


def _check_redis() -> dict:
    started = time.perf_counter()
    try:
        redis_client().ping()
    except (redis.RedisError, OSError) as error:
        return {"ok": False, "error": _first_line(error)}
    return {"ok": True, "ms": _elapsed_ms(started)}


def _check_workers() -> dict:
    fresh_since = time.time() - STALE_AFTER_SECONDS
    try:
        names = redis_client().zrangebyscore(WORKERS_KEY, fresh_since, "+inf")
    except (redis.RedisError, OSError) as error:
        return {"ok": False, "error": _first_line(error)}
    workers = sorted(name.decode() for name in names)
    if not workers:
        return {"ok": False, "count": 0, "error": "no worker heartbeat in the last 30 s"}
    return {"ok": True, "count": len(workers), "names": workers}


def _check_beat() -> dict:
    try:
        last = redis_client().get(BEAT_KEY)
    except (redis.RedisError, OSError) as error:
        return {"ok": False, "error": _first_line(error)}
    if last is None:
        return {"ok": False, "error": "beat has not run"}
    age = round(time.time() - float(last), 1)
    if age > STALE_AFTER_SECONDS:
        return {"ok": False, "age_seconds": age, "error": "beat heartbeat is stale"}
    return {"ok": True, "age_seconds": age}


def _unknown(reason: str) -> dict:
    return {"ok": False, "error": reason}


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def record_worker_heartbeat(hostname: str) -> None:
    client = redis_client()
    now = time.time()
    client.zadd(WORKERS_KEY, {hostname: now})
    # Drop names of workers long gone, so the set does not grow with every restart.
    client.zremrangebyscore(WORKERS_KEY, "-inf", now - 10 * STALE_AFTER_SECONDS)


def record_beat_heartbeat() -> None:
    redis_client().set(BEAT_KEY, time.time())


@shared_task(name="sirekap_tracker.health.beat_heartbeat", ignore_result=True)
def beat_heartbeat() -> None:
    """Scheduled by beat and run by a worker: a fresh value proves beat, broker and a worker."""
    record_beat_heartbeat()


@signals.beat_init.connect
def _beat_started(**kwargs) -> None:
    record_beat_heartbeat()


class WorkerHeartbeat(bootsteps.StartStopStep):
    """Writes this worker's name and the time into Redis every HEARTBEAT_SECONDS."""

    requires = {"celery.worker.components:Timer"}

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.timer_entry = None

    def start(self, worker) -> None:
        self._beat(worker)
        self.timer_entry = worker.timer.call_repeatedly(
            HEARTBEAT_SECONDS, self._beat, (worker,), priority=10
        )

    def stop(self, worker) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
        # Redis away at shutdown: the entry goes stale by itself.
        with suppress(redis.RedisError, OSError):
            redis_client().zrem(WORKERS_KEY, worker.hostname)

    def _beat(self, worker) -> None:
        try:
            record_worker_heartbeat(worker.hostname)
        except (redis.RedisError, OSError) as error:
            # The next beat retries; /healthz reports the gap meanwhile.
            logger.warning("worker heartbeat not recorded: %s", error)
