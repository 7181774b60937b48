"""Prometheus metrics: requests and latency by route, posts by status, the host's queue, the
embedding lag, live-event clients.

Each app has its own registry (several apps in one test process must not collide). Gauges that
describe the station rather than this process are read from Postgres and Redis at scrape time,
at most once per `API_METRICS_REFRESH_SECONDS` and one read at a time, so scrapes (or anyone
hammering the route) cannot turn into a stream of counts over the posts table.

`/metrics` is not public: it answers a bearer `API_METRICS_TOKEN` when one is set, and otherwise
only clients on loopback (a Prometheus beside the API, or an operator on the machine).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import time
from typing import TYPE_CHECKING

from fastapi import APIRouter, HTTPException, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

if TYPE_CHECKING:
    from api.state import Station

log = logging.getLogger("radio24.api.metrics")

router = APIRouter(tags=["operations"])

STATUSES = ("queued", "aired", "rejected", "hidden")


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
            "Entries in the radio24:posts doorbell stream (capped)",
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


class RequestMetrics:
    """Pure ASGI middleware: counts and times HTTP requests by route template (never the raw
    path, whose ids would explode the label set)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            method = scope["method"]
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.latency.labels(method, path).observe(time.perf_counter() - started)


async def refresh(station: Station) -> None:
    """Read the station's gauges; a part that does not answer leaves its gauges as they were."""
    from api.queries import queries
    from api.queue import STREAM

    m = station.metrics
    try:
        async with station.pool.connection(timeout=2) as conn:
            counts = {s: n async for s, n in queries.posts_by_status(conn)}
            owed = await queries.owed_to_host(conn)
            held = await queries.held_by_host(conn)
        for s in STATUSES:
            m.posts.labels(s).set(counts.get(s, 0))
        m.queue_owed.set(owed or 0)
        m.queue_pending.set(held or 0)
        if station.memory is not None:
            lag = await station.memory.lag()
            m.embedding_waiting.set(lag.waiting)
            m.embedding_lag.set(lag.oldest_seconds)
    except Exception as exc:
        log.warning("metrics: postgres unavailable", extra={"error": repr(exc)})
    try:
        m.queue_stream.set(await station.redis.xlen(STREAM))
    except Exception as exc:
        log.warning("metrics: redis unavailable", extra={"error": repr(exc)})


async def refresh_if_stale(station: Station) -> None:
    """`refresh` unless another scrape did it within the refresh interval (or is doing it)."""
    m, every = station.metrics, station.settings.api_metrics_refresh_seconds
    async with m.refreshing:
        if time.monotonic() - m.refreshed_at >= every:
            await refresh(station)
            m.refreshed_at = time.monotonic()


def _allowed(request: Request, token: str | None) -> bool:
    if token:
        given = request.headers.get("authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    try:
        return ipaddress.ip_address(request.client.host if request.client else "").is_loopback
    except ValueError:
        return False


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    station: Station = request.app.state.station
    secret = station.settings.api_metrics_token
    if not _allowed(request, secret.get_secret_value() if secret else None):
        raise HTTPException(
            404 if secret is None else 401,
            "not found" if secret is None else "metrics need Authorization: Bearer <token>",
        )
    await refresh_if_stale(station)
    return Response(generate_latest(station.metrics.registry), media_type=CONTENT_TYPE_LATEST)
