"""How often one user and one address may post documents: fixed windows counted in Redis.

An in-region token could otherwise post documents as fast as the network carries them. The
limiter fails open: with Redis down intake must keep answering 201 (PostgreSQL holds the rows,
the sweeper rings when Redis is back), so an outage lifts the limits rather than the intake.
"""

import functools
import logging
import math
import time

import redis
from django.conf import settings

logger = logging.getLogger(__name__)

KEY_PREFIX = "sirekap:intake-rate"


@functools.cache
def _client(url: str) -> redis.Redis:
    # Short timeouts: during an outage each intake request spends at most this waiting.
    return redis.Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)


def intake_rate_check(*, address: str | None = None, user_id: int | None = None) -> int | None:
    """Counts one intake request of the address and/or the user (all their tokens and
    sessions); the seconds until the window ends when either is over its limit, else None."""
    window = settings.UPLOAD_RATE_WINDOW_SECONDS
    now = time.time()
    start = int(now // window * window)
    limits = []
    if address is not None:
        limits.append(("address", address, settings.UPLOAD_RATE_PER_ADDRESS))
    if user_id is not None:
        limits.append(("user", str(user_id), settings.UPLOAD_RATE_PER_USER))
    limits = [(scope, who, limit) for scope, who, limit in limits if limit > 0]
    if not limits:
        return None
    try:
        counts = _count(limits, start, window)
    except (redis.RedisError, OSError) as error:
        logger.warning("intake rate limit not applied, Redis is unreachable (%s)", error)
        return None
    if any(count > limit for count, (_, _, limit) in zip(counts, limits, strict=True)):
        return max(math.ceil(start + window - now), 1)
    return None


def _count(limits: list[tuple[str, str, int]], start: int, window: int) -> list[int]:
    pipe = _client(settings.REDIS_URL).pipeline(transaction=False)
    for scope, who, _ in limits:
        key = f"{KEY_PREFIX}:{scope}:{who}:{start}"
        pipe.incr(key)
        pipe.expire(key, window + 1)
    return pipe.execute()[::2]
