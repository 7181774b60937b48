"""The display sends pages the station's state off the caller's path: an attribute update whose
answer is late (the SDK waits 5 s for it now and then) holds up neither a grant, nor the on-air
loop, nor the next update for long, and what is sent next is the latest state, not every step in
between."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import redis.asyncio as aioredis

from agent.call_in.floor import FloorState
from agent.on_air.display import Display
from agent.store.board import Board
from contract.keys import Keys
from contract.room import ATTR_FLOOR as FLOOR_ATTRIBUTE
from contract.room import ATTR_NOW_PLAYING as NOW_PLAYING_ATTRIBUTE


class SlowParticipant:
    """LiveKit's local participant, as far as the display uses it: `set_attributes` waits until
    the test lets the SFU answer."""

    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []
        self.answer = asyncio.Event()
        self.fail = 0  # the next this many updates fail
        self.cancelled = 0

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        self.sent.append(dict(attributes))
        try:
            await self.answer.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        if self.fail:
            self.fail -= 1
            raise RuntimeError("the SFU did not take it")


def _display(me: SlowParticipant) -> tuple[Display, aioredis.Redis]:
    room: Any = SimpleNamespace(local_participant=me, remote_participants={})
    redis = aioredis.Redis(port=1, socket_connect_timeout=0.05)  # nothing listens: dropped
    return Display(room, Board(redis, Keys("radio24"), timeout=0.05), patience=0.2), redis


HELD = FloorState(holder="caller-1", deadline=None)
FREE = FloorState(holder=None, deadline=None)


def _holders(sent: list[dict[str, str]]) -> list[object]:
    return [json.loads(a[FLOOR_ATTRIBUTE])["holder"] for a in sent if FLOOR_ATTRIBUTE in a]


async def test_an_update_whose_answer_never_comes_holds_nothing_up_and_the_latest_state_wins() -> (
    None
):
    me = SlowParticipant()
    display, redis = _display(me)

    await asyncio.wait_for(display.floor(HELD), 0.1)  # returns while the SFU has not answered
    await asyncio.sleep(0.05)
    assert _holders(me.sent) == ["caller-1"]
    await asyncio.wait_for(display.floor(FREE), 0.1)
    await asyncio.wait_for(display.floor(HELD), 0.1)
    await asyncio.wait_for(display.now_playing(None), 0.1)
    await asyncio.wait_for(display.floor(FREE), 0.1)
    assert len(me.sent) == 1  # the next update waits a little for the SDK's answer

    # The answer never comes (the SDK waits 5 s for it now and then): after the display's
    # patience the latest values go anyway, once.
    await asyncio.wait_for(display.sent(), 1.0)
    assert len(me.sent) == 2
    assert _holders(me.sent) == ["caller-1", None]
    assert json.loads(me.sent[1][NOW_PLAYING_ATTRIBUTE]) is None

    await display.floor(FREE)  # pages have it (or will): nothing to send
    await display.sent()
    assert len(me.sent) == 2
    await display.aclose()  # the calls the SDK never answered end with the display
    assert me.cancelled == 2
    await redis.aclose()


async def test_a_state_repeated_while_its_change_is_in_flight_is_sent_again() -> None:
    """held → free (in flight) → held: the last held must go out, though pages had a held
    before. The display once compared with what was last confirmed and dropped it, leaving
    pages on free while a caller held the floor."""
    me = SlowParticipant()
    display, redis = _display(me)
    me.answer.set()
    await display.floor(HELD)
    await display.sent()
    me.answer.clear()
    await display.floor(FREE)  # its answer is late
    await asyncio.sleep(0.05)
    await display.floor(HELD)
    me.answer.set()
    await asyncio.wait_for(display.sent(), 1.0)
    assert _holders(me.sent) == ["caller-1", None, "caller-1"]
    await display.aclose()
    await redis.aclose()


async def test_a_failed_update_goes_again_unless_a_newer_one_is_due() -> None:
    me = SlowParticipant()
    display, redis = _display(me)
    me.answer.set()
    me.fail = 1  # a failed update goes again, so pages do not keep a stale floor
    await display.floor(HELD)
    await asyncio.wait_for(display.sent(), 3.0)
    assert _holders(me.sent) == ["caller-1", "caller-1"]

    # A late answer that turns out to be a failure: sent again too, while it is the latest.
    me.answer.clear()
    me.fail = 1
    await display.floor(FREE)
    await asyncio.wait_for(display.sent(), 1.0)  # moved on after its patience
    me.answer.set()
    await asyncio.sleep(0.05)
    await asyncio.wait_for(display.sent(), 3.0)
    assert _holders(me.sent) == ["caller-1", "caller-1", None, None]
    await display.aclose()
    await redis.aclose()
