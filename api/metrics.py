"""Prometheus metrics: requests and latency by route, posts by status, the host's queue, the
embedding lag, live-event clients.

Each app has its own registry (several apps in one test process must not collide). Gauges that
describe the station rather than this process are read from Postgres and Redis at scrape time,
at most once per `API_METRICS_REFRESH_SECONDS` and one read at a time, so scrapes (or anyone
hammering the route) cannot turn into a stream of counts over the posts table. The requests are
counted by `api.middleware.RequestMetrics`; the route is `api/routes/metrics.py`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from psycopg_pool import AsyncConnectionPool

from contract.keys import Keys
from db import posts

if TYPE_CHECKING:
    from db.memory import MemoryStore

log = logging.getLogger("radio24.api.metrics")


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "radio24_api_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "radio24_api_request_seconds",
            "HTTP request latency",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            registry=r,
        )
        self.sessions = Counter("radio24_api_sessions", "Guest sessions started", registry=r)
        self.posts_created = Counter(
            "radio24_posts_created",
            "Posts accepted by the API, by outcome",
            ["outcome"],
            registry=r,
        )
        self.handover_failures = Counter(
            "radio24_posts_handover_failures",
            "Posts whose doorbell did not ring (Redis down): the host finds them by polling",
            registry=r,
        )
        self.moderation_unavailable = Counter(
            "radio24_moderation_unavailable",
            "Posts checked by the blocklist only: OpenAI moderation did not answer",
            registry=r,
        )
        self.posts = Gauge("radio24_posts", "Posts by status", ["status"], registry=r)
        self.queue_owed = Gauge(
            "radio24_queue_owed",
            "Queued posts the host has not claimed yet",
            registry=r,
        )
        self.queue_stream = Gauge(
            "radio24_queue_stream_length",
            "Entries in the host's doorbell stream of posts (capped)",
            registry=r,
        )
        self.queue_pending = Gauge(
            "radio24_queue_pending",
            "Queued posts a host holds now (claimed, not yet aired)",
            registry=r,
        )
        self.embedding_waiting = Gauge(
            "radio24_embedding_lag_posts", "Posts waiting for an embedding", registry=r
        )
        self.embedding_lag = Gauge(
            "radio24_embedding_lag_seconds",
            "Age of the oldest post waiting for an embedding",
            registry=r,
        )
        self.embedded = Counter("radio24_embedded_posts", "Posts embedded", registry=r)
        self.ws_clients = Gauge("radio24_ws_clients", "Live-event clients connected", registry=r)
        self.ws_dropped = Counter(
            "radio24_ws_dropped", "Live-event clients closed for falling behind", registry=r
        )
        self.refreshed_at = float("-inf")  # monotonic time of the last station read
        self.refreshing = asyncio.Lock()


async def refresh(
    m: Metrics,
    pool: AsyncConnectionPool,
    redis: aioredis.Redis,
    keys: Keys,
    memory: MemoryStore | None,
) -> None:
    """Read the station's gauges; a part that does not answer leaves its gauges as they were."""
    try:
        async with pool.connection(timeout=2) as conn:
            counts = await posts.counts(conn)
        for s in posts.STATUSES:
            m.posts.labels(s).set(counts.by_status.get(s, 0))
        m.queue_owed.set(counts.owed_to_host)
        m.queue_pending.set(counts.held_by_host)
        if memory is not None:
            lag = await memory.lag()
            m.embedding_waiting.set(lag.waiting)
            m.embedding_lag.set(lag.oldest_seconds)
    except Exception as exc:
        log.warning("metrics: postgres unavailable", extra={"error": repr(exc)})
    try:
        m.queue_stream.set(await redis.xlen(keys.posts))
    except Exception as exc:
        log.warning("metrics: redis unavailable", extra={"error": repr(exc)})


async def refresh_if_stale(
    m: Metrics,
    every: float,
    pool: AsyncConnectionPool,
    redis: aioredis.Redis,
    keys: Keys,
    memory: MemoryStore | None,
) -> None:
    """`refresh` unless another scrape did it within `every` seconds (or is doing it)."""
    async with m.refreshing:
        if time.monotonic() - m.refreshed_at >= every:
            await refresh(m, pool, redis, keys, memory)
            m.refreshed_at = time.monotonic()
