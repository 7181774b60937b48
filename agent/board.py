"""The studio board: what the station is doing, for pages and the API, through Redis.

The host publishes live events on pub/sub `radio24:events` (JSON with a `type` of `segment`,
`floor` or `listeners`) and keeps the latest of each in the hash `radio24:state` (fields
`segment`, `next`, `floor`, `listeners`, each a JSON string), so a page that connects late still
sees the current state. A Redis outage never stops the host: a failed write is logged and dropped.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import redis.asyncio as aioredis

log = logging.getLogger("radio24.board")

EVENTS = "radio24:events"
STATE = "radio24:state"
PROMPTS_STATUS = "radio24:prompts:status"


class Board:
    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self._last: dict[str, str] = {}

    async def show(
        self, kind: str, value: Any, *, state_fields: dict[str, Any] | None = None
    ) -> None:
        """Publish `{"type": kind, **value}` and store each state field; repeats are skipped."""
        fields = {k: json.dumps(v, ensure_ascii=False) for k, v in (state_fields or {}).items()}
        event = json.dumps({"type": kind, **value}, ensure_ascii=False)
        if self._last.get(kind) == event:
            return
        try:
            if fields:
                await self._redis.hset(STATE, mapping=fields)
            await self._redis.publish(EVENTS, event)
            self._last[kind] = event
        except (aioredis.RedisError, OSError):
            log.warning("could not publish to the board", extra={"kind": kind}, exc_info=True)

    async def prompts_status(self, status: dict[str, Any]) -> None:
        try:
            await self._redis.set(PROMPTS_STATUS, json.dumps(status, ensure_ascii=False))
        except (aioredis.RedisError, OSError):
            log.warning("could not store the prompts status", exc_info=True)
