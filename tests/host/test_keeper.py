"""The keeper against the real LiveKit and Redis: one acts at a time, the room gets long
timeouts, a host that stops beating is replaced at once, a host that beats is never touched, and
without Redis the keeper still keeps the room and the host (LiveKit presence alone)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis
from livekit import api as lkapi
from livekit import rtc
from pydantic import SecretStr

from api.keeper import ROOM_TIMEOUT_SECONDS, run_keeper
from contract.keys import Keys
from radio24 import rack
from tests.conftest import LiveKit

pytestmark = pytest.mark.integration


def _settings(livekit_server: LiveKit) -> SimpleNamespace:
    tag = secrets.token_hex(4)
    return SimpleNamespace(
        livekit_url=livekit_server.url,
        livekit_api_key=livekit_server.api_key,
        livekit_api_secret=SecretStr(livekit_server.api_secret),
        radio_room=f"keeper-{tag}",
        agent_name=f"nobody-{tag}",  # no worker takes it: only our stand-in host joins
        host_identity="host",
    )


def _api(livekit_server: LiveKit) -> lkapi.LiveKitAPI:
    return lkapi.LiveKitAPI(livekit_server.http_url, livekit_server.api_key,
                            livekit_server.api_secret)  # fmt: skip


class StandIn:
    """A participant with the host's identity (what the keeper watches), without the agent."""

    def __init__(self, room: rtc.Room) -> None:
        self.room = room
        self.left = asyncio.Event()
        self.reason: object = None

        def gone(reason: object = None) -> None:
            self.reason = reason
            self.left.set()

        room.on("disconnected", gone)

    async def leave(self) -> None:
        await self.room.disconnect()


async def _join_as_host(livekit_server: LiveKit, room: str) -> StandIn:
    token = (
        lkapi.AccessToken(livekit_server.api_key, livekit_server.api_secret)
        .with_identity("host")
        .with_grants(lkapi.VideoGrants(room_join=True, room=room))
        .to_jwt()
    )
    joined = rtc.Room()
    stand_in = StandIn(joined)
    await joined.connect(livekit_server.url, token)
    return stand_in


class Keepers:
    """Keeper tasks for one test, stopped (and their Redis clients closed) at the end."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.clients: list[aioredis.Redis] = []

    def start(self, settings: SimpleNamespace, redis_url: str, **kw: float) -> aioredis.Redis:
        client = aioredis.from_url(redis_url, socket_connect_timeout=1, socket_timeout=2)
        self.clients.append(client)
        self.tasks.append(asyncio.create_task(run_keeper(settings, client, self.stop, **kw)))
        return client

    async def close(self) -> None:
        self.stop.set()
        await asyncio.wait_for(asyncio.gather(*self.tasks), 15)
        for client in self.clients:
            await client.aclose()


@pytest.fixture
async def keepers() -> AsyncIterator[Keepers]:
    made = Keepers()
    try:
        yield made
    finally:
        await made.close()


async def _until(check: object, within: float, what: str) -> float:
    """Poll an async predicate; seconds it took."""
    started = time.monotonic()
    while not await check():  # type: ignore[operator]
        assert time.monotonic() - started < within, f"{what} not within {within} s"
        await asyncio.sleep(0.1)
    return time.monotonic() - started


async def _dispatches(api: lkapi.LiveKitAPI, settings: SimpleNamespace) -> list[str]:
    listed = await api.agent_dispatch.list_dispatch(settings.radio_room)
    return [d.id for d in listed if d.agent_name == settings.agent_name]


async def test_two_keepers_create_the_room_and_dispatch_once(
    livekit_server: LiveKit, redis_url: str, keepers: Keepers
) -> None:
    settings = _settings(livekit_server)
    first = keepers.start(settings, redis_url)
    keepers.start(settings, redis_url)
    api = _api(livekit_server)
    try:
        await asyncio.sleep(6)
        rooms = await api.room.list_rooms(lkapi.ListRoomsRequest(names=[settings.radio_room]))
        assert len(rooms.rooms) == 1
        assert rooms.rooms[0].empty_timeout == ROOM_TIMEOUT_SECONDS
        assert rooms.rooms[0].departure_timeout == ROOM_TIMEOUT_SECONDS
        assert len(await _dispatches(api, settings)) == 1
        lock = Keys(settings.radio_room).keeper_lock
        assert await first.get(lock) is not None
        await keepers.close()
        assert await first.get(lock) is None, "the lock is released on stop"
    finally:
        with contextlib.suppress(Exception):
            await api.room.delete_room(lkapi.DeleteRoomRequest(room=settings.radio_room))
        await api.aclose()


async def test_a_second_host_replaces_the_first_never_beside_it(livekit_server: LiveKit) -> None:
    """What "two hosts never speak at once" rests on, checked on our LiveKit (v1.13.5)."""
    settings = _settings(livekit_server)
    api = _api(livekit_server)
    first = await _join_as_host(livekit_server, settings.radio_room)
    second = await _join_as_host(livekit_server, settings.radio_room)
    try:
        await asyncio.wait_for(first.left.wait(), 10)
        listing = await api.room.list_participants(
            lkapi.ListParticipantsRequest(room=settings.radio_room)
        )
        assert [p.sid for p in listing.participants if p.identity == "host"] == [
            second.room.local_participant.sid
        ]
        assert first.reason == rtc.DisconnectReason.DUPLICATE_IDENTITY
        assert not second.left.is_set()
    finally:
        await second.leave()
        await first.leave()
        with contextlib.suppress(Exception):
            await api.room.delete_room(lkapi.DeleteRoomRequest(room=settings.radio_room))
        await api.aclose()


async def _beat(redis: aioredis.Redis, room: str, host: rtc.Room, stop: asyncio.Event) -> None:
    """What the host does: renew its heartbeat every second."""
    while not stop.is_set():
        value = json.dumps({"sid": host.local_participant.sid, "at": time.time()})
        await redis.set(Keys(room).heartbeat, value, px=3000)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 1)


async def test_a_host_that_stops_beating_is_replaced_at_once(
    livekit_server: LiveKit, redis_url: str, keepers: Keepers
) -> None:
    settings = _settings(livekit_server)
    api = _api(livekit_server)
    host = await _join_as_host(livekit_server, settings.radio_room)
    beating = asyncio.Event()
    redis = keepers.start(settings, redis_url)
    beat = asyncio.create_task(_beat(redis, settings.radio_room, host.room, beating))
    try:
        await asyncio.sleep(6)  # beating: kept, whatever LiveKit thinks of a silent participant
        assert not host.left.is_set(), "a host that beats was removed"
        before = await _dispatches(api, settings)

        beating.set()  # the job dies: the heartbeat lapses after 3 s
        stopped = time.monotonic()
        await asyncio.wait_for(host.left.wait(), 10)
        took = time.monotonic() - stopped
        assert took < 5, f"the keeper took {took:.1f} s to remove a host without a heartbeat"
        assert host.reason == rtc.DisconnectReason.PARTICIPANT_REMOVED

        async def dispatched_anew() -> bool:
            after = await _dispatches(api, settings)
            return bool(after) and after != before

        await _until(dispatched_anew, 3, "a new host dispatched with the removal")
    finally:
        beating.set()
        await beat
        await host.leave()
        with contextlib.suppress(Exception):
            await api.room.delete_room(lkapi.DeleteRoomRequest(room=settings.radio_room))
        await api.aclose()


async def test_without_redis_the_keeper_keeps_room_and_host_but_never_removes_one(
    livekit_server: LiveKit, parts_dir: Path, keepers: Keepers
) -> None:
    # A Redis of this test's own, to freeze and then kill.
    port = rack.free_port()
    proc = rack.popen(rack.redis(parts_dir / f"redis-{port}", port), parts_dir / "redis-k.log")
    rack.wait_port(port, 30, proc)
    settings = _settings(livekit_server)
    api = _api(livekit_server)
    host: StandIn | None = None

    async def room_exists() -> bool:
        rooms = await api.room.list_rooms(lkapi.ListRoomsRequest(names=[settings.radio_room]))
        return bool(rooms.rooms)

    async def kept() -> bool:
        """The room is there and a host dispatched into it (the keeper does one, then the
        other: a room seen between the two is not yet kept)."""
        if not await room_exists():
            return False
        try:
            return bool(await _dispatches(api, settings))
        except lkapi.TwirpError:  # the room is still being set up
            return False

    async def recreated_after_deletion(what: str) -> None:
        await api.room.delete_room(lkapi.DeleteRoomRequest(room=settings.radio_room))
        took = await _until(kept, 10, f"the room recreated, a host dispatched ({what})")
        assert took < 5, f"the room and its host took {took:.1f} s to come back ({what})"

    try:
        keepers.start(settings, f"redis://127.0.0.1:{port}/0")  # takes the lease
        await _until(room_exists, 10, "the station room")

        os.kill(proc.pid, signal.SIGSTOP)  # accepts connections, never answers
        host = await _join_as_host(livekit_server, settings.radio_room)  # never beats
        await asyncio.sleep(6)
        assert not host.left.is_set(), "a host was removed on a heartbeat Redis could not give"
        await recreated_after_deletion("Redis hanging")

        os.kill(proc.pid, signal.SIGCONT)
        rack.stop(proc)  # and now gone: the keeper that held the lease carries on
        await recreated_after_deletion("Redis down")
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, signal.SIGCONT)
        rack.stop(proc)
        if host is not None:
            await host.leave()
        with contextlib.suppress(Exception):
            await api.room.delete_room(lkapi.DeleteRoomRequest(room=settings.radio_room))
        await api.aclose()


async def test_a_standby_without_redis_takes_over_only_once_the_station_goes_unkept(
    livekit_server: LiveKit, keepers: Keepers
) -> None:
    """An API started while Redis is down never held the lease: it waits, then keeps."""
    settings = _settings(livekit_server)
    api = _api(livekit_server)
    nothing = f"redis://127.0.0.1:{rack.free_port()}/0"  # nothing listens there
    try:
        keepers.start(settings, nothing, standby_patience=3.0)

        async def room_exists() -> bool:
            rooms = await api.room.list_rooms(lkapi.ListRoomsRequest(names=[settings.radio_room]))
            return bool(rooms.rooms)

        await asyncio.sleep(2)
        assert not await room_exists(), "a standby acted before its patience ran out"
        await _until(room_exists, 6, "the standby creating the room")
        await _until(lambda: _has_dispatch(api, settings), 5, "the standby's dispatch")
    finally:
        with contextlib.suppress(Exception):
            await api.room.delete_room(lkapi.DeleteRoomRequest(room=settings.radio_room))
        await api.aclose()


async def _has_dispatch(api: lkapi.LiveKitAPI, settings: SimpleNamespace) -> bool:
    return bool(await _dispatches(api, settings))
