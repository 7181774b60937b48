"""LiveKit as the host's parts see it, without a server: the room and its participants, and the
server API's room service, which grants and revokes microphones.

Small and ours: they keep what the host asked of LiveKit so a test can check what a listener
would see (who may publish a microphone, who was removed). The room is never connected, so a
real AgentSession started in it (RoomIO) links no participant and hears no audio.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from livekit import api as lkapi
from livekit import rtc

STANDARD = rtc.ParticipantKind.PARTICIPANT_KIND_STANDARD


class FakeParticipant:
    def __init__(self, identity: str, kind: int = STANDARD) -> None:
        self.identity = identity
        self.kind = kind
        self.attributes: dict[str, str] = {}


class FakeLocalParticipant(FakeParticipant):
    def __init__(self, identity: str = "host") -> None:
        super().__init__(identity, rtc.ParticipantKind.PARTICIPANT_KIND_AGENT)
        self.rpc_methods: dict[str, Callable[..., Any]] = {}

    def register_rpc_method(self, name: str, handler: Callable[..., Any]) -> None:
        self.rpc_methods[name] = handler

    async def set_attributes(self, attributes: dict[str, str]) -> None:
        self.attributes.update(attributes)


class FakeRoom:
    """A room that is never connected: listeners are added with `join`."""

    def __init__(self, name: str = "radio24", listeners: tuple[str, ...] = ()) -> None:
        self.name = name
        self.local_participant = FakeLocalParticipant()
        self.remote_participants: dict[str, FakeParticipant] = {}
        self._handlers: dict[str, list[Callable[..., Any]]] = {}
        for identity in listeners:
            self.join(identity)

    def on(self, event: str, handler: Callable[..., Any] | None = None) -> Any:
        if handler is None:  # used as a decorator

            def register(fn: Callable[..., Any]) -> Callable[..., Any]:
                self._handlers.setdefault(event, []).append(fn)
                return fn

            return register
        self._handlers.setdefault(event, []).append(handler)
        return handler

    def off(self, event: str, handler: Callable[..., Any]) -> None:
        handlers = self._handlers.get(event, [])
        if handler in handlers:
            handlers.remove(handler)

    def emit(self, event: str, *args: Any) -> None:
        for handler in list(self._handlers.get(event, [])):
            handler(*args)

    def join(self, identity: str) -> FakeParticipant:
        participant = FakeParticipant(identity)
        self.remote_participants[identity] = participant
        self.emit("participant_connected", participant)
        return participant

    def leave(self, identity: str) -> None:
        participant = self.remote_participants.pop(identity)
        self.emit("participant_disconnected", participant)

    def isconnected(self) -> bool:
        return False

    def register_text_stream_handler(self, topic: str, handler: Callable[..., Any]) -> None:
        pass

    def unregister_text_stream_handler(self, topic: str) -> None:
        pass


class FakeRoomService:
    """The server API's room service. Permission updates land when their call returns, in that
    order (a slow grant can land after a quick revoke, as on a real SFU under load)."""

    def __init__(self, *, grant_seconds: float = 0.0, revoke_seconds: float = 0.0) -> None:
        self.grant_seconds = grant_seconds
        self.revoke_seconds = revoke_seconds
        self.fail_grants = False
        self.permissions: dict[str, lkapi.ParticipantPermission] = {}
        self.asked: list[tuple[str, bool]] = []  # (identity, microphone allowed), in call order
        self.removed: list[str] = []

    def microphone_on(self, identity: str) -> bool:
        p = self.permissions.get(identity)
        return (
            p is not None
            and p.can_publish
            and lkapi.TrackSource.MICROPHONE in list(p.can_publish_sources)
        )

    def with_microphone(self) -> list[str]:
        return sorted(i for i in self.permissions if self.microphone_on(i))

    def grants(self, identity: str) -> int:
        return sum(1 for who, allowed in self.asked if who == identity and allowed)

    async def update_participant(self, req: lkapi.UpdateParticipantRequest) -> Any:
        allowed = req.permission.can_publish
        self.asked.append((req.identity, allowed))
        await asyncio.sleep(self.grant_seconds if allowed else self.revoke_seconds)
        if allowed and self.fail_grants:
            raise ConnectionError("the SFU did not answer")
        self.permissions[req.identity] = req.permission
        return lkapi.ParticipantInfo(identity=req.identity, permission=req.permission)

    async def list_participants(
        self, req: lkapi.ListParticipantsRequest
    ) -> lkapi.ListParticipantsResponse:
        return lkapi.ListParticipantsResponse(
            participants=[
                lkapi.ParticipantInfo(identity=who, permission=p)
                for who, p in self.permissions.items()
            ]
        )

    async def remove_participant(self, req: lkapi.RoomParticipantIdentity) -> None:
        self.removed.append(req.identity)


class FakeLiveKitAPI:
    def __init__(self, room: FakeRoomService | None = None) -> None:
        self.room = room or FakeRoomService()
