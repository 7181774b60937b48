"""The API under test: a real app (lifespan and all) on the session's Postgres, Redis and LiveKit,
driven in-process through httpx, or served by uvicorn on loopback for WebSocket tests."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from starlette.datastructures import State

from api.main import create_app
from api.passwords import hasher
from api.settings import ApiSettings
from radio24 import rack
from tests.conftest import LiveKit

PASSWORD = "correct horse battery"
ROOM = "radio24-test"  # the tests' station: its Redis names are `contract.keys.Keys(ROOM)`
_HASH = hasher.hash(PASSWORD)  # one hash for every test producer: argon2 is slow on purpose


def make_settings(
    database_url: str, redis_url: str, livekit: LiveKit, **overrides: Any
) -> ApiSettings:
    values: dict[str, Any] = {
        "database_url": database_url,
        "redis_url": redis_url,
        "livekit_url": livekit.url,
        "livekit_api_key": livekit.api_key,
        "livekit_api_secret": livekit.api_secret,
        "radio_room": ROOM,
        "openai_api_key": None,
        "api_relay_interval_seconds": 0.2,
        "api_embed_interval_seconds": 0.2,
        "api_embeddings": "off",
        "api_log_format": "text",
        "api_keeper": False,  # tests that want the keeper (browser, host) run it themselves
    }
    values.update(overrides)
    return ApiSettings(_env_file=None, **values)  # type: ignore[call-arg]


@dataclass
class Who:
    id: str
    token: str
    nickname: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@dataclass
class Api:
    app: FastAPI
    client: httpx.AsyncClient
    settings: ApiSettings

    @property
    def station(self) -> State:
        """What the app holds open (api/lifespan.py): `.redis`, `.hub`, `.doorbell`, `.pool`..."""
        return self.app.state

    async def listener(self, nickname: str = "Mika") -> Who:
        resp = await self.client.post("/api/session", json={"nickname": nickname})
        assert resp.status_code == 201, resp.text
        body = resp.json()
        return Who(body["person"]["id"], body["token"], body["person"]["nickname"])

    async def producer(self, name: str = "alice", role: str = "producer") -> Who:
        add_staff(self.settings.database_url.get_secret_value(), name, role)
        resp = await self.client.post(
            "/api/auth/login", json={"username": name, "password": PASSWORD}
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        return Who(body["person"]["id"], body["token"], name)

    async def post(self, who: Who, text: str, **headers: str) -> httpx.Response:
        return await self.client.post(
            "/api/posts", json={"text": text}, headers={**who.headers, **headers}
        )


def add_staff(database_url: str, name: str, role: str = "producer") -> str:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "INSERT INTO people (nickname, role, password_hash) VALUES (%s, %s, %s) RETURNING id",
            (name, role, _HASH),
        ).fetchone()
    assert row is not None
    return str(row[0])


@contextlib.asynccontextmanager
async def running(settings: ApiSettings) -> AsyncIterator[Api]:
    """The app with its lifespan (pool, Redis, relay, worker, event hub) and an httpx client."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://radio24.test") as c:
            yield Api(app, c, settings)


@contextlib.asynccontextmanager
async def served(settings: ApiSettings) -> AsyncIterator[tuple[Api, str]]:
    """The app served by uvicorn on a free loopback port (for WebSockets); yields its base URL."""
    app = create_app(settings)
    port = rack.free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, lifespan="on", log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(20):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.02)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base) as client:
            yield Api(app, client, settings), base
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 20)


@pytest.fixture
def api_settings(database_url: str, redis_url: str, livekit_server: LiveKit) -> ApiSettings:
    return make_settings(database_url, redis_url, livekit_server)


@pytest.fixture
async def api(api_settings: ApiSettings) -> AsyncIterator[Api]:
    async with running(api_settings) as running_api:
        yield running_api


async def until(
    condition: Callable[[], bool | Awaitable[bool]], within: float = 10, step: float = 0.05
) -> None:
    """Wait until `condition()` holds (it may be async); TimeoutError after `within` s."""
    async with asyncio.timeout(within):
        while True:
            result = condition()
            if await result if inspect.isawaitable(result) else result:
                return
            await asyncio.sleep(step)
