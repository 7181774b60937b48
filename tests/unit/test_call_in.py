"""The call-in desk with a fake room, a fake SFU and a fake session: the floor and the caller's
microphone change together, under one lock, whatever the order presses and releases arrive in.

The caller is not a participant of the fake room, so the desk's VAD (which reads the caller's
LiveKit audio stream) measures no speech: a turn counts as heard only where a test sets
`min_speech_seconds=0`. Speech measured by the VAD is left to tests/host (the SFU).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from livekit import api as lkapi
from pydantic import SecretStr

from agent.call_in.desk import CallInDesk, CallRefused
from agent.call_in.floor import Floor, FloorBusy, FloorState, NotHolder, Turn, TurnEnd
from agent.settings import HostSettings
from agent.voice.sessions import SessionKeeper
from tests.fakes.clock import FakeClock
from tests.fakes.loop import run_in_virtual_time
from tests.fakes.room import FakeLiveKitAPI, FakeRoom, FakeRoomService
from tests.fakes.session import FakeAir, FakeSession

START = datetime(2030, 1, 1, 12, tzinfo=UTC)


class Studio:
    """The desk and everything it reaches: what a caller and the listeners would notice."""

    def __init__(self, *, min_speech: float = 0.25, sfu: FakeRoomService | None = None) -> None:
        self.clock = FakeClock(START)
        self.settings = HostSettings(
            _env_file=None,  # type: ignore[call-arg]
            openai_api_key=SecretStr("sk-test"),
            min_speech_seconds=min_speech,
        )
        self.room = FakeRoom(listeners=("listener",))
        self.sfu = sfu or FakeRoomService()
        self.air = FakeAir()
        self.session = FakeSession(self.air)
        self.sessions = SessionKeeper(
            room=self.room,  # type: ignore[arg-type]
            settings=self.settings,
            transmitter=self.air,  # type: ignore[arg-type]
            tts=None,
            make_host=lambda ctx: None,  # type: ignore[arg-type,return-value]
            wire=lambda s: None,
        )
        # The keeper's own start builds a real AgentSession on the model; the fake one is on.
        self.sessions.session = self.session  # type: ignore[assignment]
        self.sessions.started_at = time.monotonic()
        self.events: list[str] = []  # preempts and turn reports, in order
        self.at_preempt: list[tuple[list[tuple[str, bool]], str | None]] = []  # SFU asks, heard
        self.turns: list[tuple[Turn, bool]] = []
        self.shown: list[FloorState] = []
        self.banned: set[str] = set()
        self.ban_check_fails = False
        self.floor = Floor(
            self.clock,
            timedelta(seconds=self.settings.max_turn_seconds),
            timedelta(seconds=self.settings.max_quiet_turn_seconds),
        )
        self.desk = CallInDesk(
            room=self.room,  # type: ignore[arg-type]
            livekit=FakeLiveKitAPI(self.sfu),  # type: ignore[arg-type]
            settings=self.settings,
            floor=self.floor,
            sessions=self.sessions,
            vad_model=None,  # type: ignore[arg-type]  # see the module docstring
            preempt=self._preempt,
            turn_over=self._turn_over,
            show_floor=self._show_floor,
            banned=self._banned,
        )

    async def _preempt(self) -> None:
        self.events.append("preempt")
        self.at_preempt.append((list(self.sfu.asked), self.on_air))
        await asyncio.sleep(0)

    async def _turn_over(self, turn: Turn, heard: bool) -> None:
        self.events.append(f"turn {turn.how.value}")
        self.turns.append((turn, heard))

    async def _show_floor(self, state: FloorState) -> None:
        self.shown.append(state)

    async def _banned(self, identity: str) -> bool:
        if self.ban_check_fails:
            raise ConnectionError("postgres is down")
        return identity in self.banned

    @property
    def on_air(self) -> str | None:
        """The caller the session hears (None: the caller's audio is shut off)."""
        return self.session.room_io.linked if self.session.input.audio_enabled else None


def _ok(result: Any) -> bool:
    return isinstance(result, dict) and result.get("state") == "held"


async def test_a_press_takes_the_floor_cuts_the_host_first_and_opens_the_microphone() -> None:
    s = Studio()
    reply = await s.desk.start_turn("alice")
    assert reply["state"] == "held" and reply["max_seconds"] == 30
    assert reply["deadline"] == (START + timedelta(seconds=30)).isoformat()
    assert s.floor.holder == "alice" and s.desk.held
    assert s.sfu.with_microphone() == ["alice"]
    assert s.on_air == "alice"
    # The host was cut before the caller's microphone was asked for or heard: never talked over.
    assert s.at_preempt == [([], None)]
    assert s.sfu.asked == [("alice", True)]
    assert s.shown[-1].holder == "alice"  # pages see who is on air


async def test_a_second_caller_is_told_busy_and_the_holder_keeps_the_air() -> None:
    s = Studio()
    await s.desk.start_turn("alice")
    with pytest.raises(FloorBusy) as err:
        await s.desk.start_turn("bob")
    assert err.value.code == "busy"
    assert s.floor.holder == "alice"
    assert s.sfu.with_microphone() == ["alice"]
    assert s.sfu.grants("bob") == 0
    assert s.on_air == "alice"
    assert s.events.count("preempt") == 1  # bob's press did not cut anything


async def test_the_holder_pressing_again_keeps_the_turn() -> None:
    s = Studio()
    first = await s.desk.start_turn("alice")
    s.clock.advance(seconds=2)
    again = await s.desk.start_turn("alice")  # a client retry
    assert again == first
    assert s.sfu.grants("alice") == 1 and s.events.count("preempt") == 1


async def test_a_release_closes_the_microphone_and_frees_the_floor() -> None:
    s = Studio()
    await s.desk.start_turn("alice")
    s.clock.advance(seconds=3)
    result = await s.desk.end_turn("alice")
    assert result == {"status": "no_speech"}  # nothing heard: the model gets nothing
    assert s.floor.state.free and not s.desk.held
    assert s.sfu.with_microphone() == []
    assert s.on_air is None
    ((turn, heard),) = s.turns
    assert turn.how is TurnEnd.ENDED and turn.duration == timedelta(seconds=3) and not heard
    assert s.shown[-1].free and s.shown[-1].ended == ("alice", TurnEnd.ENDED)


def test_a_heard_turn_goes_to_the_model_and_the_microphone_closes_after_the_answer() -> None:
    async def scenario() -> None:
        s = Studio(min_speech=0)
        await s.desk.start_turn("alice")
        result = await s.desk.end_turn("alice")
        assert result == {"status": "answered"}
        ((turn, heard),) = s.turns
        assert turn.how is TurnEnd.ENDED and heard
        assert s.on_air is None  # the caller's audio is cut from the model at the release
        assert s.floor.state.free
        # The revoke waits until the answer has started (it would stand in front of it) ...
        assert s.sfu.with_microphone() == ["alice"]
        await asyncio.sleep(1)
        assert s.sfu.with_microphone() == []  # ... and then comes
        assert s.shown[-1].free

    run_in_virtual_time(scenario)


async def test_a_cancelled_press_gives_nothing_to_the_model() -> None:
    s = Studio(min_speech=0)
    await s.desk.start_turn("alice")
    result = await s.desk.cancel_turn("alice")
    assert result == {"status": "cancelled"}
    ((turn, heard),) = s.turns
    assert turn.how is TurnEnd.CANCELLED and not heard
    assert s.floor.state.free and s.sfu.with_microphone() == [] and s.on_air is None


async def test_only_the_holder_can_end_or_cancel() -> None:
    s = Studio()
    await s.desk.start_turn("alice")
    with pytest.raises(NotHolder):
        await s.desk.end_turn("bob")
    with pytest.raises(NotHolder):
        await s.desk.cancel_turn("bob")
    assert s.floor.holder == "alice" and s.sfu.with_microphone() == ["alice"]
    assert s.turns == []


async def test_concurrent_presses_leave_exactly_one_caller_on_air() -> None:
    s = Studio(sfu=FakeRoomService(grant_seconds=0.002))
    callers = ["alice", "bob", "alice", "carol", "bob"]  # retries among them
    results = await asyncio.gather(*(s.desk.start_turn(c) for c in callers), return_exceptions=True)
    held = {c for c, r in zip(callers, results, strict=True) if _ok(r)}
    busy = [r for r in results if isinstance(r, FloorBusy)]
    assert len(held) == 1, results
    (holder,) = held
    assert len(busy) == sum(1 for c in callers if c != holder)
    assert s.floor.holder == holder
    assert s.sfu.with_microphone() == [holder]
    assert s.on_air == holder
    assert s.events.count("preempt") == 1 and s.sfu.grants(holder) == 1
    await s.desk.end_turn(holder)
    assert s.sfu.with_microphone() == [] and s.floor.state.free


def test_a_release_that_arrives_while_the_grant_is_on_its_way_leaves_it_off() -> None:
    # A quick tap: the SFU is slow to grant and quick to revoke. The release must wait for
    # the grant, or the revoke lands first and the late grant leaves the microphone open.
    async def scenario() -> None:
        s = Studio(sfu=FakeRoomService(grant_seconds=1.0, revoke_seconds=0.0))
        press = asyncio.create_task(s.desk.start_turn("alice"))
        await asyncio.sleep(0.5)  # the grant is in flight
        assert s.sfu.asked == [("alice", True)]
        release = asyncio.create_task(s.desk.end_turn("alice"))
        assert _ok(await press)
        assert (await release)["status"] == "no_speech"
        await asyncio.sleep(5)  # anything still in flight lands
        assert s.sfu.with_microphone() == []
        assert s.floor.state.free and s.on_air is None

    run_in_virtual_time(scenario)


def test_a_press_right_after_an_answered_turn_keeps_its_microphone() -> None:
    async def scenario() -> None:
        s = Studio(min_speech=0)
        await s.desk.start_turn("alice")
        assert (await s.desk.end_turn("alice"))["status"] == "answered"
        await s.desk.start_turn("alice")  # pressed again before the answered turn's revoke
        await asyncio.sleep(1)  # long past it
        assert s.sfu.with_microphone() == ["alice"] and s.on_air == "alice"
        await s.desk.cancel_turn("alice")
        assert s.sfu.with_microphone() == []

    run_in_virtual_time(scenario)


async def test_a_stopping_host_revokes_an_answered_callers_microphone_at_once() -> None:
    s = Studio(min_speech=0)
    await s.desk.start_turn("alice")
    await s.desk.end_turn("alice")
    await s.desk.aclose()
    assert s.sfu.with_microphone() == []


async def test_a_caller_who_says_nothing_is_cut_at_the_quiet_limit() -> None:
    s = Studio()
    await s.desk.start_turn("alice")
    s.clock.advance(seconds=3.9)
    await s.desk.expire()
    assert s.floor.holder == "alice"
    s.clock.advance(seconds=0.2)
    await s.desk.expire()
    ((turn, heard),) = s.turns
    assert turn.how is TurnEnd.QUIET and not heard
    assert s.floor.state.free and s.sfu.with_microphone() == [] and s.on_air is None


async def test_a_caller_who_leaves_mid_turn_frees_the_floor() -> None:
    s = Studio()
    await s.desk.start_turn("alice")
    await s.desk.caller_left("bob")  # someone else leaving changes nothing
    assert s.floor.holder == "alice"
    await s.desk.caller_left("alice")
    ((turn, heard),) = s.turns
    assert turn.how is TurnEnd.LEFT and not heard
    assert s.floor.state.free and s.on_air is None
    assert ("alice", False) not in s.sfu.asked  # a caller who left has no microphone to revoke
    assert _ok(await s.desk.start_turn("bob"))


async def test_a_banned_caller_is_refused_before_anything_changes() -> None:
    s = Studio()
    s.banned.add("mallory")
    with pytest.raises(CallRefused) as err:
        await s.desk.start_turn("mallory")
    assert err.value.code == "refused"
    assert s.floor.state.free and s.sfu.asked == [] and s.events == []


async def test_a_ban_that_cannot_be_checked_refuses_the_call() -> None:
    s = Studio()
    s.ban_check_fails = True
    with pytest.raises(CallRefused):
        await s.desk.start_turn("alice")
    assert s.floor.state.free and s.sfu.asked == []


async def test_a_microphone_that_cannot_be_opened_refuses_the_call_and_frees_the_floor() -> None:
    s = Studio()
    s.sfu.fail_grants = True
    with pytest.raises(CallRefused, match="microphone"):
        await s.desk.start_turn("alice")
    assert s.floor.state.free and not s.desk.held
    assert s.sfu.with_microphone() == [] and s.on_air is None
    assert s.shown[-1].free
    s.sfu.fail_grants = False
    assert _ok(await s.desk.start_turn("alice"))  # the next press works


async def test_a_new_host_revokes_every_microphone_but_the_holders() -> None:
    s = Studio()
    await s.desk.start_turn("alice")
    for stale in ("bob", "carol"):  # left open by a host that crashed
        await s.sfu.update_participant(_grant(s.room.name, stale))
    await s.desk.reconcile_grants()
    assert s.sfu.with_microphone() == ["alice"]


async def test_a_session_that_starts_mid_turn_hears_the_caller() -> None:
    s = Studio()
    await s.desk.start_turn("alice")
    renewed = FakeSession(s.air)
    s.sessions.session = renewed  # type: ignore[assignment]
    s.desk.session_started(renewed)  # type: ignore[arg-type]
    assert renewed.input.audio_enabled and renewed.room_io.linked == "alice"


def _grant(room: str, identity: str) -> lkapi.UpdateParticipantRequest:
    return lkapi.UpdateParticipantRequest(
        room=room,
        identity=identity,
        permission=lkapi.ParticipantPermission(
            can_publish=True, can_publish_sources=[lkapi.TrackSource.MICROPHONE]
        ),
    )
