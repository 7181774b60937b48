"""The display sends pages the station's state off the caller's path: an attribute update that
hangs at the SFU (seen taking 3 s) holds up neither a grant nor the on-air loop, and what is
sent once it answers is the latest state, not every step in between."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis

from agent.board import Board
from agent.display import FLOOR_ATTRIBUTE, NOW_PLAYING_ATTRIBUTE, Display
from agent.floor import FloorState


class SlowParticipant:
    """LiveKit's local participant, as far as the display uses it: `set_attributes` waits until
    the test lets the SFU answer."""

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []
        self.answer = asyncio.Event()
        self.fail = 0  # the next this many updates fail

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        self.sent.append(dict(attributes))
        await self.answer.wait()
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the SFU did not take it")


async def test_a_hanging_attribute_update_holds_nothing_up_and_the_latest_state_wins() -> None:
    me = SlowParticipant()
    room: Any = SimpleNamespace(local_participant=me, remote_participants={})
    redis = aioredis.Redis(port=1, socket_connect_timeout=0.05)  # nothing listens: dropped
    display = Display(room, Board(redis, timeout=0.05))
    held = FloorState(holder="caller-1", deadline=None)
    free = FloorState(holder=None, deadline=None)

    await asyncio.wait_for(display.floor(held), 0.5)  # returns while the SFU has not answered
    await asyncio.sleep(0.05)
    assert [json.loads(a[FLOOR_ATTRIBUTE])["holder"] for a in me.sent] == ["caller-1"]
    await asyncio.wait_for(display.floor(free), 0.5)
    await asyncio.wait_for(display.floor(held), 0.5)
    await asyncio.wait_for(display.now_playing(None), 0.5)
    await asyncio.wait_for(display.floor(free), 0.5)
    assert len(me.sent) == 1  # one update in flight at a time

    me.answer.set()
    await asyncio.wait_for(display.sent(), 1.0)
    assert len(me.sent) == 2
    assert json.loads(me.sent[1][FLOOR_ATTRIBUTE])["holder"] is None  # the latest, once
    assert json.loads(me.sent[1][NOW_PLAYING_ATTRIBUTE]) is None

    await display.floor(free)  # pages have it: nothing to send
    await display.sent()
    assert len(me.sent) == 2

    me.fail = 1  # a failed update goes again, so pages do not keep a stale floor
    await display.floor(held)
    await asyncio.wait_for(display.sent(), 3.0)
    assert [json.loads(a[FLOOR_ATTRIBUTE])["state"] for a in me.sent[2:]] == ["held", "held"]
    await display.aclose()
    await redis.aclose()
