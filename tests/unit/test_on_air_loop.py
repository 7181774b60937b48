"""The on-air loop with the real call-in desk and voice, a fake session and a fake room: a press
cuts what the host was voicing, nothing airs while the caller holds the floor, and the
programme resumes after the turn (with the model's answer first when the caller was heard)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

from pydantic import SecretStr

from agent.call_in.desk import CallInDesk
from agent.call_in.floor import Floor, FloorState
from agent.on_air.display import Display
from agent.on_air.lines import CALLER_THANKS
from agent.on_air.loop import OnAirLoop
from agent.settings import HostSettings
from agent.store.posts import PostQueue
from agent.voice.breaker import ModelBreaker
from agent.voice.sessions import SessionKeeper
from agent.voice.voice import Voice
from programme.director import ProgramDirector
from programme.model import Persona, Programme, Schedule, Segment, Slot, Station, StationIdRule
from tests.fakes.clock import FakeClock
from tests.fakes.room import FakeLiveKitAPI, FakeRoom
from tests.fakes.session import FakeAir, FakeSession, FakeTTS, Reply, running, stop, until
from tests.fakes.store import FakeAiredLog, FakeBoard

START = datetime(2030, 1, 7, 12, 10, tzinfo=UTC)
FALLBACK = "Test FM, all day."


def programme() -> Programme:
    station = Station("Test FM", "en", "UTC", StationIdRule(60, "$station_name"), "AI.", 0.01)
    segment = Segment("all", "All Day", "calm", 60, (FALLBACK,), "never", "Talk.")
    day = (Slot(0, 24 * 60, "all"),)
    return Programme(station, Persona("", "Host."), {"all": segment}, Schedule((day,) * 7, (0,)))


class Station24:
    """The loop, the desk and the voice as the job wires them, around fakes of the outside."""

    def __init__(self, *, offline: bool = False, model: Reply = Reply.TALKS_ON) -> None:
        self.clock = FakeClock(START)
        self.settings = HostSettings(
            _env_file=None,  # type: ignore[call-arg]
            openai_api_key=None if offline else SecretStr("sk-test"),
            min_speech_seconds=0,  # the fake caller's press counts as heard (see test_call_in)
            fallback_after_seconds=0.05,
        )
        self.room = FakeRoom(listeners=("listener",))
        self.air = FakeAir()
        self.session = FakeSession(self.air, model=model)
        self.aired = FakeAiredLog()
        self.sessions = SessionKeeper(
            room=self.room,  # type: ignore[arg-type]
            settings=self.settings,
            transmitter=self.air,  # type: ignore[arg-type]
            tts=None,
            make_host=lambda ctx: None,  # type: ignore[arg-type,return-value]
            wire=lambda s: None,
        )
        self.sessions.session = self.session  # type: ignore[assignment]
        self.sessions.started_at = time.monotonic()
        self.voice = Voice(
            sessions=self.sessions,
            transmitter=self.air,  # type: ignore[arg-type]
            settings=self.settings,
            breaker=ModelBreaker(self.clock.monotonic),
            tts=FakeTTS(),
        )
        self.loop = OnAirLoop(
            room=self.room,  # type: ignore[arg-type]
            settings=self.settings,
            director=ProgramDirector(programme(), self.clock),
            sessions=self.sessions,
            voice=self.voice,
            posts=PostQueue(None, self.aired),  # type: ignore[arg-type]  # none waiting
            aired=self.aired,  # type: ignore[arg-type]
            display=Display(self.room, FakeBoard()),  # type: ignore[arg-type]
            language="en",
            transmitter=self.air,  # type: ignore[arg-type]
        )
        self.floor_shown: list[FloorState] = []
        self.sfu = FakeLiveKitAPI()
        self.desk = CallInDesk(
            room=self.room,  # type: ignore[arg-type]
            livekit=self.sfu,  # type: ignore[arg-type]
            settings=self.settings,
            floor=Floor(self.clock, timedelta(seconds=30), timedelta(seconds=4)),
            sessions=self.sessions,
            vad_model=None,  # type: ignore[arg-type]  # the caller is not in the fake room
            preempt=self.loop.preempt,
            turn_over=self.loop.turn_over,
            show_floor=self._show_floor,
            banned=self._nobody_banned,
        )
        self.loop.desk = self.desk
        self.loop.wire(self.session)  # type: ignore[arg-type]
        self.loop.start([])

    async def _show_floor(self, state: FloorState) -> None:
        self.floor_shown.append(state)

    async def _nobody_banned(self, identity: str) -> bool:
        return False

    def lines_started(self) -> int:
        """Lines the host began: the model's replies and the offline voice's."""
        return len(self.session.asked) + len(self.session.said)


async def test_a_press_cuts_the_hosts_line_and_the_programme_resumes_after_the_answer() -> None:
    s = Station24()
    s.session.replies.extend([Reply.TALKS_ON, Reply.SPEAKS])  # a long line, then the answer
    async with running(s.loop.run_writer()):
        async with running(s.loop.run()):
            await until(lambda: len(s.session.asked) == 1 and s.session.handles[0].began)
            cut = s.session.handles[0]
            await s.desk.start_turn("caller")
            # The host's line stopped before the caller's microphone opened, music and bed out.
            assert cut.interrupted and s.air.hushes >= 1
            assert s.session.input.audio_enabled and s.session.room_io.linked == "caller"
            assert s.session.said == []  # the offline voice did not take the cut line over
            await asyncio.sleep(0.02)
            s.room.join("late-listener")  # wakes the loop: still nothing while the floor is held
            await asyncio.sleep(0.03)
            assert s.lines_started() == 1
            assert (await s.desk.end_turn("caller"))["status"] == "answered"
            assert s.session.commits == 1
            await until(lambda: len(s.session.handles) >= 2 and s.session.handles[1].done())
            answer = s.session.handles[1]
            assert answer.began and not answer.interrupted  # the answer aired whole
            await until(lambda: len(s.session.asked) >= 2)  # the programme goes on
            assert s.session.said == []  # the model carried it all
        await asyncio.wait_for(s.loop.flush_writes(), 2)
    # The as-aired log has the cut line as cut, the caller's turn, and the whole answer.
    lines = [(line["text"], line["interrupted"]) for line in s.aired.lines]
    assert lines[:2] == [("Model line 1.", True), ("Model answer.", False)]
    assert [turn["identity"] for turn in s.aired.turns] == ["caller"]
    await s.desk.aclose()


async def test_a_press_while_the_model_is_still_silent_keeps_the_fallback_off_the_air() -> None:
    s = Station24(model=Reply.SILENT)
    async with running(s.loop.run()):
        await until(lambda: len(s.session.asked) == 1)
        await s.desk.start_turn("caller")
        assert s.session.handles[0].interrupted
        await asyncio.sleep(0.1)  # twice the fallback time
        s.room.join("late-listener")  # wakes the loop
        await asyncio.sleep(0.02)
        assert s.session.said == [] and s.air.items == []  # no offline line over the caller
        assert s.lines_started() == 1
        await s.desk.cancel_turn("caller")
        await until(lambda: s.lines_started() >= 2)  # the programme resumes
    await s.desk.aclose()


async def test_an_offline_host_is_cut_by_a_press_and_thanks_a_heard_caller() -> None:
    s = Station24(offline=True)
    s.session.says.append(Reply.TALKS_ON)
    async with running(s.loop.run()):
        await until(lambda: len(s.session.said) == 1 and s.session.handles[0].began)
        await s.desk.start_turn("caller")
        assert s.session.handles[0].interrupted
        assert s.session.asked == []  # offline: the model is never asked
        await s.desk.end_turn("caller")
        await until(lambda: len(s.session.said) >= 3)  # thanks, then the programme again
        cut, thanks, again = s.session.said[:3]
        assert thanks == CALLER_THANKS["en"]
        assert again == cut  # the cue the press cut had not aired: it comes again
    await s.desk.aclose()


async def test_nothing_airs_without_listeners() -> None:
    s = Station24()
    s.room.leave("listener")
    async with running(s.loop.run()):
        await asyncio.sleep(0.05)
        assert s.lines_started() == 0
        s.room.join("listener")
        await until(lambda: s.lines_started() == 1)


async def test_a_stop_that_comes_as_a_listener_joins_stops_the_loop() -> None:
    s = Station24()
    s.room.leave("listener")
    task = asyncio.create_task(s.loop.run())
    await asyncio.sleep(0.02)  # waiting for a listener
    s.room.join("listener")  # wakes the loop ...
    task.cancel()  # ... as the job stops it
    done, _ = await asyncio.wait({task}, timeout=0.3)
    await stop(task)
    assert done, "the on-air loop ran on after it was cancelled"
    assert s.lines_started() == 0
