"""What the API holds open for its lifetime: one Postgres pool, one Redis client, settings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import Depends, Request
from psycopg_pool import AsyncConnectionPool

from api.settings import ApiSettings


@dataclass
class Station:
    settings: ApiSettings
    pool: AsyncConnectionPool
    redis: aioredis.Redis

    @classmethod
    @asynccontextmanager
    async def open(cls, settings: ApiSettings) -> AsyncIterator[Station]:
        pool = AsyncConnectionPool(
            settings.database_url.get_secret_value(), min_size=1, max_size=10, open=False
        )
        await pool.open(wait=False)
        client = aioredis.from_url(settings.redis_url, decode_responses=True)
        try:
            yield cls(settings=settings, pool=pool, redis=client)
        finally:
            await client.aclose()
            await pool.close()


def _station(request: Request) -> Station:
    return request.app.state.station  # type: ignore[no-any-return]


StationDep = Annotated[Station, Depends(_station)]
