"""What a route may ask for, one narrow dependency each: read from what `create_app` and the
lifespan (`api/lifespan.py`) put on `app.state`, so a route names only the parts it uses.

Nothing here imports a route; the routes import from here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, HTTPException, status
from fastapi.requests import HTTPConnection
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from psycopg_pool import AsyncConnectionPool

from api.auth import Person, Role, person_for_token
from api.hub import EventHub
from api.mailbag import Mailbag
from api.metrics import Metrics
from api.passwords import PasswordChecker
from api.screener import Screener
from api.settings import ApiSettings
from contract.keys import Keys
from db.memory import MemoryStore


def _settings(conn: HTTPConnection) -> ApiSettings:
    return conn.app.state.settings


def _keys(conn: HTTPConnection) -> Keys:
    return conn.app.state.keys


def _metrics(conn: HTTPConnection) -> Metrics:
    return conn.app.state.metrics


def _pool(conn: HTTPConnection) -> AsyncConnectionPool:
    return conn.app.state.pool


def _redis(conn: HTTPConnection) -> aioredis.Redis:
    return conn.app.state.redis


def _hub(conn: HTTPConnection) -> EventHub:
    return conn.app.state.hub


def _memory(conn: HTTPConnection) -> MemoryStore | None:
    return conn.app.state.memory


def _mailbag(conn: HTTPConnection) -> Mailbag:
    return conn.app.state.mailbag


def _screener(conn: HTTPConnection) -> Screener:
    return conn.app.state.screener


def _passwords(conn: HTTPConnection) -> PasswordChecker:
    return conn.app.state.passwords


SettingsDep = Annotated[ApiSettings, Depends(_settings)]
KeysDep = Annotated[Keys, Depends(_keys)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
PoolDep = Annotated[AsyncConnectionPool, Depends(_pool)]
RedisDep = Annotated[aioredis.Redis, Depends(_redis)]
HubDep = Annotated[EventHub, Depends(_hub)]
MemoryDep = Annotated[MemoryStore | None, Depends(_memory)]  # None when embeddings are off
MailbagDep = Annotated[Mailbag, Depends(_mailbag)]
ScreenerDep = Annotated[Screener, Depends(_screener)]
PasswordsDep = Annotated[PasswordChecker, Depends(_passwords)]

# --- who is asking ----------------------------------------------------------------------------

bearer = HTTPBearer(auto_error=False, description="The token from /api/session or /api/auth/login")
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def _current_person(settings: SettingsDep, pool: PoolDep, credentials: Credentials) -> Person:
    secret = settings.api_jwt_secret.get_secret_value()
    return await person_for_token(secret, pool, credentials.credentials if credentials else None)


CurrentPerson = Annotated[Person, Depends(_current_person)]


def require(*roles: Role) -> Callable[..., Awaitable[Person]]:
    async def check(person: CurrentPerson) -> Person:
        if person.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs role: {' or '.join(roles)}")
        return person

    return check


Producer = Annotated[Person, Depends(require("producer", "admin"))]
