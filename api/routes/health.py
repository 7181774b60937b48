"""Liveness and readiness: /healthz says the process is up, /readyz which of its parts answer.

/healthz touches no part, so it answers whatever is down. /readyz asks Postgres, Redis and
LiveKit at once, each bounded in time (a part that hangs is "down" after CHECK_SECONDS, it does
not hang the probe), and names each part that did not answer: 200 when all did, else 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import redis.asyncio as aioredis
from fastapi import APIRouter
from fastapi.responses import JSONResponse
from psycopg_pool import AsyncConnectionPool

from api.deps import PoolDep, RedisDep, SettingsDep
from api.errors import DB_DOWN
from api.settings import ApiSettings
from core.outage import within

router = APIRouter(tags=["operations"], responses=DB_DOWN)

CHECK_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _check_postgres(pool: AsyncConnectionPool) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        async with pool.connection(timeout=CHECK_SECONDS) as conn:
            await conn.execute("SELECT 1")

    return check


def _check_redis(redis: aioredis.Redis) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        await redis.ping()

    return check


def _check_livekit(settings: ApiSettings) -> Callable[[], Awaitable[None]]:
    async def check() -> None:
        url = settings.livekit_url.replace("ws://", "http://").replace("wss://", "https://")
        async with httpx.AsyncClient(timeout=CHECK_SECONDS) as client:
            (await client.get(url)).raise_for_status()

    return check


async def _state(check: Callable[[], Awaitable[None]]) -> str:
    try:
        await within(CHECK_SECONDS, check)
    except TimeoutError:
        return f"down: no answer in {CHECK_SECONDS:g} s"
    except Exception as exc:
        return f"down: {type(exc).__name__}"
    return "ok"


@router.get("/readyz")
async def readyz(settings: SettingsDep, pool: PoolDep, redis: RedisDep) -> JSONResponse:
    checks = {
        "postgres": _check_postgres(pool),
        "redis": _check_redis(redis),
        "livekit": _check_livekit(settings),
    }
    states = await asyncio.gather(*(_state(check) for check in checks.values()))
    parts = dict(zip(checks, states, strict=True))
    ready = all(v == "ok" for v in parts.values())
    return JSONResponse({"ready": ready, "parts": parts}, status_code=200 if ready else 503)
