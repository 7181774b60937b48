"""Live events for pages: one subscription per API instance, fanned out to its WebSockets.

Events travel through the station's Redis pub/sub channel (`Keys.events`) as the JSON of
`contract.events` (`segment`, `floor`, `now_playing`, `listeners`, `post_status`), so any API
instance serves any client: the host publishes the station's state and airings, the API a
producer's decisions. Each instance has one subscription (`EventHub.run`, a task of its lifespan)
and fans out to its clients through a bounded queue per client: a slow or dead client loses its
connection (close code 1013), never delays the others. A connection lasts no longer than the
token that opened it (close code 4401 at its expiry): the page signs in again and reconnects. A
ban ends a listener's open connections on every instance (close code 4403): the API publishes an
internal `banned` event, which the hubs act on and never forward to a client.

The latest public state is kept in the station's hash `Keys.state` (`contract.events.
state_fields`, the same shape the host writes), so a new client starts from a snapshot
(`contract.events.snapshot`). The route that opens a connection is `api/routes/events.py`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from fastapi import WebSocket, WebSocketDisconnect

from api.metrics import Metrics
from contract.events import (
    PUBLIC,
    BannedEvent,
    Event,
    PostStatusEvent,
    dump,
    parse,
    snapshot,
    state_fields,
)
from contract.keys import Keys
from core.errors import REDIS_DOWN

if TYPE_CHECKING:
    from api.auth import Person

CLOSE_TOO_SLOW = 1013  # "try again later"
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403

log = logging.getLogger("radio24.api.events")


async def publish(redis: aioredis.Redis, channel: str, event: Event) -> bool:
    """Publish one event to every API instance; False (logged) when Redis is unreachable."""
    try:
        await redis.publish(channel, dump(event))
        return True
    except REDIS_DOWN as exc:  # best effort, like the doorbell (a post during a Redis kill was
        # a 500: uvloop's RuntimeError)
        log.warning("event not published", extra={"type": event.type, "error": repr(exc)})
        return False


def _raise_if_cancelled() -> None:
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


@dataclass(eq=False)
class Client:
    person_id: str
    staff: bool
    queue: asyncio.Queue[str]
    dropped: asyncio.Event = field(default_factory=asyncio.Event)
    banned: asyncio.Event = field(default_factory=asyncio.Event)

    def wants(self, event: Event) -> bool:
        if event.type in PUBLIC:
            return True
        if isinstance(event, PostStatusEvent):
            return self.staff or event.listener_id == self.person_id
        return False


class EventHub:
    def __init__(
        self,
        redis: aioredis.Redis,
        keys: Keys,
        metrics: Metrics,
        queue_size: int,
        send_timeout: float,
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.metrics = metrics
        self.queue_size = queue_size
        self.send_timeout = send_timeout
        self.clients: set[Client] = set()
        self.subscribed = asyncio.Event()  # set while the subscription is live

    # --- One subscription per instance ---------------------------------------------------

    async def run(self) -> None:
        """The hub's task: stay subscribed (reconnecting with backoff) until cancelled."""
        backoff = 0.1
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.keys.events)
                self.subscribed.set()
                backoff = 0.1
                while True:
                    message = await pubsub.get_message(timeout=0.5)
                    # redis-py may swallow a cancellation inside get_message: look each turn.
                    _raise_if_cancelled()
                    if message is not None and message["type"] == "message":
                        await self.dispatch(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                _raise_if_cancelled()  # redis-py can turn a cancellation into another error
                if self.subscribed.is_set():
                    log.warning("events: subscription lost", extra={"error": repr(exc)})
            finally:
                self.subscribed.clear()
                with contextlib.suppress(Exception):
                    await pubsub.aclose()
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    async def dispatch(self, raw: str | bytes) -> None:
        """Fan one event out to the clients it concerns (as it came); never waits for a client.
        A public event's values go to the state hash, in the shape the host writes them."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            event = parse(text)
        except ValueError:  # JSON or validation: not an event of the contract
            log.warning("events: message is not a known event, ignored")
            return
        if isinstance(event, BannedEvent):
            self.ban(event.listener_id)
            return
        for client in list(self.clients):
            if not client.wants(event):
                continue
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self._drop(client)
        fields = state_fields(event) if event.type in PUBLIC else {}
        if fields:
            with contextlib.suppress(*REDIS_DOWN):
                await self.redis.hset(self.keys.state, mapping=fields)  # type: ignore[arg-type]

    async def publish(self, event: Event) -> bool:
        """`publish` on this station's channel."""
        return await publish(self.redis, self.keys.events, event)

    def ban(self, person_id: str) -> None:
        """End this instance's connections of a banned listener (close code 4403)."""
        for client in list(self.clients):
            if client.person_id == person_id:
                client.banned.set()

    def _drop(self, client: Client) -> None:
        if not client.dropped.is_set():
            client.dropped.set()
            self.metrics.ws_dropped.inc()
            log.info("events: slow client dropped", extra={"person_id": client.person_id})

    async def snapshot(self) -> dict[str, Any]:
        """The public state now, as a page's first message (all None when Redis is away)."""
        try:
            state = await self.redis.hgetall(self.keys.state)
        except REDIS_DOWN:
            state = {}
        return snapshot(state).model_dump(mode="json")

    # --- One connection ------------------------------------------------------------------

    async def serve(self, ws: WebSocket, person: Person, expires_at: float | None = None) -> None:
        """Serve one accepted connection until the client leaves, falls behind, or `expires_at`
        (Unix seconds, the token's expiry) passes."""
        client = Client(str(person.id), person.staff, asyncio.Queue(self.queue_size))
        self.clients.add(client)  # before the snapshot, so nothing falls between the two
        self.metrics.ws_clients.set(len(self.clients))
        tasks: list[asyncio.Task[Any]] = []
        expiry: asyncio.Task[None] | None = None
        try:
            await asyncio.wait_for(
                ws.send_text(json.dumps(await self.snapshot())), self.send_timeout
            )
            tasks = [
                asyncio.create_task(self._send(ws, client)),
                asyncio.create_task(self._receive(ws)),
                asyncio.create_task(client.dropped.wait()),
                asyncio.create_task(client.banned.wait()),
            ]
            if expires_at is not None:
                expiry = asyncio.create_task(asyncio.sleep(max(0.0, expires_at - time.time())))
                tasks.append(expiry)
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        except (TimeoutError, WebSocketDisconnect, RuntimeError, OSError):
            self._drop(client)
        finally:
            for task in tasks:
                task.cancel()
            self.clients.discard(client)
            self.metrics.ws_clients.set(len(self.clients))
        if client.banned.is_set():
            log.info("events: banned listener disconnected", extra={"person_id": client.person_id})
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(CLOSE_FORBIDDEN, "banned"), 1.0)
        elif client.dropped.is_set():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(ws.close(CLOSE_TOO_SLOW, "too slow: reconnect"), 1.0)
        elif expiry is not None and expiry.done() and not expiry.cancelled():
            log.info(
                "events: token expired, connection closed", extra={"person_id": client.person_id}
            )
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    ws.close(CLOSE_UNAUTHORIZED, "token expired: sign in again"), 1.0
                )

    async def _send(self, ws: WebSocket, client: Client) -> None:
        while True:
            text = await client.queue.get()
            try:
                await asyncio.wait_for(ws.send_text(text), self.send_timeout)
            except TimeoutError:
                self._drop(client)
                return

    @staticmethod
    async def _receive(ws: WebSocket) -> None:
        """Read (and ignore) what the client sends, to notice when it goes away."""
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
