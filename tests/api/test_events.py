"""Live events over WebSocket, through Redis pub/sub, served by a real uvicorn on loopback."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
import redis.asyncio as aioredis
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from agent.on_air.display import Display
from agent.store.board import Board
from api.auth import Person, issue_token
from contract.keys import Keys
from tests.api.conftest import ROOM, Api, Who, make_settings, served, until
from tests.conftest import LiveKit
from tests.fakes.room import FakeRoom

pytestmark = pytest.mark.integration


def ws_connect(base: str, who: Who | None) -> Any:
    """The live-event socket as a non-browser client opens it: the token in a header (pages
    use a one-time ticket: tests/security/test_tokens_in_logs.py)."""
    url = base.replace("http://", "ws://") + "/api/ws"
    return connect(url, additional_headers=who.headers if who else {})


async def next_json(ws: ClientConnection, wait: float = 5) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), wait))  # type: ignore[no-any-return]


async def publish(redis_url: str, *messages: dict[str, Any]) -> None:
    client = aioredis.from_url(redis_url)
    try:
        for m in messages:
            await client.publish(Keys(ROOM).events, json.dumps(m))
    finally:
        await client.aclose()


async def until_subscribed(*apis: Api) -> None:
    async with asyncio.timeout(10):
        for api in apis:
            await api.station.hub.subscribed.wait()


async def test_ws_refuses_a_missing_or_bad_token_and_a_banned_listener(
    api_settings: Any,
) -> None:
    async with served(api_settings) as (api, base):
        for who in (None, Who("x", "not-a-token", "x")):
            async with ws_connect(base, who) as ws:
                with pytest.raises(ConnectionClosed):
                    await next_json(ws)
                assert ws.close_code == 4401
        producer, troll = await api.producer(), await api.listener("Troll")
        await api.client.post(f"/api/listeners/{troll.id}/ban", json={}, headers=producer.headers)
        async with ws_connect(base, troll) as ws:
            with pytest.raises(ConnectionClosed):
                await next_json(ws)
            assert ws.close_code == 4403


async def test_ws_closes_with_4401_when_its_token_expires(api_settings: Any) -> None:
    async with served(api_settings) as (api, base):
        listener = await api.listener("Brief")
        person = Person(uuid.UUID(listener.id), listener.nickname, "listener")
        secret = api.settings.api_jwt_secret.get_secret_value()
        token, expires = issue_token(secret, person, ttl=2)
        async with ws_connect(base, Who(listener.id, token, listener.nickname)) as ws:
            assert (await next_json(ws))["type"] == "snapshot"
            with pytest.raises(ConnectionClosed):
                await next_json(ws, wait=6)
            closed_at = time.time()
            assert ws.close_code == 4401
            assert ws.close_reason == "token expired: sign in again"
        assert expires <= closed_at < expires + 2
        # The listener's long-lived token still holds its connection open past that moment.
        async with ws_connect(base, listener) as ws:
            assert (await next_json(ws))["type"] == "snapshot"
            with pytest.raises(TimeoutError):
                await next_json(ws, wait=0.5)
            assert ws.close_code is None
        await until(lambda: not api.station.hub.clients)


async def test_snapshot_public_state_and_only_your_own_post_status(
    api_settings: Any, redis_url: str
) -> None:
    async with served(api_settings) as (api, base):
        me, other, producer = (
            await api.listener("Me"),
            await api.listener("Other"),
            await api.producer(),
        )
        await until_subscribed(api)
        segment = {  # as the host publishes it (contract.events.SegmentEvent)
            "type": "segment",
            "segment": {
                "id": "morning",
                "title": "Morning",
                "starts": "2026-01-05T06:00:00+09:00",
                "ends": "2026-01-05T10:00:00+09:00",
            },
            "next": {"id": "noon", "title": "Noon", "starts": "2026-01-05T10:00:00+09:00"},
        }
        await publish(redis_url, segment)
        # The hub keeps the latest state for newcomers.
        await until(lambda: api.station.redis.hget(Keys(ROOM).state, "segment"), 5)

        async with (
            ws_connect(base, me) as mine,
            ws_connect(base, other) as theirs,
            ws_connect(base, producer) as staff,
        ):
            for ws in (mine, theirs, staff):
                snap = await next_json(ws)
                assert snap["type"] == "snapshot"
                assert snap["segment"] == segment["segment"]
                assert snap["next"] == segment["next"]
                assert snap["floor"] is None
            floor = {"type": "floor", "floor": {"state": "held", "holder": other.id}}
            aired = {
                "type": "post_status",
                "post_id": "p1",
                "listener_id": me.id,
                "status": "aired",
            }
            await publish(redis_url, aired, floor)
            assert await next_json(mine) == aired
            assert await next_json(mine) == floor
            assert await next_json(theirs) == floor  # not someone else's post status
            assert await next_json(staff) == aired  # producers see every post's status
            assert await next_json(staff) == floor
            # A post made through the API reports itself to its author's socket.
            post = (await api.post(me, "hello live")).json()
            assert await next_json(mine) == {
                "type": "post_status",
                "post_id": post["id"],
                "listener_id": me.id,
                "status": "queued",
            }
            with pytest.raises(TimeoutError):
                await next_json(theirs, wait=0.5)


async def test_a_pages_snapshot_shows_the_listener_count_the_host_published(
    api_settings: Any, redis_url: str
) -> None:
    """The host's own display and board (agent/) publish the count; the API's real hub keeps
    it; a page that connects later reads that number in its snapshot, and a page already
    connected gets the event as the contract shapes it (the count once drifted into
    '{"count": 3}' in the hub's state)."""
    async with served(api_settings) as (api, base):
        early, late = await api.listener("Early"), await api.listener("Late")
        await until_subscribed(api)
        host_redis = aioredis.from_url(redis_url)
        board = Board(host_redis, Keys(ROOM))
        display = Display(FakeRoom(), board)  # type: ignore[arg-type]
        try:
            async with ws_connect(base, early) as ws:
                assert (await next_json(ws))["listeners"] is None
                await display.listeners(3)
                await board.written()
                assert await next_json(ws) == {"type": "listeners", "count": 3}
            await until(lambda: api.station.redis.hget(Keys(ROOM).state, "listeners"), 5)
            async with ws_connect(base, late) as ws:
                snap = await next_json(ws)
                assert snap["type"] == "snapshot"
                assert snap["listeners"] == 3
        finally:
            await display.aclose()
            await board.aclose()
            await host_redis.aclose()


async def test_events_reach_clients_of_another_api_instance(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    settings = make_settings(database_url, redis_url, livekit_server)
    async with served(settings) as (one, _), served(settings) as (two, base_two):
        producer, listener = await one.producer(), await one.listener()
        post = (await one.post(listener, "please hide me? no")).json()
        await until_subscribed(one, two)
        async with ws_connect(base_two, listener) as ws:
            assert (await next_json(ws))["type"] == "snapshot"
            resp = await one.client.patch(
                f"/api/posts/{post['id']}", json={"action": "hide"}, headers=producer.headers
            )
            assert resp.status_code == 200
            assert await next_json(ws) == {
                "type": "post_status",
                "post_id": post["id"],
                "listener_id": listener.id,
                "status": "hidden",
            }


async def test_a_ban_closes_the_listeners_open_sockets_on_every_instance(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    settings = make_settings(database_url, redis_url, livekit_server)
    async with served(settings) as (one, base_one), served(settings) as (two, base_two):
        producer, troll, bystander = (
            await one.producer(),
            await one.listener("Troll"),
            await one.listener("Bystander"),
        )
        await until_subscribed(one, two)
        async with (
            ws_connect(base_one, troll) as here,
            ws_connect(base_two, troll) as there,
            ws_connect(base_two, bystander) as other,
            ws_connect(base_one, producer) as staff,
        ):
            for ws in (here, there, other, staff):
                assert (await next_json(ws))["type"] == "snapshot"
            resp = await one.client.post(
                f"/api/listeners/{troll.id}/ban", json={}, headers=producer.headers
            )
            assert resp.status_code == 200, resp.text
            for ws in (here, there):  # the instance that banned, and the other one
                with pytest.raises(ConnectionClosed):
                    await next_json(ws, wait=2)
                assert ws.close_code == 4403
            # Nobody else is disconnected, and the internal event reaches no page.
            for ws in (other, staff):
                with pytest.raises(TimeoutError):
                    await next_json(ws, wait=0.5)
                assert ws.close_code is None
        await until(lambda: not one.station.hub.clients and not two.station.hub.clients)


class FakeSocket:
    """The server side of one client's socket; a stalled one never finishes a send after the
    snapshot, like a client whose network went away without closing."""

    def __init__(self, stalled: bool) -> None:
        self.stalled = stalled
        self.received: list[dict[str, Any]] = []
        self.close_code: int | None = None

    async def send_text(self, text: str) -> None:
        if self.stalled and self.received:
            await asyncio.Event().wait()
        self.received.append(json.loads(text))

    async def receive(self) -> dict[str, Any]:
        await asyncio.Event().wait()  # the client says nothing
        raise AssertionError

    async def close(self, code: int, reason: str = "") -> None:
        self.close_code = code


@pytest.mark.parametrize(
    ("queue_size", "send_timeout"), [(8, 60.0), (10_000, 0.3)], ids=["queue full", "send timeout"]
)
async def test_a_slow_client_is_dropped_and_never_delays_the_others(
    database_url: str,
    redis_url: str,
    livekit_server: LiveKit,
    queue_size: int,
    send_timeout: float,
) -> None:
    from tests.api.conftest import running

    settings = make_settings(
        database_url,
        redis_url,
        livekit_server,
        api_ws_queue_size=queue_size,
        api_ws_send_timeout_seconds=send_timeout,
    )
    count = 200
    async with running(settings) as api:
        fast_who, slow_who = await api.listener("Fast"), await api.listener("Slow")
        await until_subscribed(api)
        hub = api.station.hub
        fast, slow = FakeSocket(stalled=False), FakeSocket(stalled=True)
        serving = [
            asyncio.create_task(hub.serve(ws, Person(uuid.UUID(w.id), w.nickname, "listener")))  # type: ignore[arg-type]
            for ws, w in ((slow, slow_who), (fast, fast_who))
        ]
        await until(lambda: len(hub.clients) == 2, 5)
        await publish(redis_url, *({"type": "listeners", "count": i} for i in range(count)))
        # Promptly, whatever the stalled client does.
        await until(lambda: len(fast.received) == count + 1, 5)
        assert [m.get("count") for m in fast.received[1:]] == list(range(count))
        async with asyncio.timeout(5):
            await serving[0]  # the stalled client's connection ended...
        assert slow.close_code == 1013  # ...with "try again later"
        assert len(hub.clients) == 1
        assert "radio24_ws_dropped_total 1.0" in (await api.client.get("/metrics")).text
        serving[1].cancel()
