"""What every HTTP answer passes through: the client's address behind trusted proxies, the
security headers (CSP and friends), and the request metrics. Pure ASGI middleware."""

from __future__ import annotations

import time
from urllib.parse import urlsplit

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from api.metrics import Metrics
from api.settings import ApiSettings


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
    """The same protective headers on every HTTP answer. The interactive docs (/docs, /redoc)
    load FastAPI's own CDN scripts, so they get only `frame-ancestors`."""

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


class RequestMetrics:
    """Counts and times HTTP requests by route template (never the raw path, whose ids would
    explode the label set)."""

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


def add_middleware(app: FastAPI, settings: ApiSettings, metrics: Metrics) -> None:
    """From the inside out: request metrics, security headers, trusted proxies."""
    app.add_middleware(RequestMetrics, metrics=metrics)
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
