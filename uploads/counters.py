"""Counters of the pipeline's work, kept in Redis: deliveries by outcome, and the poller's
requests and errors.

Deliveries and polls run in Celery worker processes, possibly on other hosts than the web
processes that answer /metrics; a counter in a worker's memory would reach no scrape. So each
one is an HINCRBY on the broker's Redis (durable, never evicting), which any web process reads
at scrape time: one round trip per delivery, whatever the number of workers or hosts.
docs/operations.md ("Why the pipeline counts in Redis") weighs it against an exporter per worker.

Beside the running totals (Prometheus computes rates from those), the same counts per minute
for the last couple of hours, for the system page's rates over the last 5 and 60 minutes.
A counter that cannot be written (Redis away) is skipped with a warning: the delivery it counts
has already happened, and losing a count must never fail it.
"""

import time
from dataclasses import dataclass

import redis
import structlog

from sirekap_tracker.health import redis_client

logger = structlog.get_logger(__name__)

DELIVERIES_KEY = "sirekap:counters:deliveries"
POLL_KEY = "sirekap:counters:poll"
POLL_LAST_SUCCESS_KEY = "sirekap:counters:poll:last-success"
# What a delivery attempt came to (uploads.services.Outcome.kind).
DELIVERY_OUTCOMES = ("accepted", "transient", "permanent")
# What the poller counts: HTTP requests to the public site, files it could not use, runs, and
# runs stopped early because the site kept failing.
POLL_FIELDS = ("requests", "errors", "runs", "gave_up")
# Per-minute counts are kept this long: past the longest window the system page shows.
MINUTES_KEPT = 120


def _minute_key(key: str, minute: int) -> str:
    return f"{key}:minute:{minute}"


def _add(key: str, counts: dict[str, int]) -> None:
    minute = int(time.time() // 60)
    try:
        with redis_client().pipeline(transaction=False) as pipeline:
            for field, amount in counts.items():
                if amount:
                    pipeline.hincrby(key, field, amount)
                    pipeline.hincrby(_minute_key(key, minute), field, amount)
            pipeline.expire(_minute_key(key, minute), MINUTES_KEPT * 60)
            pipeline.execute()
    except (redis.RedisError, OSError) as error:
        logger.warning("counter not recorded", counter=key, counts=counts, error=str(error))


def delivery_count(*, outcome: str) -> None:
    """One delivery attempt that came to `outcome` (accepted, transient or permanent)."""
    if outcome not in DELIVERY_OUTCOMES:
        raise ValueError(f"unknown delivery outcome {outcome!r}")
    _add(DELIVERIES_KEY, {outcome: 1})


def poll_count(*, requests: int, errors: int, gave_up: bool, succeeded: bool) -> None:
    """One run of the poller: its requests and errors, whether it was stopped early, and
    whether it succeeded (read some of the site and was not stopped early), which makes it the
    last successful poll."""
    _add(POLL_KEY, {"requests": requests, "errors": errors, "runs": 1, "gave_up": int(gave_up)})
    if succeeded:
        try:
            redis_client().set(POLL_LAST_SUCCESS_KEY, time.time())
        except (redis.RedisError, OSError) as error:
            logger.warning("last successful poll not recorded", error=str(error))


@dataclass(frozen=True)
class Counted:
    """Counts since the counters began (totals), and over the last 5 and 60 minutes."""

    totals: dict[str, int]
    last_5_minutes: dict[str, int]
    last_60_minutes: dict[str, int]


@dataclass(frozen=True)
class PipelineCounts:
    deliveries: Counted
    poll: Counted
    # When the last successful poll finished (seconds since the epoch), or None: never.
    poll_last_success: float | None


def pipeline_counts(*, now: float | None = None) -> PipelineCounts:
    """Every counter, totals and per minute, in one round trip. The last N minutes are this
    minute so far and the N - 1 before it. Raises RedisError (or OSError) when Redis is away."""
    minute = int((time.time() if now is None else now) // 60)
    minutes = range(minute - 59, minute + 1)
    with redis_client().pipeline(transaction=False) as pipeline:
        for key in (DELIVERIES_KEY, POLL_KEY):
            pipeline.hgetall(key)
            for each in minutes:
                pipeline.hgetall(_minute_key(key, each))
        pipeline.get(POLL_LAST_SUCCESS_KEY)
        replies = pipeline.execute()
    per_key = len(minutes) + 1
    deliveries = _counted(replies[:per_key], DELIVERY_OUTCOMES)
    poll = _counted(replies[per_key : 2 * per_key], POLL_FIELDS)
    last_success = replies[-1]
    return PipelineCounts(deliveries, poll, float(last_success) if last_success else None)


def _counted(replies: list[dict], fields: tuple[str, ...]) -> Counted:
    totals, *per_minute = (_numbers(reply, fields) for reply in replies)
    return Counted(totals, _sum(per_minute[-5:], fields), _sum(per_minute, fields))


def _numbers(reply: dict, fields: tuple[str, ...]) -> dict[str, int]:
    return {field: int(reply.get(field.encode(), 0)) for field in fields}


def _sum(counts: list[dict[str, int]], fields: tuple[str, ...]) -> dict[str, int]:
    return {field: sum(each[field] for each in counts) for field in fields}
