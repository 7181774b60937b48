"""What pages see: the segment on air, what is playing, who holds the floor, how many listen.

Shown two ways: as the host participant's attributes (pages in the room read them; names in
`contract.room`) and on the board (Redis, for the API's live events). Both carry the shapes of
`contract.events`. Both are sent off the caller's path, the latest value
of each kind by one task: a board update that fails is dropped (the next one carries the state
again); an attribute update that fails is sent again, so pages never keep a stale floor. An
update whose answer is late does not hold up the next one for more than a second.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging

from livekit import rtc

from agent.call_in.floor import FloorState
from agent.store.board import Board
from contract.events import (
    FloorEvent,
    FloorInfo,
    ListenersEvent,
    NextSegment,
    NowPlaying,
    NowPlayingEvent,
    SegmentEvent,
    SegmentInfo,
)
from contract.room import ATTR_FLOOR, ATTR_NOW_PLAYING, ATTR_SEGMENT
from programme.director import Lineup
from programme.media import MediaItem

log = logging.getLogger("radio24.display")

# `set_attributes` returns when the SDK has the SFU's answer. About one call in a hundred waits
# the SDK's full 5 s for it, on an idle loopback too, while the other participants got the update
# in milliseconds (measured: `bench/attributes.py`). So the sender waits this long at most, then
# sends the next values; the slow call finishes on its own. It never holds up a grant or the
# on-air loop.
PATIENCE = 1.0
RETRY_SECONDS = 0.5


class Display:
    def __init__(self, room: rtc.Room, board: Board, patience: float = PATIENCE) -> None:
        self._room = room
        self._board = board
        self._patience = patience
        self._segment: str | None = None
        self._listeners: int | None = None
        self._due: dict[str, str] = {}  # attributes not yet sent: the latest value of each
        self._latest: dict[str, str] = {}  # what pages have, or will have once the sends land
        self._sender: asyncio.Task[None] | None = None
        self._calls: set[asyncio.Task[None]] = set()  # updates the SDK has not answered yet

    def forget(self) -> None:
        """Show everything again on the next call (a producer's edit, a new session)."""
        self._segment = None
        self._listeners = None
        self._latest.clear()

    async def listeners(self, count: int) -> None:
        if count == self._listeners:
            return
        self._listeners = count
        await self._board.show(ListenersEvent(count=count))

    async def segment(self, lineup: Lineup) -> None:
        cur, nxt = lineup.current, lineup.next
        value = SegmentInfo(
            id=cur.segment.id,
            title=cur.segment.title,
            starts=cur.starts.isoformat(),
            ends=cur.ends.isoformat(),
        )
        following = NextSegment(
            id=nxt.segment.id, title=nxt.segment.title, starts=nxt.starts.isoformat()
        )
        key = json.dumps([value.model_dump(), following.model_dump()])
        if key == self._segment:
            return
        self._segment = key
        await self._attribute(ATTR_SEGMENT, {**value.model_dump(), "next": following.model_dump()})
        await self._board.show(SegmentEvent(segment=value, next=following))

    async def now_playing(self, item: MediaItem | None) -> None:
        """The track on air (title, artist), or nothing (`null`) while the host talks.
        Jingles, beds and idents are the station's own sound, not "playing"."""
        value = None
        if item is not None and item.kind == "track":
            value = NowPlaying(title=item.title, artist=item.artist, kind=item.kind)
        await self._attribute(ATTR_NOW_PLAYING, value.model_dump() if value else None)
        await self._board.show(NowPlayingEvent(now_playing=value))

    async def floor(self, state: FloorState) -> None:
        value = {**state.as_attribute(), "holder_name": self._holder_name(state.holder)}
        info = FloorInfo.model_validate(value)
        await self._attribute(ATTR_FLOOR, value)
        await self._board.show(FloorEvent(floor=info))

    def _holder_name(self, holder: str | None) -> str | None:
        """The name pages show for the holder: the nickname the API put in the listener's token."""
        if holder is None:
            return None
        participant = self._room.remote_participants.get(holder)
        return (participant.name if participant is not None else "") or holder

    async def sent(self) -> None:
        """Return when every attribute shown so far was sent (shutdown, tests)."""
        while self._sender is not None and not self._sender.done():
            await asyncio.shield(self._sender)

    async def aclose(self) -> None:
        """The last state (the floor free at shutdown) goes out if it can within 2 s."""
        if self._sender is not None:
            done, _ = await asyncio.wait({self._sender}, timeout=2.0)
            if not done:
                self._sender.cancel()
        calls = list(self._calls)
        for call in calls:
            call.cancel()
        await asyncio.gather(*calls, return_exceptions=True)

    async def _attribute(self, name: str, value: object) -> None:
        text = json.dumps(value, ensure_ascii=False)
        if self._latest.get(name) == text:
            return  # pages have it, or it is on its way
        self._latest[name] = text
        self._due[name] = text
        self._send_soon()

    def _send_soon(self) -> None:
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="display-attributes")

    async def _send(self) -> None:
        delay = RETRY_SECONDS
        while self._due:
            due, self._due = self._due, {}
            call = asyncio.create_task(self._room.local_participant.set_attributes(due))
            self._calls.add(call)
            call.add_done_callback(functools.partial(self._call_done, due=due))
            # A call still waiting after the patience: the SFU has it (the SDK's answer is what
            # is late), so the next values may go. One that failed is due again: back off.
            done, _ = await asyncio.wait({call}, timeout=self._patience)
            if done and call.exception() is not None:
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            else:
                delay = RETRY_SECONDS

    def _call_done(self, call: asyncio.Task[None], due: dict[str, str]) -> None:
        """Pages must not keep a stale floor or segment: the values of a failed call, early or
        late, go again unless newer ones have taken their place."""
        self._calls.discard(call)
        if call.cancelled() or call.exception() is None:
            return
        log.warning(
            "could not show the station's state to pages; retrying", exc_info=call.exception()
        )
        again = {n: t for n, t in due.items() if self._latest.get(n) == t}
        if again:
            self._due.update(again)
            self._send_soon()
