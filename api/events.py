"""Live events for pages: `WS /api/ws` pushes the segment, the floor, the listener count and the
status changes of the listener's own posts.

Events travel through the Redis pub/sub channel `radio24:events` as JSON objects with a `type`
(`segment`, `floor`, `listeners`, `post_status`), so any API instance serves any client: the host
publishes the station's state and airings, the API a producer's decisions. Each instance has one
subscription (a task of its lifespan) and fans out to its clients through a bounded queue per
client: a slow or dead client loses its connection (close code 1013), never delays the others.
A connection lasts no longer than the token that opened it (close code 4401 at its expiry): the
page signs in again and reconnects. A ban ends a listener's open connections on every instance
(close code 4403): the API publishes an internal `banned` event, which the hubs act on and never
forward to a client.

The latest public state is kept in the Redis hash `radio24:state` (fields `segment`, `next`,
`floor`, `listeners`, each a JSON string), so a new client starts from a snapshot.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import jwt
import redis.asyncio as aioredis
from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from redis.exceptions import RedisError

from api.metrics import Metrics

if TYPE_CHECKING:
    from api.auth import Person
    from api.state import Station

EVENTS = "radio24:events"
STATE = "radio24:state"
PUBLIC = ("segment", "floor", "listeners")
BANNED = "banned"  # internal: the hubs close that listener's sockets; never sent to a client
STATE_FIELDS = ("segment", "next", "floor", "listeners")
CLOSE_TOO_SLOW = 1013  # "try again later"
CLOSE_UNAUTHORIZED = 4401
CLOSE_FORBIDDEN = 4403

# What a Redis call raises when Redis is down or dying: besides redis-py's own errors, uvloop
# raises RuntimeError on a connection Redis closed as it died (seen in the fault suite).
REDIS_DOWN: tuple[type[Exception], ...] = (RedisError, OSError, RuntimeError)

log = logging.getLogger("radio24.api.events")
router = APIRouter(prefix="/api", tags=["events"])


async def publish(redis: aioredis.Redis, message: dict[str, Any]) -> bool:
    """Publish one event to every API instance; False (logged) when Redis is unreachable."""
    try:
        await redis.publish(EVENTS, json.dumps(message, default=str))
        return True
    except REDIS_DOWN as exc:  # best effort, like the doorbell (a post during a Redis kill was
        # a 500: uvloop's RuntimeError)
        log.warning("event not published", extra={"type": message.get("type"), "error": repr(exc)})
        return False


def post_status_event(post_id: object, listener_id: object, status: str) -> dict[str, Any]:
    return {
        "type": "post_status",
        "post_id": str(post_id),
        "listener_id": str(listener_id),
        "status": status,
    }


def banned_event(listener_id: object) -> dict[str, Any]:
    return {"type": BANNED, "listener_id": str(listener_id)}


def state_fields(message: dict[str, Any]) -> dict[str, str]:
    """What a public event changes in `radio24:state`: the value under the event's own type
    when it has one (`{"type": "floor", "floor": {...}}`), else the event without `type`;
    a segment event may also carry `next`."""
    kind = message["type"]
    body = {k: v for k, v in message.items() if k != "type"}
    value = body.pop(kind) if kind in body else body
    fields = {kind: json.dumps(value)}
    if kind == "segment" and "next" in body:
        fields["next"] = json.dumps(body["next"])
    return fields


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

    def wants(self, message: dict[str, Any]) -> bool:
        kind = message.get("type")
        if kind in PUBLIC:
            return True
        if kind == "post_status":
            return self.staff or message.get("listener_id") == self.person_id
        return False


class EventHub:
    def __init__(
        self, redis: aioredis.Redis, metrics: Metrics, queue_size: int, send_timeout: float
    ) -> None:
        self.redis = redis
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
                await pubsub.subscribe(EVENTS)
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
        """Fan one event out to the clients it concerns; never waits for a client."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        try:
            message = json.loads(text)
        except ValueError:
            log.warning("events: message is not JSON, ignored")
            return
        if not isinstance(message, dict) or not isinstance(message.get("type"), str):
            return
        if message["type"] == BANNED:
            self.ban(str(message.get("listener_id")))
            return
        for client in list(self.clients):
            if not client.wants(message):
                continue
            try:
                client.queue.put_nowait(text)
            except asyncio.QueueFull:
                self._drop(client)
        if message["type"] in PUBLIC:
            with contextlib.suppress(*REDIS_DOWN):
                await self.redis.hset(STATE, mapping=state_fields(message))

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
        try:
            raw = await self.redis.hgetall(STATE)
        except REDIS_DOWN:
            raw = {}
        state: dict[str, Any] = {"type": "snapshot"}
        for name in STATE_FIELDS:
            try:
                state[name] = json.loads(raw[name]) if name in raw else None
            except ValueError:
                state[name] = None
        return state

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


@router.websocket("/ws")
async def events(ws: WebSocket, ticket: str | None = None) -> None:
    """Live events. Authenticate with `?ticket=` (one-time, from `POST /api/ws/ticket`: browsers
    cannot set headers on a WebSocket) or an `Authorization: Bearer` header. An API token in
    the URL is refused: URLs end up in logs. The first message is a snapshot of the public
    state."""
    import uuid

    from api.auth import person_by_id, person_for_token, read_claims
    from api.tokens import redeem_ticket

    station: Station = ws.app.state.station
    header = ws.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    await ws.accept()
    secret = station.settings.api_jwt_secret.get_secret_value()
    try:
        if "token" in ws.query_params:
            raise HTTPException(401, "send a ticket from POST /api/ws/ticket, not the token")
        if token:
            person = await person_for_token(station, token)
            # Valid a moment ago; it may expire in between, which is the same answer.
            expires_at = float(read_claims(secret, token)["exp"])
        else:
            try:
                redeemed = await redeem_ticket(station.redis, ticket or "")
            except REDIS_DOWN:
                redeemed = None
            if redeemed is None:
                raise HTTPException(401, "ticket unknown, used or expired: ask for a new one")
            person_id, expires_at = redeemed
            person = await person_by_id(station, uuid.UUID(person_id))
    except HTTPException as exc:
        code = CLOSE_FORBIDDEN if exc.status_code == 403 else CLOSE_UNAUTHORIZED
        await ws.close(code, str(exc.detail))
        return
    except jwt.InvalidTokenError:
        await ws.close(CLOSE_UNAUTHORIZED, "token expired: sign in again")
        return
    await station.hub.serve(ws, person, expires_at)
