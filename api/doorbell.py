"""Ringing the host's doorbell: a queued post is in Postgres; Redis only says "look now".

The host claims queued posts from Postgres itself (`db.posts.claim`), polling every few seconds;
after a post is committed the API adds `{"post_id": "<uuid>"}` to the station's stream
`Keys.posts` (capped with XADD MAXLEN ~, so it never grows), which wakes the host at once. A
doorbell that cannot ring (Redis down or hanging) costs the post one poll interval, never the
post itself: nothing needs handing over again when Redis comes back, empty or not.
"""

from __future__ import annotations

import logging
import uuid

import redis.asyncio as aioredis

from api.metrics import Metrics
from contract.keys import POSTS_STREAM_MAXLEN, Keys
from core.outage import within

log = logging.getLogger("radio24.api.queue")


class Doorbell:
    def __init__(
        self, redis: aioredis.Redis, keys: Keys, metrics: Metrics, timeout: float = 1.0
    ) -> None:
        self.redis = redis
        self.stream = keys.posts
        self.metrics = metrics
        self.timeout = timeout

    async def ring(self, post_id: uuid.UUID) -> bool:
        """Wake the host for this post; False (logged, counted) when Redis did not answer."""

        async def add() -> None:
            await self.redis.xadd(
                self.stream, {"post_id": str(post_id)}, maxlen=POSTS_STREAM_MAXLEN, approximate=True
            )

        try:
            await within(self.timeout, add)
        except Exception as exc:
            self.metrics.handover_failures.inc()
            log.warning(
                "doorbell not rung: the host finds the post at its next poll",
                extra={"post_id": str(post_id), "error": repr(exc)},
            )
            return False
        return True
