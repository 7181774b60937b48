"""The host: the AI voice that stays on air in the station room.

Foundation version: joins the room it is dispatched to and stays. The host issue builds the
Realtime session, push-to-talk floor, on-air loop and offline voice on top of this.
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from livekit.agents import JobContext

from agent.settings import HostSettings

log = logging.getLogger("radio24.host")

WORKER_KEY = "radio24:host:worker"


def worker_registered(settings: HostSettings, worker_id: str) -> None:
    """Tell operators (and `make run`'s banner) that a host worker is registered."""

    async def publish() -> None:
        client = aioredis.from_url(settings.redis_url)
        try:
            await client.hset(WORKER_KEY, mapping={"id": worker_id, "at": time.time()})
        finally:
            await client.aclose()

    task = asyncio.get_running_loop().create_task(publish())
    task.add_done_callback(
        lambda t: t.exception() and log.warning("could not record worker", exc_info=t.exception())
    )


async def run_host(ctx: JobContext, settings: HostSettings) -> None:
    await ctx.connect()
    log.info("host joined", extra={"room": ctx.room.name})
