"""What the API holds open for its lifetime, on `app.state`: one Postgres pool, one Redis
client, and the services over them (the event hub, the doorbell, the screener, the mailbag, the
password checker, the memory of posts); and the background tasks it owns (the live-event
subscription, the embedding worker, the keeper). All start and stop with the app's lifespan;
`api/deps.py` hands them to the routes one by one.

Both clients time out: a Redis or Postgres that hangs (accepts connections and never answers)
costs a request a few seconds and a clear error, never the request itself."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import redis.asyncio as aioredis
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from api.doorbell import Doorbell
from api.hub import EventHub
from api.keeper import run_keeper
from api.mailbag import Mailbag
from api.metrics import Metrics
from api.passwords import PasswordChecker, dummy_hash
from api.screener import Screener
from api.settings import ApiSettings
from contract.keys import Keys
from db.memory import LocalEmbedder, MemoryStore, OpenAIEmbedder, keep_embedding
from db.pool import BoundedPool

log = logging.getLogger("radio24.api")

DB_WAIT_SECONDS = 3.0  # a request waits this long for a database connection, then 503


def database_pool(settings: ApiSettings) -> AsyncConnectionPool:
    """The API's pool (not yet open): every checkout and statement bounded in time."""
    return BoundedPool(
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


def redis_client(settings: ApiSettings) -> aioredis.Redis:
    return aioredis.from_url(
        settings.redis_url, decode_responses=True, socket_connect_timeout=1, socket_timeout=2
    )


def memory_store(settings: ApiSettings, pool: AsyncConnectionPool) -> MemoryStore | None:
    """The memory of posts with the embedder `API_EMBEDDINGS` names; None when off."""
    choice = settings.api_embeddings
    if choice == "off":
        return None
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else ""
    if choice == "openai" or (choice == "auto" and key):
        if not key:
            raise ValueError("API_EMBEDDINGS=openai needs OPENAI_API_KEY")
        return MemoryStore(pool, OpenAIEmbedder(key, settings.openai_base_url))
    return MemoryStore(pool, LocalEmbedder())


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Open the parts and start the tasks; put them on `app.state`; stop and close them all."""
    settings: ApiSettings = app.state.settings
    metrics: Metrics = app.state.metrics
    keys: Keys = app.state.keys
    pool = database_pool(settings)
    memory = memory_store(settings, pool)
    await pool.open(wait=False)
    redis = redis_client(settings)
    hub = EventHub(
        redis, keys, metrics, settings.api_ws_queue_size, settings.api_ws_send_timeout_seconds
    )
    doorbell = Doorbell(redis, keys, metrics)
    screener = Screener(settings, pool, metrics)
    embed_wake = asyncio.Event()
    passwords = PasswordChecker(settings.api_login_concurrency, settings.api_login_queue)
    state = app.state
    state.pool, state.redis, state.memory, state.embed_wake = pool, redis, memory, embed_wake
    state.hub, state.doorbell, state.screener, state.passwords = hub, doorbell, screener, passwords
    state.mailbag = Mailbag(
        settings=settings,
        pool=pool,
        redis=redis,
        keys=keys,
        metrics=metrics,
        screener=screener,
        doorbell=doorbell,
        hub=hub,
        embed_wake=embed_wake,
    )
    tasks = [asyncio.create_task(hub.run(), name="events")]
    if memory is not None:
        tasks.append(
            asyncio.create_task(
                keep_embedding(
                    memory, embed_wake, settings.api_embed_interval_seconds, metrics.embedded.inc
                ),
                name="embeddings",
            )
        )
    keeper_stop = asyncio.Event()
    if settings.api_keeper:
        tasks.append(asyncio.create_task(run_keeper(settings, redis, keeper_stop), name="keeper"))
    try:
        # The unknown-name hash, made once now rather than inside the first sign-in.
        await asyncio.to_thread(dummy_hash)
        log.info(
            "api started",
            extra={"room": settings.radio_room, "embeddings": memory and memory.model},
        )
        yield
    finally:
        keeper_stop.set()
        for task in tasks:
            task.cancel()
        _, stuck = await asyncio.wait(tasks, timeout=5)
        for task in stuck:
            log.error("background task did not stop", extra={"task": task.get_name()})
        passwords.close()
        await redis.aclose()
        await pool.close()
    log.info("api stopped")
