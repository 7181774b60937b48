"""The studio board: what the station is doing, for pages and the API, through Redis.

The host publishes live events on pub/sub `radio24:events` (JSON with a `type` of `segment`,
`floor` or `listeners`) and keeps the latest of each in the hash `radio24:state` (fields
`segment`, `next`, `floor`, `listeners`, each a JSON string), so a page that connects late still
sees the current state. It also renews `radio24:host:heartbeat:<room>` (JSON `{"sid", "at"}`,
expiring after 3 s) so the keeper can tell a live host from a dead one.

Live state is ephemeral and Redis may be down or hang: `show` and `prompts_status` never wait
for Redis. They leave the latest value of each kind for one writer task, which sends what is
pending in one round trip with a short timeout; an update that cannot be sent is dropped (the
next one carries the current state). The prompt status, which producers read, is kept until
it is written.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import redis.asyncio as aioredis

from core.outage import Outage, within

log = logging.getLogger("radio24.board")

EVENTS = "radio24:events"
STATE = "radio24:state"
PROMPTS_STATUS = "radio24:prompts:status"
# The keeper (api/keeper.py) reads what hosts write: the heartbeat of the host on air (agent/
# job.py renews it from a thread of its own) and each host worker's registration (a hash, "at").
HEARTBEAT_KEY = "radio24:host:heartbeat:{room}"
WORKER_KEY = "radio24:host:worker"


class Board:
    def __init__(self, redis: aioredis.Redis, *, timeout: float = 0.5) -> None:
        self._redis = redis
        self.timeout = timeout
        self._last: dict[str, str] = {}  # kind -> the event last written
        self._pending: dict[str, tuple[str, dict[str, str]]] = {}  # kind -> (event, fields)
        self._prompts: str | None = None
        self._writer: asyncio.Task[None] | None = None
        self._outage = Outage(
            log, "board: redis unavailable, live state dropped", "board: redis answers again"
        )

    async def show(
        self, kind: str, value: Any, *, state_fields: dict[str, Any] | None = None
    ) -> None:
        """Publish `{"type": kind, **value}` and store each state field; repeats are skipped."""
        fields = {k: json.dumps(v, ensure_ascii=False) for k, v in (state_fields or {}).items()}
        event = json.dumps({"type": kind, **value}, ensure_ascii=False)
        if kind not in self._pending and self._last.get(kind) == event:
            return
        self._pending[kind] = (event, fields)
        self._start()

    async def prompts_status(self, status: dict[str, Any]) -> None:
        self._prompts = json.dumps(status, ensure_ascii=False)
        self._start()

    async def written(self) -> None:
        """Return when everything shown so far was written or dropped (for tests, shutdown)."""
        while self._writer is not None and not self._writer.done():
            await asyncio.shield(self._writer)

    async def aclose(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)
            self._writer = None

    def _start(self) -> None:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="board")

    async def _write(self) -> None:
        while self._pending or self._prompts is not None:
            events, self._pending = self._pending, {}
            prompts, self._prompts = self._prompts, None

            sent = await self._outage.attempt(
                lambda e=events, p=prompts: within(self.timeout, lambda: self._send(e, p))
            )
            if sent:
                for kind, (event, _) in events.items():
                    self._last[kind] = event
                continue
            for kind in events:  # dropped: the next update of this kind is sent, even if equal
                self._last.pop(kind, None)
            if prompts is not None and self._prompts is None:
                self._prompts = prompts
            if self._prompts is not None:
                await asyncio.sleep(1.0)  # try the prompt status again shortly

    async def _send(
        self, events: dict[str, tuple[str, dict[str, str]]], prompts: str | None
    ) -> bool:
        async with self._redis.pipeline(transaction=False) as pipe:
            for event, fields in events.values():
                if fields:
                    pipe.hset(STATE, mapping=fields)
                pipe.publish(EVENTS, event)
            if prompts is not None:
                pipe.set(PROMPTS_STATUS, prompts)
            await pipe.execute()
        return True
