"""The studio board: what the station is doing, for pages and the API, through Redis.

The host publishes live events (`contract.events`: segment, floor, now playing, listeners) on
the pub/sub channel `Keys.events` and keeps the latest of each in the hash `Keys.state` (one
JSON value per state field), so a page that connects late still sees the current state. The
producers' files' verdict (`contract.events.PromptsStatus`) is kept in `Keys.prompts_status`.

Live state is ephemeral and Redis may be down or hang: `show` and `prompts_status` never wait
for Redis. They leave the latest value of each kind for one writer task, which sends what is
pending in one round trip with a short timeout; an update that cannot be sent is dropped (the
next one carries the current state). The prompt status, which producers read, is kept until
it is written.
"""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from contract.events import Event, PromptsStatus, dump, state_fields
from contract.keys import Keys
from core.outage import Outage, within

log = logging.getLogger("radio24.board")


class Board:
    def __init__(self, redis: aioredis.Redis, keys: Keys, *, timeout: float = 0.5) -> None:
        self._redis = redis
        self._keys = keys
        self.timeout = timeout
        self._last: dict[str, str] = {}  # kind -> the event last written
        self._pending: dict[str, tuple[str, dict[str, str]]] = {}  # kind -> (event, fields)
        self._prompts: str | None = None
        self._writer: asyncio.Task[None] | None = None
        self._outage = Outage(
            log, "board: redis unavailable, live state dropped", "board: redis answers again"
        )

    async def show(self, event: Event) -> None:
        """Publish the event and store its state fields; repeats are skipped."""
        kind, text = event.type, dump(event)
        if kind not in self._pending and self._last.get(kind) == text:
            return
        self._pending[kind] = (text, state_fields(event))
        self._start()

    async def prompts_status(self, status: PromptsStatus) -> None:
        self._prompts = status.model_dump_json()
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

            async def send(
                e: dict[str, tuple[str, dict[str, str]]] = events, p: str | None = prompts
            ) -> bool:
                return await within(self.timeout, lambda: self._send(e, p))

            sent = await self._outage.attempt(send)
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
                    pipe.hset(self._keys.state, mapping=fields)  # type: ignore[arg-type]
                pipe.publish(self._keys.events, event)
            if prompts is not None:
                pipe.set(self._keys.prompts_status, prompts)
            await pipe.execute()
        return True
