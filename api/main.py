"""The companion API: a thin FastAPI service beside the station (listeners, producers, LiveKit
tokens, posts and their memory, live events, operations). This module only wires."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import psycopg
import psycopg_pool
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

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
from radio24.settings import load

log = logging.getLogger("radio24.api")


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or load(ApiSettings)
    logs.configure(settings.api_log_level, settings.api_log_format)
    station_metrics = metrics.Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Station.open(settings, station_metrics) as station:
            app.state.station = station
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
        app.include_router(module.router)
    return app
