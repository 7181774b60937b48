"""The companion API: a thin FastAPI service beside the station (listeners, producers, LiveKit
tokens, posts and their memory, live events, operations). This module only wires: the routers,
the client address behind trusted proxies, and the security headers every answer carries."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api import (
    aired,
    auth,
    blocklist,
    events,
    health,
    listeners,
    logs,
    memory,
    metrics,
    posts,
    programme,
    tokens,
    web,
)
from api.settings import ApiSettings
from api.state import Station
from core.settings import load

log = logging.getLogger("radio24.api")

# The documented error answers of each group of routes (the fuzz holds the API to them).
_DB_DOWN = {503: {"description": "the database is unavailable (Retry-After)"}}
_SIGNED_IN = {
    401: {"description": "no valid token: sign in"},
    403: {"description": "banned, or the route needs another role"},
    **_DB_DOWN,
}
_RESPONSES: dict[Any, dict[int | str, dict[str, Any]]] = {
    posts: {
        **_SIGNED_IN,
        404: {"description": "no such post"},
        409: {"description": "the post cannot make that move, or the key was reused"},
        429: {"description": "too many posts (Retry-After)"},
    },
    memory: {**_SIGNED_IN, 503: {"description": "embeddings are off, or the database is away"}},
    listeners: {
        **_SIGNED_IN,
        404: {"description": "no such listener"},
        409: {"description": "staff cannot be banned"},
    },
    blocklist: {**_SIGNED_IN, 404: {"description": "that term is not blocked"}},
    aired: _SIGNED_IN,
    programme: {
        **_SIGNED_IN,
        404: {"description": "the host has not reported its prompt status yet"},
        502: {"description": "the host's prompt status is not readable"},
    },
    health: _DB_DOWN,
}


def content_security_policy(livekit_url: str) -> str:
    """Scripts, styles and everything else from this origin only; the page may also reach the
    LiveKit server (its signalling WebSocket and HTTP endpoints). No page may frame ours."""
    parts = urlsplit(livekit_url)
    secure = parts.scheme in ("wss", "https")
    livekit = (
        f"{'wss' if secure else 'ws'}://{parts.netloc} {'https' if secure else 'http'}://{parts.netloc}"
        if parts.netloc
        else ""
    )
    return "; ".join(
        (
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "media-src 'self' blob: mediastream:",
            f"connect-src 'self' {livekit}".strip(),
            "worker-src 'self' blob:",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


class SecurityHeaders:
    """Pure ASGI middleware: the same protective headers on every HTTP answer. The interactive
    docs (/docs, /redoc) load FastAPI's own CDN scripts, so they get only `frame-ancestors`."""

    DOCS = ("/docs", "/redoc")

    def __init__(self, app: ASGIApp, csp: str, production: bool) -> None:
        self.app = app
        self.common = [
            (b"x-content-type-options", b"nosniff"),
            (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"),
            (b"cross-origin-opener-policy", b"same-origin"),
            (b"permissions-policy", b"microphone=(self), camera=(), geolocation=()"),
        ]
        if production:  # browsers keep to HTTPS for a year once they have seen it over HTTPS
            self.common.append((b"strict-transport-security", b"max-age=31536000"))
        self.csp = csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = str(scope.get("path", "")).startswith(self.DOCS)
        csp = b"frame-ancestors 'none'" if docs else self.csp

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    *self.common,
                    (b"content-security-policy", csp),
                ]
            await send(message)

        await self.app(scope, receive, with_headers)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or load(ApiSettings)
    logs.configure(settings.api_log_level, settings.api_log_format)
    station_metrics = metrics.Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Station.open(settings, station_metrics) as station:
            app.state.station = station
            # The unknown-name hash, made once now rather than inside the first sign-in.
            await asyncio.to_thread(auth._dummy_hash)
            log.info(
                "api started",
                extra={
                    "room": settings.radio_room,
                    "embeddings": station.memory and station.memory.model,
                },
            )
            yield
        log.info("api stopped")

    app = FastAPI(
        title="radio24",
        version="0.1.0",
        lifespan=lifespan,
        description="The companion API of radio24, a 24-hour AI radio station.",
    )
    app.add_middleware(metrics.RequestMetrics, metrics=station_metrics)
    app.add_middleware(
        SecurityHeaders,
        csp=content_security_policy(settings.livekit_public_url or settings.livekit_url),
        production=settings.radio_env == "production",
    )
    # Outermost: the client's address is settled before anything (limits, logs) reads it.
    # Only the listed proxies are believed; with none, X-Forwarded-For is ignored.
    if settings.api_trusted_proxies:
        app.add_middleware(
            ProxyHeadersMiddleware,
            trusted_hosts=[str(net) for net in settings.api_trusted_proxies],
        )

    @app.exception_handler(psycopg.OperationalError)
    @app.exception_handler(psycopg_pool.PoolTimeout)
    async def _database_down(request: Request, exc: Exception) -> JSONResponse:
        log.error("database unavailable", extra={"path": request.url.path, "error": repr(exc)})
        return JSONResponse(
            {"detail": "the station's database is unavailable: retry shortly"},
            status_code=503,
            headers={"Retry-After": "5"},
        )

    for module in (
        health,
        metrics,
        auth,
        tokens,
        memory,
        posts,
        listeners,
        blocklist,
        aired,
        programme,
        events,
        web,  # last: its `/` and asset routes must not shadow the API's
    ):
        app.include_router(module.router, responses=_RESPONSES.get(module))
        if module is tokens:
            app.include_router(tokens.tickets)
    return app
