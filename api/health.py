"""Liveness and readiness: /healthz says the process is up, /readyz which of its parts answer.

/healthz touches no part, so it answers whatever is down. /readyz asks Postgres, Redis and
LiveKit at once, each bounded in time (a part that hangs is "down" after CHECK_SECONDS, it does
not hang the probe), and names each part that did not answer: 200 when all did, else 503.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.state import Station, StationDep
from core.outage import within

router = APIRouter(tags=["operations"])

CHECK_SECONDS = 2.0


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check_postgres(station: Station) -> None:
    async with station.pool.connection(timeout=CHECK_SECONDS) as conn:
        await conn.execute("SELECT 1")


async def _check_redis(station: Station) -> None:
    await station.redis.ping()


async def _check_livekit(station: Station) -> None:
    url = station.settings.livekit_url.replace("ws://", "http://").replace("wss://", "https://")
    async with httpx.AsyncClient(timeout=CHECK_SECONDS) as client:
        (await client.get(url)).raise_for_status()


CHECKS: dict[str, Callable[[Station], Awaitable[None]]] = {
    "postgres": _check_postgres,
    "redis": _check_redis,
    "livekit": _check_livekit,
}


async def _state(check: Callable[[Station], Awaitable[None]], station: Station) -> str:
    try:
        await within(CHECK_SECONDS, lambda: check(station))
    except TimeoutError:
        return f"down: no answer in {CHECK_SECONDS:g} s"
    except Exception as exc:
        return f"down: {type(exc).__name__}"
    return "ok"


@router.get("/readyz")
async def readyz(station: StationDep) -> JSONResponse:
    states = await asyncio.gather(*(_state(check, station) for check in CHECKS.values()))
    parts = dict(zip(CHECKS, states, strict=True))
    ready = all(v == "ok" for v in parts.values())
    return JSONResponse({"ready": ready, "parts": parts}, status_code=200 if ready else 503)
