"""Liveness and readiness: /healthz says the process is up, /readyz that its parts answer."""

from __future__ import annotations

import asyncio

import httpx
from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.state import StationDep

router = APIRouter(tags=["operations"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


async def _check_postgres(station: StationDep) -> None:
    async with station.pool.connection(timeout=2) as conn:
        await conn.execute("SELECT 1")


async def _check_redis(station: StationDep) -> None:
    await station.redis.ping()


async def _check_livekit(station: StationDep) -> None:
    url = station.settings.livekit_url.replace("ws://", "http://").replace("wss://", "https://")
    async with httpx.AsyncClient(timeout=2) as client:
        (await client.get(url)).raise_for_status()


@router.get("/readyz")
async def readyz(station: StationDep) -> JSONResponse:
    checks = {"postgres": _check_postgres, "redis": _check_redis, "livekit": _check_livekit}
    results = await asyncio.gather(
        *(asyncio.wait_for(check(station), 3) for check in checks.values()), return_exceptions=True
    )
    parts = {
        name: "ok" if not isinstance(res, BaseException) else f"down: {type(res).__name__}"
        for name, res in zip(checks, results, strict=True)
    }
    ready = all(v == "ok" for v in parts.values())
    return JSONResponse({"ready": ready, "parts": parts}, status_code=200 if ready else 503)
