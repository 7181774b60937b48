"""Error groups shared by every process: what a failing part raises, named once."""

from __future__ import annotations

from redis.exceptions import RedisError

# What a Redis call raises when Redis is down or dying: besides redis-py's own errors, uvloop
# raises RuntimeError on a connection Redis closed as it died (seen in the fault suite).
REDIS_DOWN: tuple[type[Exception], ...] = (RedisError, OSError, RuntimeError)
