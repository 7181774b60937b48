"""Handing queued posts to the host: Postgres first, then the Redis stream, never lost, never twice.

A post is committed to Postgres before anything else; then it is handed over by XADD to the
stream `radio24:posts` (consumer group `host`, fields `{"post_id": "<uuid>"}`) and marked with
`enqueued_at`. Both the request that created the post and the relay (a task of the API's
lifespan that sweeps posts Redis missed) lock the row with `FOR UPDATE SKIP LOCKED` and re-check
`enqueued_at IS NULL` while they XADD, so two API instances never hand the same post twice; if
XADD fails the transaction rolls back and the post stays owed. The host marks a post aired with
`WHERE status = 'queued'`, so even a stream entry repeated after a crash between XADD and COMMIT
cannot air twice.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool
from redis.exceptions import RedisError, ResponseError

from api.metrics import Metrics
from api.queries import queries
from db.outage import Outage

STREAM = "radio24:posts"
GROUP = "host"
RELAY_BATCH = 200

log = logging.getLogger("radio24.api.queue")


class PostQueue:
    def __init__(self, pool: AsyncConnectionPool, redis: aioredis.Redis, metrics: Metrics) -> None:
        self.pool = pool
        self.redis = redis
        self.metrics = metrics
        self._group_ready = False

    async def ensure_group(self) -> None:
        """Create the host's consumer group reading from the stream's start, so entries added
        before the host first starts are not skipped (a Redis restarted empty loses it)."""
        try:
            await self.redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def _xadd(self, ids: Sequence[uuid.UUID]) -> None:
        try:
            if not self._group_ready:
                await self.ensure_group()
            async with self.redis.pipeline(transaction=False) as pipe:
                for post_id in ids:
                    pipe.xadd(STREAM, {"post_id": str(post_id)})
                await pipe.execute()
        except BaseException:
            self._group_ready = False  # Redis may come back empty
            raise

    async def hand_over(self, post_id: uuid.UUID) -> bool:
        """Hand one queued post to the host now. False when it needs nothing (already handed,
        no longer queued, or the relay holds it); `RedisError`/`OSError` when Redis refused, and
        then the post stays owed to the relay."""
        async with self.pool.connection() as conn, conn.transaction():
            if await queries.claim_owed_post(conn, id=post_id) is None:
                return False
            await self._xadd([post_id])
            await queries.mark_enqueued(conn, ids=[post_id])
        return True

    async def try_hand_over(self, post_id: uuid.UUID) -> bool:
        """`hand_over`, keeping the post for the relay when Redis is unreachable."""
        try:
            return await self.hand_over(post_id)
        except (RedisError, OSError) as exc:
            self.metrics.handover_failures.inc()
            log.warning(
                "post kept for the relay: redis refused",
                extra={"post_id": str(post_id), "error": repr(exc)},
            )
            return False

    async def relay_once(self) -> int:
        """Hand over every post Redis missed (oldest first); return how many."""
        total = 0
        while True:
            async with self.pool.connection() as conn, conn.transaction():
                ids = [row[0] async for row in queries.claim_owed_posts(conn, n=RELAY_BATCH)]
                if not ids:
                    return total
                await self._xadd(ids)
                await queries.mark_enqueued(conn, ids=ids)
            total += len(ids)
            self.metrics.relayed.inc(len(ids))
            log.info("relay handed posts to the host", extra={"count": len(ids)})
            if len(ids) < RELAY_BATCH:
                return total

    async def run_relay(self, interval: float) -> None:
        """The relay task: until cancelled, hand over owed posts every `interval` seconds."""
        outage = Outage(log, "relay: cannot hand over yet", "relay: the parts answer again")
        while True:
            await outage.attempt(self.relay_once)
            await asyncio.sleep(interval)
