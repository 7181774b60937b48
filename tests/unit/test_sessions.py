"""The session keeper with real AgentSessions (offline mode: no model) in a fake room that is
never connected: a renewal replaces the session with one that knows only a short summary, a
start that fails is retried, and a session that dies is started again — the host stays on air.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from livekit.agents import AgentSession, ErrorEvent, llm

from agent.audio.transmitter import VoiceFeed
from agent.settings import HostSettings
from agent.voice.host import Host
from agent.voice.sessions import SUMMARY_HEADER, SessionKeeper
from tests.fakes.loop import run_in_virtual_time
from tests.fakes.room import FakeRoom
from tests.fakes.session import until


class FakeTransmitter:
    """The transmitter as the keeper uses it: a fresh voice feed for every session."""

    def __init__(self) -> None:
        self.feeds: list[VoiceFeed] = []

    def feed(self) -> VoiceFeed:
        self.feeds.append(VoiceFeed(asyncio.Event()))
        return self.feeds[-1]


class Studio:
    def __init__(self) -> None:
        self.room = FakeRoom()
        self.transmitter = FakeTransmitter()
        self.contexts: list[llm.ChatContext | None] = []  # each new host's memory
        self.failing_starts = 0
        self.closed: list[AgentSession] = []
        self.started: list[AgentSession] = []
        self.keeper = SessionKeeper(
            room=self.room,  # type: ignore[arg-type]
            settings=HostSettings(_env_file=None, openai_api_key=None),  # type: ignore[call-arg]
            transmitter=self.transmitter,  # type: ignore[arg-type]
            tts=None,
            make_host=self._make_host,
            wire=self._wire,
        )
        self.keeper.on_start(self.started.append)

    def _make_host(self, ctx: llm.ChatContext | None) -> Host:
        if self.failing_starts:
            self.failing_starts -= 1
            raise ConnectionError("the prompts could not be read")
        self.contexts.append(ctx)
        return Host("Host.", recall=_recall, next_post=lambda: None, chat_ctx=ctx)

    def _wire(self, session: AgentSession) -> None:
        session.on("close", lambda ev: self.closed.append(session))

    async def ready(self) -> AgentSession:
        await asyncio.wait_for(self.keeper.ready.wait(), 5)
        assert self.keeper.session is not None
        return self.keeper.session


async def _recall(topic: str) -> list[dict[str, Any]]:
    return []


def _memory(ctx: llm.ChatContext | None) -> list[str]:
    if ctx is None:
        return []
    return [m.text_content or "" for m in ctx.items if isinstance(m, llm.ChatMessage)]


async def test_a_renewal_replaces_the_session_with_one_that_knows_only_the_summary() -> None:
    s = Studio()
    await s.keeper.start()
    first = await s.ready()
    assert s.contexts == [None]  # the first session starts with no memory
    await s.keeper.renew(["We talked about the rain.", "  ", "A song about trains played."])
    second = await s.ready()
    assert second is not first and s.closed == [first]
    assert s.keeper.renewals == 1 and s.started == [first, second]
    assert _memory(s.keeper.host.chat_ctx if s.keeper.host else None) == [
        SUMMARY_HEADER + "- We talked about the rain.\n- A song about trains played."
    ]
    assert len(s.transmitter.feeds) == 2  # each session speaks through its own feed
    assert not second.input.audio_enabled  # nobody is heard until a caller presses
    await s.keeper.aclose()
    assert s.closed == [first, second] and s.keeper.session is None


async def test_a_press_that_cancels_the_step_does_not_stop_the_renewal() -> None:
    s = Studio()
    await s.keeper.start()
    first = await s.ready()
    step = asyncio.create_task(s.keeper.renew(["Line."]))
    await asyncio.sleep(0)
    step.cancel()  # the on-air step that asked for the renewal is cut by a press
    with pytest.raises(asyncio.CancelledError):
        await step
    again = asyncio.create_task(s.keeper.renew(["Line."]))  # the next step waits for it
    second = await s.ready()
    await again
    assert second is not first and s.keeper.renewals == 1 and s.closed == [first]
    await s.keeper.aclose()


def test_a_start_that_fails_is_retried_after_the_old_session_is_closed() -> None:
    async def scenario() -> None:
        s = Studio()
        await s.keeper.start()
        first = await s.ready()
        s.failing_starts = 2
        renewal = asyncio.create_task(s.keeper.renew(["Line."]))
        await asyncio.sleep(0.1)  # (virtual time) the first try has failed
        assert s.closed == [first] and not s.keeper.ready.is_set()
        await asyncio.wait_for(renewal, 10)  # retried with back-off until it starts
        second = await s.ready()
        assert second is not first and s.failing_starts == 0 and s.keeper.renewals == 1
        assert _memory(s.contexts[-1])[0].endswith("- Line.")  # the summary survives retries
        await s.keeper.aclose()

    run_in_virtual_time(scenario)


async def test_a_session_that_closes_by_itself_is_started_again() -> None:
    s = Studio()
    await s.keeper.start()
    first = await s.ready()
    await first.aclose()  # as after a fatal model error
    assert s.keeper.session is None or s.keeper.session is not first
    second = await s.ready()
    assert second is not first and s.started == [first, second]
    assert s.keeper.renewals == 0  # not a renewal: no summary to carry
    await s.keeper.aclose()


async def test_a_fatal_model_error_replaces_the_session() -> None:
    s = Studio()
    await s.keeper.start()
    first = await s.ready()
    error = llm.RealtimeModelError(
        timestamp=0.0, label="fake", error=ConnectionError("gone"), recoverable=False
    )
    first.emit("error", ErrorEvent(error=error, source=None))
    await until(lambda: s.keeper.session is not first)
    second = await s.ready()
    assert second is not first and s.closed[0] is first
    await s.keeper.aclose()


async def test_a_stopped_keeper_starts_nothing_more() -> None:
    s = Studio()
    await s.keeper.start()
    first = await s.ready()
    await s.keeper.aclose()
    assert s.keeper.session is None and s.closed == [first]
    s.keeper.replace(first)
    await asyncio.sleep(0.01)
    assert s.started == [first] and s.keeper.session is None
