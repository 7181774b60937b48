"""The companion API: a thin FastAPI service beside the station (listeners, producers, LiveKit
tokens, posts and their memory, live events, operations). This module only wires: the settings,
the middleware (`api/middleware.py`), the lifespan (`api/lifespan.py`) and the routers
(`api/routes/`)."""

from __future__ import annotations

import psycopg
import psycopg_pool
from fastapi import FastAPI

from api import logs
from api.errors import database_down
from api.lifespan import lifespan
from api.metrics import Metrics
from api.middleware import add_middleware
from api.routes import (
    aired,
    blocklist,
    events,
    health,
    listeners,
    memory,
    metrics,
    posts,
    programme,
    session,
    tokens,
    web,
)
from api.settings import ApiSettings
from contract.keys import Keys
from core.settings import load

ROUTERS = (
    health,
    metrics,
    session,
    tokens,
    events,
    memory,  # before posts: `/api/posts/search`
    posts,
    listeners,
    blocklist,
    aired,
    programme,
    web,  # last: its `/` and asset routes must not shadow the API's
)


def create_app(settings: ApiSettings | None = None) -> FastAPI:
    settings = settings or load(ApiSettings)
    logs.configure(settings.api_log_level, settings.api_log_format)
    app = FastAPI(
        title="radio24",
        version="0.1.0",
        lifespan=lifespan,
        description="The companion API of radio24, a 24-hour AI radio station.",
    )
    app.state.settings = settings
    app.state.keys = Keys(settings.radio_room)
    app.state.metrics = Metrics()
    add_middleware(app, settings, app.state.metrics)
    app.add_exception_handler(psycopg.OperationalError, database_down)
    app.add_exception_handler(psycopg_pool.PoolTimeout, database_down)
    for module in ROUTERS:
        app.include_router(module.router)
    return app
