"""The companion API: a thin FastAPI service beside the station (auth, tokens, posts, health)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from api import health
from api.settings import ApiSettings
from api.state import Station
from radio24.settings import load


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or load(ApiSettings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with Station.open(settings) as station:
            app.state.station = station
            yield

    app = FastAPI(title="radio24", version="0.1.0", lifespan=lifespan)
    app.include_router(health.router)
    return app
