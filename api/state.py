"""What the API holds open for its lifetime: one Postgres pool, one Redis client, settings, and
the background tasks it owns (the embedding worker, the live-event subscription, the keeper).
All start and stop with the app's lifespan.

Both clients time out: a Redis or Postgres that hangs (accepts connections and never answers)
costs a request a few seconds and a clear error, never the request itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool

from api.events import EventHub
from api.keeper import run_keeper
from api.metrics import Metrics
from api.queue import Doorbell
from api.settings import ApiSettings
from core.outage import BoundedPool
from db.memory import LocalEmbedder, MemoryStore, OpenAIEmbedder, keep_embedding

log = logging.getLogger("radio24.api")

DB_WAIT_SECONDS = 3.0  # a request waits this long for a database connection, then 503


@dataclass
class Station:
    settings: ApiSettings
    pool: AsyncConnectionPool
    redis: aioredis.Redis
    metrics: Metrics
    doorbell: Doorbell
    hub: EventHub
    memory: MemoryStore | None  # None when embeddings are off
    embed_wake: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: ApiSettings, metrics: Metrics) -> AsyncIterator[Station]:
        pool = BoundedPool(
            settings.database_url.get_secret_value(),
            min_size=1,
            max_size=10,
            open=False,
            timeout=DB_WAIT_SECONDS,
            reconnect_timeout=5,  # retry a lost server every few seconds, not minutes
            check=AsyncConnectionPool.check_connection,
            kwargs={
                "connect_timeout": 3,
                "options": "-c statement_timeout=5000 -c idle_in_transaction_session_timeout=10000",
            },
        )
        await pool.open(wait=False)
        client = aioredis.from_url(
            settings.redis_url, decode_responses=True, socket_connect_timeout=1, socket_timeout=2
        )
        station = cls(
            settings=settings,
            pool=pool,
            redis=client,
            metrics=metrics,
            doorbell=Doorbell(client, metrics),
            hub=EventHub(
                client, metrics, settings.api_ws_queue_size, settings.api_ws_send_timeout_seconds
            ),
            memory=_memory(settings, pool),
        )
        tasks = [asyncio.create_task(station.hub.run(), name="events")]
        if station.memory is not None:
            tasks.append(
                asyncio.create_task(
                    keep_embedding(
                        station.memory,
                        station.embed_wake,
                        settings.api_embed_interval_seconds,
                        metrics.embedded.inc,
                    ),
                    name="embeddings",
                )
            )
        keeper_stop = asyncio.Event()
        if settings.api_keeper:
            tasks.append(
                asyncio.create_task(run_keeper(settings, client, keeper_stop), name="keeper")
            )
        try:
            yield station
        finally:
            keeper_stop.set()
            for task in tasks:
                task.cancel()
            _, stuck = await asyncio.wait(tasks, timeout=5)
            for task in stuck:
                log.error("background task did not stop", extra={"task": task.get_name()})
            await client.aclose()
            await pool.close()


def _memory(settings: ApiSettings, pool: AsyncConnectionPool) -> MemoryStore | None:
    choice = settings.api_embeddings
    if choice == "off":
        return None
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if choice == "openai" or (choice == "auto" and key):
        if not key:
            raise ValueError("API_EMBEDDINGS=openai needs OPENAI_API_KEY")
        return MemoryStore(pool, OpenAIEmbedder(key, settings.openai_base_url))
    return MemoryStore(pool, LocalEmbedder())


def _station(request: Request) -> Station:
    return request.app.state.station  # type: ignore[no-any-return]


StationDep = Annotated[Station, Depends(_station)]
