"""Liveness of the parts: PostgreSQL, Redis, Celery workers and beat.

Workers and beat leave a heartbeat in Redis; /healthz reads them, so a health check costs two
small queries and never waits on a broadcast to the workers.
"""

import functools
import logging
import time
from contextlib import suppress
from dataclasses import dataclass

import redis
from celery import bootsteps, shared_task, signals
from django.conf import settings
from django.db import DatabaseError, connection

logger = logging.getLogger(__name__)

# Each worker's name and the time of its last heartbeat (a sorted set), and the queues it takes
# (a hash by name).
WORKERS_KEY = "sirekap:health:workers"
WORKER_QUEUES_KEY = "sirekap:health:worker-queues"
BEAT_KEY = "sirekap:health:beat"
# A worker gone this many stale periods is forgotten, so the set does not grow with every
# restart; until then it is listed as gone.
FORGET_AFTER_STALE_PERIODS = 10


@functools.cache
def redis_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
    )


def system_health() -> dict:
    """Every check with its detail, and whether all are fine."""
    checks = {
        "database": database_check(),
        "redis": redis_check(),
    }
    checks["workers"] = _check_workers() if checks["redis"]["ok"] else _unknown("redis is down")
    checks["beat"] = _check_beat() if checks["redis"]["ok"] else _unknown("redis is down")
    return {"ok": all(check["ok"] for check in checks.values()), "checks": checks}


def database_check() -> dict:
    """PostgreSQL answers a SELECT 1: ok and in how many ms, or the error."""
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        connection.close_if_unusable_or_obsolete()
        return {"ok": False, "error": _first_line(error)}
    return {"ok": True, "ms": _elapsed_ms(started)}


def redis_check() -> dict:
    """Redis (the broker's) answers a PING: ok and in how many ms, or the error."""
    started = time.perf_counter()
    try:
        redis_client().ping()
    except (redis.RedisError, OSError) as error:
        return {"ok": False, "error": _first_line(error)}
    return {"ok": True, "ms": _elapsed_ms(started)}


@dataclass(frozen=True)
class WorkerSeen:
    """A worker that left a heartbeat lately: its name, how long ago, and the queues it takes."""

    name: str
    age_seconds: float
    queues: tuple[str, ...]

    @property
    def alive(self) -> bool:
        return self.age_seconds <= settings.HEARTBEAT_STALE_AFTER_SECONDS


def workers_seen() -> list[WorkerSeen]:
    """Every worker with a heartbeat not yet forgotten, alive or gone, by name. Two small reads
    of Redis; raises RedisError (or OSError) when Redis is away."""
    client = redis_client()
    with client.pipeline(transaction=False) as pipeline:
        pipeline.zrange(WORKERS_KEY, 0, -1, withscores=True)
        pipeline.hgetall(WORKER_QUEUES_KEY)
        beats, queues = pipeline.execute()
    now = time.time()
    return [
        WorkerSeen(
            name.decode(),
            max(0.0, round(now - at, 1)),
            tuple(filter(None, queues.get(name, b"").decode().split(","))),
        )
        for name, at in sorted(beats)
    ]


def beat_age_seconds() -> float | None:
    """How long ago beat's heartbeat task last ran, or None: never. Raises RedisError."""
    last = redis_client().get(BEAT_KEY)
    return None if last is None else max(0.0, round(time.time() - float(last), 1))


def _check_workers() -> dict:
    try:
        workers = [worker.name for worker in workers_seen() if worker.alive]
    except (redis.RedisError, OSError) as error:
        return {"ok": False, "error": _first_line(error)}
    if not workers:
        stale = settings.HEARTBEAT_STALE_AFTER_SECONDS
        return {"ok": False, "count": 0, "error": f"no worker heartbeat in the last {stale} s"}
    return {"ok": True, "count": len(workers), "names": workers}


def _check_beat() -> dict:
    try:
        age = beat_age_seconds()
    except (redis.RedisError, OSError) as error:
        return {"ok": False, "error": _first_line(error)}
    if age is None:
        return {"ok": False, "error": "beat has not run"}
    if age > settings.HEARTBEAT_STALE_AFTER_SECONDS:
        return {"ok": False, "age_seconds": age, "error": "beat heartbeat is stale"}
    return {"ok": True, "age_seconds": age}


def _unknown(reason: str) -> dict:
    return {"ok": False, "error": reason}


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 1)


def record_worker_heartbeat(hostname: str, queues: list[str]) -> None:
    client = redis_client()
    now = time.time()
    with client.pipeline(transaction=False) as pipeline:
        pipeline.zadd(WORKERS_KEY, {hostname: now})
        pipeline.hset(WORKER_QUEUES_KEY, hostname, ",".join(sorted(queues)))
        pipeline.execute()
    forgotten = now - FORGET_AFTER_STALE_PERIODS * settings.HEARTBEAT_STALE_AFTER_SECONDS
    if gone := client.zrangebyscore(WORKERS_KEY, "-inf", forgotten):
        _forget_workers(gone)


def _forget_workers(names: list) -> None:
    with redis_client().pipeline(transaction=False) as pipeline:
        pipeline.zrem(WORKERS_KEY, *names)
        pipeline.hdel(WORKER_QUEUES_KEY, *names)
        pipeline.execute()


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
    """Writes this worker's name, the time and the queues it takes into Redis every
    HEARTBEAT_SECONDS."""

    requires = ("celery.worker.components:Timer",)

    def __init__(self, worker, **kwargs) -> None:
        super().__init__(worker, **kwargs)
        self.timer_entry = None

    def start(self, worker) -> None:
        self._beat(worker)
        self.timer_entry = worker.timer.call_repeatedly(
            settings.HEARTBEAT_SECONDS, self._beat, (worker,), priority=10
        )

    def stop(self, worker) -> None:
        if self.timer_entry is not None:
            self.timer_entry.cancel()
        # Redis away at shutdown: the entry goes stale by itself.
        with suppress(redis.RedisError, OSError):
            _forget_workers([worker.hostname])

    def _beat(self, worker) -> None:
        try:
            # The queues of -Q (or the default queue), as the worker's consumer will take them.
            record_worker_heartbeat(worker.hostname, list(worker.app.amqp.queues.consume_from))
        except (redis.RedisError, OSError) as error:
            # The next beat retries; /healthz reports the gap meanwhile.
            logger.warning("worker heartbeat not recorded: %s", error)
