"""The keeper: one acts at a time, the room gets long timeouts, the host is dispatched once."""

from __future__ import annotations

import asyncio
import secrets
from types import SimpleNamespace

import pytest
import redis.asyncio as aioredis
from livekit import api as lkapi
from pydantic import SecretStr

from api.keeper import LOCK_KEY, ROOM_TIMEOUT_SECONDS, run_keeper
from tests.conftest import LiveKit

pytestmark = pytest.mark.integration


async def test_two_keepers_create_the_room_and_dispatch_once(
    livekit_server: LiveKit, redis_url: str
) -> None:
    tag = secrets.token_hex(4)
    settings = SimpleNamespace(
        livekit_url=livekit_server.url,
        livekit_api_key=livekit_server.api_key,
        livekit_api_secret=SecretStr(livekit_server.api_secret),
        radio_room=f"keeper-{tag}",
        agent_name=f"nobody-{tag}",  # no worker takes it: the host never shows up
        host_identity="host",
    )
    stop = asyncio.Event()
    clients = [aioredis.from_url(redis_url) for _ in range(2)]
    keepers = [asyncio.create_task(run_keeper(settings, c, stop)) for c in clients]
    api = lkapi.LiveKitAPI(livekit_server.http_url, livekit_server.api_key,
                           livekit_server.api_secret)  # fmt: skip
    try:
        await asyncio.sleep(6)
        rooms = await api.room.list_rooms(lkapi.ListRoomsRequest(names=[settings.radio_room]))
        assert len(rooms.rooms) == 1
        assert rooms.rooms[0].empty_timeout == ROOM_TIMEOUT_SECONDS
        assert rooms.rooms[0].departure_timeout == ROOM_TIMEOUT_SECONDS
        dispatches = await api.agent_dispatch.list_dispatch(settings.radio_room)
        ours = [d for d in dispatches if d.agent_name == settings.agent_name]
        assert len(ours) == 1, dispatches
        assert await clients[0].get(LOCK_KEY) is not None
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*keepers), 15)
        assert await clients[0].get(LOCK_KEY) is None, "the lock is released on stop"
        for c in clients:
            await c.aclose()
        await api.room.delete_room(lkapi.DeleteRoomRequest(room=settings.radio_room))
        await api.aclose()
