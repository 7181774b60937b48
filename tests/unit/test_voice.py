"""The voice and the model's breaker with a fake session: a line is never lost to a failing
model. The offline voice carries a line the model fails or does not start within the fallback
time; after one failure the next lines go straight to the offline voice with no wait, and the
model is tried again only once a probe says it answers."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from agent.settings import HostSettings
from agent.voice.breaker import BreakerState, ModelBreaker
from agent.voice.sessions import SessionKeeper
from agent.voice.voice import Line, Voice
from tests.fakes.clock import FakeClock
from tests.fakes.loop import run_in_virtual_time
from tests.fakes.room import FakeRoom
from tests.fakes.session import FakeAir, FakeSession, FakeTTS, Reply, until

FALLBACK_SECONDS = 0.1
BACKOFF = 2.0
LINE = Line("Say hello to the listeners.", "Hello from the offline voice.")


class Booth:
    """A voice on a session, the transmitter's edge and the breaker's clock."""

    def __init__(self, model: Reply = Reply.SPEAKS) -> None:
        self.clock = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
        self.settings = HostSettings(
            _env_file=None,  # type: ignore[call-arg]
            openai_api_key=SecretStr("sk-test"),
            fallback_after_seconds=FALLBACK_SECONDS,
        )
        self.air = FakeAir()
        self.session = FakeSession(self.air, model=model)
        self.tts = FakeTTS()
        self.probes: list[bool] = []
        self.model_answers = True
        self.sessions = SessionKeeper(
            room=FakeRoom(),  # type: ignore[arg-type]
            settings=self.settings,
            transmitter=self.air,  # type: ignore[arg-type]
            tts=self.tts,
            make_host=lambda ctx: None,  # type: ignore[arg-type,return-value]
            wire=lambda s: None,
        )
        self.sessions.session = self.session  # type: ignore[assignment]
        self.sessions.started_at = time.monotonic()
        self.breaker = ModelBreaker(self.clock.monotonic, first_backoff=BACKOFF)
        self.voice = Voice(
            sessions=self.sessions,
            transmitter=self.air,  # type: ignore[arg-type]
            settings=self.settings,
            breaker=self.breaker,
            tts=self.tts,
            make_probe_model=self._probe_model,
        )

    def _probe_model(self) -> Any:
        return FakeProbeModel(self)


class FakeProbeModel:
    """The Realtime model the probe connects to: it acknowledges an item, or does not."""

    def __init__(self, booth: Booth) -> None:
        self._booth = booth

    def session(self) -> FakeProbeModel:
        return self

    async def update_chat_ctx(self, ctx: Any) -> None:
        self._booth.probes.append(self._booth.model_answers)
        if not self._booth.model_answers:
            raise ConnectionError("the model does not answer")

    async def aclose(self) -> None:
        pass


async def test_the_model_voices_the_line_when_it_starts_in_time() -> None:
    b = Booth()
    aired = await b.voice.speak(LINE)
    assert (aired.mode, aired.text, aired.complete) == ("realtime", "Model line 1.", True)
    assert b.session.asked == [LINE.instructions] and b.session.said == []
    assert b.breaker.state is BreakerState.CLOSED


async def test_a_model_error_hands_the_line_to_the_offline_voice_at_once() -> None:
    b = Booth(model=Reply.FAILS)
    started = time.monotonic()
    aired = await b.voice.speak(LINE)
    assert b.session.said_at[0] - started < FALLBACK_SECONDS / 2  # no fallback wait
    assert (aired.mode, aired.text, aired.complete) == ("offline", LINE.fallback, True)
    assert b.session.said == [LINE.fallback]  # through the session: captions too
    assert b.breaker.state is BreakerState.OPEN


async def test_a_model_that_does_not_start_in_time_is_cut_and_the_offline_voice_carries_on() -> (
    None
):
    b = Booth(model=Reply.SILENT)
    started = time.monotonic()
    aired = await b.voice.speak(LINE)
    waited = time.monotonic() - started
    assert FALLBACK_SECONDS <= waited < FALLBACK_SECONDS + 0.5
    assert b.session.handles[0].interrupted  # the late reply can never start over the line
    assert (aired.mode, aired.text, aired.complete) == ("offline", LINE.fallback, True)
    assert b.breaker.state is BreakerState.OPEN


async def test_after_a_failure_the_next_lines_skip_the_model_until_a_probe_passes() -> None:
    b = Booth(model=Reply.FAILS)
    await b.voice.speak(LINE)
    b.session.model = Reply.SPEAKS  # the model is back, but nobody knows yet
    started = time.monotonic()
    aired = await b.voice.speak(LINE)
    assert b.session.said_at[1] - started < FALLBACK_SECONDS / 2  # no wait on a failed model
    assert aired.mode == "offline" and len(b.session.asked) == 1  # the model was not asked
    assert not b.breaker.probe_due()
    b.clock.advance(seconds=BACKOFF)
    assert b.breaker.probe_due()  # the model is checked off air, later
    b.breaker.probed(True)
    aired = await b.voice.speak(LINE)  # one line tries the model on air ...
    assert aired.mode == "realtime" and len(b.session.asked) == 2
    assert b.breaker.state is BreakerState.CLOSED  # ... and a good line closes the breaker


def test_the_probe_checks_the_model_off_air_once_the_back_off_has_passed() -> None:
    async def scenario() -> None:
        b = Booth(model=Reply.FAILS)
        await b.voice.speak(LINE)  # the failure opens the breaker
        b.model_answers = False
        probing = asyncio.create_task(b.voice.run_probes())
        await asyncio.sleep(10)  # (virtual time) the back-off has not passed on its clock
        assert b.probes == []
        b.clock.advance(seconds=BACKOFF)
        await asyncio.sleep(1)
        assert b.probes == [False] and b.breaker.state is BreakerState.OPEN
        b.clock.advance(seconds=2 * BACKOFF)  # a failed probe doubles the back-off
        b.model_answers = True
        await asyncio.sleep(1)
        assert b.probes == [False, True]
        assert b.breaker.state is BreakerState.HALF_OPEN  # the next line tries the model
        assert b.session.asked == [LINE.instructions]  # nothing was said on air by probing
        probing.cancel()

    run_in_virtual_time(scenario)


async def test_with_no_session_the_offline_voice_goes_straight_to_air() -> None:
    b = Booth()
    b.sessions.session = None  # being renewed
    aired = await b.voice.speak(LINE)
    assert (aired.mode, aired.text) == ("offline", LINE.fallback)
    assert b.tts.lines == [LINE.fallback]
    (samples,) = b.air.items
    assert len(samples) == pytest.approx(0.05 * 48000, abs=96)  # resampled to 48 kHz


async def test_a_line_over_music_is_left_out_when_there_is_no_session() -> None:
    b = Booth()
    b.sessions.session = None
    aired = await b.voice.speak(Line("Over the intro.", "Over the intro.", over_music=True))
    assert aired.text == "" and b.air.items == []  # the track is not cut for it


async def test_a_cancelled_line_stops_on_air_at_once() -> None:
    b = Booth(model=Reply.TALKS_ON)
    speaking = asyncio.create_task(b.voice.speak(LINE))
    await until(lambda: bool(b.session.handles) and b.session.handles[0].began)
    speaking.cancel()  # a caller pressed
    with pytest.raises(asyncio.CancelledError):
        await speaking
    assert b.session.handles[0].interrupted
    assert b.breaker.state is BreakerState.CLOSED  # a press is not a model failure


def test_with_a_key_and_no_base_url_the_model_talks_to_openai() -> None:
    """An unset OPENAI_BASE_URL must not reach the plugin as None: it overrode OpenAI's own
    URL, so a production host with a real key could never reach the model (found by mypy).
    The plugin has no public accessor for its URL; `_opts` is read here only."""
    from livekit.plugins.openai.realtime.realtime_model import OPENAI_BASE_URL

    from agent.voice.voice import probe_model

    booth = Booth()
    assert booth.settings.openai_base_url is None
    session_model = booth.sessions._model()
    assert session_model is not None
    for model in (session_model, probe_model(booth.settings)()):
        assert model._opts.base_url == OPENAI_BASE_URL  # type: ignore[attr-defined]
