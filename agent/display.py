"""What pages see: the segment on air, what is playing, who holds the floor, how many listen.

Shown two ways: as the host participant's attributes (pages in the room read them) and on the
board (Redis, for the API's live events). Both are sent off the caller's path, the latest value
of each kind by one task: a board update that fails is dropped (the next one carries the state
again); an attribute update that fails is sent again, so pages never keep a stale floor.
"""

from __future__ import annotations

import asyncio
import json
import logging

from livekit import rtc

from agent.board import Board
from agent.director import Lineup
from agent.floor import FloorState
from agent.media import MediaItem

log = logging.getLogger("radio24.display")

FLOOR_ATTRIBUTE = "radio24.floor"
SEGMENT_ATTRIBUTE = "radio24.segment"
NOW_PLAYING_ATTRIBUTE = "radio24.now_playing"
# An attribute update waits for the SFU's answer, seen taking 3 s under load: it must never hold
# up a caller's grant or the on-air loop, so one task sends the latest values in order.
ATTRIBUTE_TIMEOUT = 5.0
RETRY_SECONDS = 0.5


class Display:
    def __init__(self, room: rtc.Room, board: Board) -> None:
        self._room = room
        self._board = board
        self._segment: str | None = None
        self._listeners: int | None = None
        self._due: dict[str, str] = {}  # attributes not yet sent: the latest value of each
        self._shown: dict[str, str] = {}  # what pages have
        self._sender: asyncio.Task[None] | None = None

    def forget(self) -> None:
        """Show everything again on the next call (a producer's edit, a new session)."""
        self._segment = None
        self._listeners = None
        self._shown.clear()

    async def listeners(self, count: int) -> None:
        if count == self._listeners:
            return
        self._listeners = count
        await self._board.show("listeners", {"count": count}, state_fields={"listeners": count})

    async def segment(self, lineup: Lineup) -> None:
        cur, nxt = lineup.current, lineup.next
        value = {
            "id": cur.segment.id,
            "title": cur.segment.title,
            "starts": cur.starts.isoformat(),
            "ends": cur.ends.isoformat(),
        }
        following = {
            "id": nxt.segment.id,
            "title": nxt.segment.title,
            "starts": nxt.starts.isoformat(),
        }
        key = json.dumps([value, following])
        if key == self._segment:
            return
        self._segment = key
        await self._attribute(SEGMENT_ATTRIBUTE, {**value, "next": following})
        await self._board.show(
            "segment",
            {"segment": value, "next": following},
            state_fields={"segment": value, "next": following},
        )

    async def now_playing(self, item: MediaItem | None) -> None:
        """The track on air (title, artist), or nothing (`null`) while the host talks.
        Jingles, beds and idents are the station's own sound, not "playing"."""
        value = None
        if item is not None and item.kind == "track":
            value = {"title": item.title, "artist": item.artist, "kind": item.kind}
        await self._attribute(NOW_PLAYING_ATTRIBUTE, value)
        await self._board.show(
            "now_playing", {"now_playing": value}, state_fields={"now_playing": value}
        )

    async def floor(self, state: FloorState) -> None:
        value = {**state.as_attribute(), "holder_name": self._holder_name(state.holder)}
        await self._attribute(FLOOR_ATTRIBUTE, value)
        await self._board.show("floor", {"floor": value}, state_fields={"floor": value})

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

    async def _attribute(self, name: str, value: object) -> None:
        text = json.dumps(value, ensure_ascii=False)
        if name not in self._due and self._shown.get(name) == text:
            return  # pages have it already
        self._due[name] = text
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._send(), name="display-attributes")

    async def _send(self) -> None:
        delay = RETRY_SECONDS
        while self._due:
            due, self._due = self._due, {}
            try:
                await asyncio.wait_for(
                    self._room.local_participant.set_attributes(due), ATTRIBUTE_TIMEOUT
                )
            except Exception:
                # Seen once in a simulated day: the SFU never answered. Pages must not keep a
                # stale floor or segment, so the values go again (unless newer ones are due).
                log.warning("could not show the station's state to pages; retrying", exc_info=True)
                self._due = {**due, **self._due}
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            self._shown.update(due)
            delay = RETRY_SECONDS
