"""Rate limits in Redis, shared by every API instance: a sliding window per key.

Each counter is a Redis key of the station (`contract.keys.Keys.rate_limit(name)`). Each `hit`
counts and decides in one Redis transaction, so a parallel burst cannot slip past the limit
between a check and a count. A limit that protects the air (posts, new sessions) lets the
request through when Redis is unreachable (Postgres still records it); a limit that protects
accounts (sign-in) is called with `fail_open=False` and refuses instead (`Unavailable`).
"""

from __future__ import annotations

import logging
import math
import secrets
import time
from dataclasses import dataclass

import redis.asyncio as aioredis

from core.errors import REDIS_DOWN

log = logging.getLogger("radio24.api.limits")


class Unavailable(Exception):
    """Redis could not count the request, and the caller chose to refuse it then."""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after: int = 0  # whole seconds until one more request would be allowed


async def hit(
    redis: aioredis.Redis,
    key: str,
    limit: int,
    window: float,
    *,
    now: float | None = None,
    fail_open: bool = True,
) -> Decision:
    """Count one request under the Redis key `key`; refuse it when `limit` already fell in the
    last `window` seconds. A refused request does not count, so a client that waits
    `retry_after` gets in.
    When Redis is unreachable: allowed, or `Unavailable` with `fail_open=False`."""
    now = time.time() if now is None else now
    member = f"{now:.6f}:{secrets.token_hex(4)}"
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.zremrangebyscore(key, 0, now - window)
            pipe.zadd(key, {member: now})
            pipe.zcard(key)
            pipe.zrange(key, 0, 0, withscores=True)
            pipe.expire(key, math.ceil(window) + 1)
            _, _, count, oldest, _ = await pipe.execute()
        if count <= limit:
            return Decision(True)
        await redis.zrem(key, member)
    except REDIS_DOWN as exc:
        if not fail_open:
            log.warning(
                "rate limit unavailable, request refused", extra={"key": key, "error": repr(exc)}
            )
            raise Unavailable(key) from exc
        log.warning(
            "rate limit unavailable, request allowed", extra={"key": key, "error": repr(exc)}
        )
        return Decision(True)
    return _refused(oldest, window, now)


def _refused(oldest: list[tuple[str, float]], window: float, now: float) -> Decision:
    first = float(oldest[0][1]) if oldest else now
    return Decision(False, max(1, math.ceil(first + window - now)))
