"""Who is in the room: the listeners the host speaks for, and what follows when one comes or goes.

A listener who joins wakes the on-air loop (a host alone in the room says nothing) and has their
ban checked by the call-in desk; a caller who leaves frees the floor; the session's RoomIO, which
follows one participant, is moved to someone still here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from typing import Any

from livekit import rtc

from agent.call_in.desk import CallInDesk
from agent.voice.sessions import SessionKeeper

Spawn = Callable[[Coroutine[Any, Any, Any], str], None]


class Presence:
    def __init__(
        self,
        *,
        room: rtc.Room,
        host_identity: str,
        sessions: SessionKeeper,
        wake: Callable[[], None],
        spawn: Spawn,
    ) -> None:
        """`wake()`: a listener joined; `spawn(coro, what)`: a side task owned by the loop."""
        self._room = room
        self._host_identity = host_identity
        self._sessions = sessions
        self._wake = wake
        self._spawn = spawn
        self.desk: CallInDesk | None = None

    def start(self) -> None:
        self._room.on("participant_connected", self._on_joined)
        self._room.on("participant_disconnected", self._on_left)

    def stop(self) -> None:
        self._room.off("participant_connected", self._on_joined)
        self._room.off("participant_disconnected", self._on_left)

    def listener_count(self) -> int:
        return sum(
            1
            for p in self._room.remote_participants.values()
            if p.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
            and p.identity != self._host_identity
        )

    def _on_joined(self, participant: rtc.RemoteParticipant) -> None:
        self._wake()
        if self.desk is not None:
            self._spawn(self.desk.joined(participant.identity), "joined")

    def _on_left(self, participant: rtc.RemoteParticipant) -> None:
        if self.desk is not None:
            self._spawn(self.desk.caller_left(participant.identity), "caller-left")
        session = self._sessions.session
        if session is None:
            return
        # RoomIO follows one participant; keep it on someone still here.
        with contextlib.suppress(Exception):
            linked = session.room_io.linked_participant
            if linked is None or linked.identity == participant.identity:
                for other in self._room.remote_participants.values():
                    if (
                        other.identity != participant.identity
                        and other.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
                    ):
                        session.room_io.set_participant(other.identity)
                        break
