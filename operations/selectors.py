"""What the system page and /metrics read: the state of every part, now, cheaply.

Nothing here counts rows at national scale: PostgreSQL answers a SELECT 1 and two index lookups
(the oldest waiting uploads), Redis a handful of commands in two round trips (heartbeats, queue
lengths, the pipeline's counters), and the public snapshot a stat and a small read per contest
kind. A part that cannot be read (PostgreSQL or Redis away) is None, and the rest is still read.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from celery import current_app
from django.conf import settings
from django.db import DatabaseError
from kombu.transport.redis import PRIORITY_STEPS, Channel

from public import snapshots
from public.selectors import MirrorState, public_mirror_state
from sirekap_tracker import health
from uploads import counters
from uploads.selectors import Waiting, uploads_waiting

REDIS_ERRORS = (redis.RedisError, OSError)


@dataclass(frozen=True)
class QueueState:
    name: str
    depth: int  # messages waiting for a worker
    workers: int  # workers alive that take this queue


@dataclass(frozen=True)
class SnapshotState:
    kind: str
    age_seconds: float | None  # since its last finished refresh; None: never
    backlog: int  # areas waiting for a refresh


@dataclass(frozen=True)
class SystemState:
    at: float  # when it was read (seconds since the epoch)
    database: dict  # sirekap_tracker.health.database_check()
    redis: dict  # sirekap_tracker.health.redis_check()
    workers: list[health.WorkerSeen] | None
    beat_age_seconds: float | None
    beat_readable: bool
    queues: list[QueueState] | None
    unacked: int | None  # messages taken by a worker and not yet acknowledged
    waiting: Waiting | None
    counts: counters.PipelineCounts | None
    snapshots: list[SnapshotState]
    # The public snapshot's mirror on object storage; None when it is off or unreadable.
    mirror: MirrorState | None = None


def celery_queues() -> list[str]:
    """The queues tasks are sent to: the default one and those of the routes."""
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()}
    return sorted({current_app.conf.task_default_queue, *routed})


def system_state() -> SystemState:
    database, redis_state = health.database_check(), health.redis_check()
    workers = _or_none(health.workers_seen) if redis_state["ok"] else None
    beat_age = _or_none(health.beat_age_seconds) if redis_state["ok"] else None
    depths, unacked = _queue_depths() if redis_state["ok"] else (None, None)
    return SystemState(
        at=time.time(),
        database=database,
        redis=redis_state,
        workers=workers,
        beat_age_seconds=beat_age,
        beat_readable=redis_state["ok"],
        queues=_queues(depths, workers),
        unacked=unacked,
        waiting=_waiting() if database["ok"] else None,
        counts=_or_none(counters.pipeline_counts) if redis_state["ok"] else None,
        snapshots=snapshot_states(),
        mirror=_mirror() if database["ok"] else None,
    )


def _or_none[T](read: Callable[[], T]) -> T | None:
    try:
        return read()
    except REDIS_ERRORS:
        return None


def _mirror() -> MirrorState | None:
    if settings.PUBLIC_S3 is None:
        return None
    try:
        return public_mirror_state()
    except DatabaseError:
        return None


def _waiting() -> Waiting | None:
    try:
        return uploads_waiting()
    except DatabaseError:
        return None


def _queue_depths() -> tuple[dict[str, int] | None, int | None]:
    """Each queue's length as kombu keeps it in the broker's database: one list per priority
    step (`celery`, then `celery<sep>3` ...), and the hash of unacknowledged messages."""
    names = celery_queues()
    try:
        with health.redis_client().pipeline(transaction=False) as pipeline:
            for name in names:
                for step in PRIORITY_STEPS:
                    pipeline.llen(f"{name}{Channel.sep}{step}" if step else name)
            pipeline.hlen(Channel.unacked_key)
            *lengths, unacked = pipeline.execute()
    except REDIS_ERRORS:
        return None, None
    per_queue = len(PRIORITY_STEPS)
    depths = {
        name: sum(lengths[position * per_queue : (position + 1) * per_queue])
        for position, name in enumerate(names)
    }
    return depths, unacked


def _queues(
    depths: dict[str, int] | None, workers: list[health.WorkerSeen] | None
) -> list[QueueState] | None:
    if depths is None or workers is None:
        return None
    alive = [worker for worker in workers if worker.alive]
    return [
        QueueState(name, depth, sum(name in worker.queues for worker in alive))
        for name, depth in depths.items()
    ]


def snapshot_states() -> list[SnapshotState]:
    """Each contest kind of the public snapshot: when its refresh last finished, and how many
    areas wait for the next one (read from its state file on the shared volume)."""
    now = time.time()
    states = []
    for kind in snapshots.kinds():
        heartbeat = snapshots.heartbeat(kind)
        age = None if heartbeat is None else max(0.0, round(now - heartbeat, 1))
        backlog = len(snapshots.state_read(kind).get("pending", []))
        states.append(SnapshotState(kind, age, backlog))
    return states
