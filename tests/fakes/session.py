"""The AgentSession and its Realtime model as the host's parts see them, with no model and no
LiveKit: replies that speak, fail, stay silent or talk on until cut; the offline voice's TTS;
and the air at the transmitter's edge (when the voice was last heard, what items played).

Lines last a few milliseconds. A speaking reply puts the voice "on air" every few ms (the
transmitter's `voice_at`) and tells the session's listeners it is speaking, as the real session
does with `agent_state_changed`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import numpy as np
from livekit import rtc
from livekit.agents import llm

RATE = 48000
LINE_SECONDS = 0.03


class Reply(StrEnum):
    SPEAKS = "speaks"  # audio at once, done after LINE_SECONDS
    FAILS = "fails"  # done at once with an error, no audio (a model error)
    SILENT = "silent"  # no audio and never done until cut (a model that does not answer)
    TALKS_ON = "talks_on"  # audio until cut (a long line)


class FakeAir:
    """The transmitter's edge: the voice's last moment on air, the items it played, hushes."""

    def __init__(self) -> None:
        self.voice_at = time.monotonic()
        self.items: list[np.ndarray] = []
        self.hushes = 0

    def voice(self) -> None:
        self.voice_at = time.monotonic()

    async def play(self, samples: np.ndarray) -> float:
        self.items.append(samples)
        await asyncio.sleep(0)
        return len(samples) / RATE

    def hush(self) -> None:
        self.hushes += 1


class FakeSpeechHandle:
    """What the host reads of livekit-agents' SpeechHandle."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        self.interrupted = False
        self.chat_items: list[llm.ChatItem] = []
        self.began = False  # some of its audio went on air
        self._done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._error: BaseException | None = None

    def done(self) -> bool:
        return self._done.done()

    def exception(self) -> BaseException | None:
        return self._error

    def interrupt(self, *, force: bool = False) -> FakeSpeechHandle:
        if not self.done():
            self.interrupted = True
            self.finish()
        return self

    async def wait_for_playout(self) -> None:
        await asyncio.shield(self._done)

    def finish(self, error: BaseException | None = None) -> None:
        if self.done():
            return
        self._error = error
        if error is None and self.began and self.text:
            self.chat_items.append(llm.ChatMessage(role="assistant", content=[self.text]))
        self._done.set_result(None)


@dataclass
class SpeechCreated:
    source: str
    speech_handle: FakeSpeechHandle
    user_initiated: bool = False


@dataclass
class AgentStateChanged:
    old_state: str
    new_state: str


class _Input:
    def __init__(self) -> None:
        self.audio_enabled = False

    def set_audio_enabled(self, enable: bool) -> None:
        self.audio_enabled = enable


class _RoomIO:
    def __init__(self) -> None:
        self.linked: str | None = None

    def set_participant(self, identity: str | None) -> None:
        self.linked = identity

    def unset_participant(self) -> None:
        self.linked = None

    @property
    def linked_participant(self) -> Any:
        return None

    async def aclose(self) -> None:
        pass


class FakeSession:
    """An AgentSession on the Realtime model (or the offline voice, through `say`).

    `replies` scripts the model's next replies in order (then `model` for the rest); an answer
    to a caller's committed turn is one of them too. `says` scripts the offline voice's lines
    the same way (they speak by default). `said` and `asked` keep what it was told.
    """

    def __init__(self, air: FakeAir, *, model: Reply = Reply.SPEAKS) -> None:
        self.air = air
        self.model = model
        self.replies: deque[Reply] = deque()
        self.says: deque[Reply] = deque()
        self.asked: list[str] = []  # instructions of each generate_reply
        self.said: list[str] = []  # the offline voice's lines
        self.said_at: list[float] = []  # when each was asked for (time.monotonic)
        self.handles: list[FakeSpeechHandle] = []
        self.interrupts = 0
        self.commits = 0
        self.cleared_turns = 0
        self.closed = False
        self.input = _Input()
        self.room_io = _RoomIO()
        self._handlers: dict[str, list[Callable[..., Any]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # --- events ------------------------------------------------------------------------------

    def on(self, event: str, handler: Callable[..., Any]) -> Callable[..., Any]:
        self._handlers.setdefault(event, []).append(handler)
        return handler

    def off(self, event: str, handler: Callable[..., Any]) -> None:
        self._handlers.get(event, []).remove(handler)

    def emit(self, event: str, ev: Any) -> None:
        for handler in list(self._handlers.get(event, [])):
            handler(ev)

    # --- what the host calls -----------------------------------------------------------------

    def generate_reply(self, *, instructions: str = "", **_: Any) -> FakeSpeechHandle:
        if self.closed:
            raise RuntimeError("AgentSession is not running")
        self.asked.append(instructions)
        reply = self.replies.popleft() if self.replies else self.model
        return self._speak(f"Model line {len(self.asked)}.", "generate_reply", reply)

    def say(self, text: str, **_: Any) -> FakeSpeechHandle:
        if self.closed:
            raise RuntimeError("AgentSession is not running")
        self.said.append(text)
        self.said_at.append(time.monotonic())
        return self._speak(text, "say", self.says.popleft() if self.says else Reply.SPEAKS)

    def interrupt(self, *, force: bool = False) -> None:
        self.interrupts += 1
        for handle in self.handles:
            handle.interrupt(force=force)

    def commit_user_turn(self, **_: Any) -> None:
        """The caller's turn goes to the model, which answers (the next scripted reply)."""
        self.commits += 1
        reply = self.replies.popleft() if self.replies else self.model
        handle = self._speak("Model answer.", "generate_reply", reply)
        asyncio.get_running_loop().call_soon(
            self.emit, "speech_created", SpeechCreated("generate_reply", handle)
        )

    def clear_user_turn(self) -> None:
        self.cleared_turns += 1

    async def aclose(self) -> None:
        self.closed = True
        for task in list(self._tasks):
            task.cancel()

    # --- playing -----------------------------------------------------------------------------

    def _speak(self, text: str, source: str, reply: Reply) -> FakeSpeechHandle:
        handle = FakeSpeechHandle(text, source)
        self.handles.append(handle)
        if reply is Reply.FAILS:
            handle.finish(error=RuntimeError("realtime model error"))
            return handle
        if reply is Reply.SILENT:
            return handle
        task = asyncio.create_task(self._play(handle, forever=reply is Reply.TALKS_ON))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return handle

    async def _play(self, handle: FakeSpeechHandle, *, forever: bool) -> None:
        self.emit("agent_state_changed", AgentStateChanged("thinking", "speaking"))
        ends = time.monotonic() + LINE_SECONDS
        try:
            while not handle.done() and (forever or time.monotonic() < ends):
                handle.began = True
                self.air.voice()
                await asyncio.sleep(0.005)
            handle.finish()
        finally:
            self.emit("agent_state_changed", AgentStateChanged("speaking", "listening"))


class FakeTTS:
    """The offline voice's synthesizer: a short tone per line, at 24 kHz like the real one."""

    def __init__(self, seconds: float = 0.05, rate: int = 24000) -> None:
        self.seconds = seconds
        self.rate = rate
        self.lines: list[str] = []

    async def synthesize(self, text: str) -> AsyncIterator[Any]:
        self.lines.append(text)
        n = int(self.seconds * self.rate)
        t = np.arange(n) / self.rate
        pcm = (np.sin(2 * np.pi * 220 * t) * 8000).astype(np.int16)

        @dataclass
        class Audio:
            frame: rtc.AudioFrame

        yield Audio(rtc.AudioFrame(pcm.tobytes(), self.rate, 1, n))


async def until(check: Callable[[], bool], within: float = 2.0) -> None:
    """Wait until `check()` holds; fail the test after `within` seconds. It polls every ms:
    the things checked (a fake's counters, the desk's state) have no event to wait on."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.001)


@contextlib.asynccontextmanager
async def running(coro: Any) -> AsyncIterator[asyncio.Task[Any]]:
    """Run `coro` as a task for the block; stopped (see `stop`) at its end."""
    task = asyncio.ensure_future(coro)
    try:
        yield task
    finally:
        await stop(task)


async def stop(task: asyncio.Future[Any], within: float = 2.0) -> None:
    """Cancel `task` and wait until it has ended, cancelling again if it swallowed a cancel
    (Python 3.11's `asyncio.wait_for` drops one that arrives as its awaitable completes)."""
    async with asyncio.timeout(within):
        while not task.done():
            task.cancel()
            await asyncio.wait({task}, timeout=0.05)
    if not task.cancelled():
        task.exception()  # retrieved: a failure of the task is the test's to check
