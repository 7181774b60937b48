"""The session keeper: the AgentSession's life, from start to the next one.

A 24-hour host outlives any one AgentSession: a fatal Realtime error closes it, and even a
healthy one keeps every event and history item for its lifetime (livekit-agents 1.8.9). The
keeper starts a session, starts the next one when it closes by itself, and renews it on a
schedule with a bounded context: a short summary of what aired recently rather than the whole
history. The plugin's own socket recycling (`max_session_duration`) stays below OpenAI's
60-minute cap. Every session speaks through a fresh `VoiceFeed` of the one transmitter, so the
station keeps one host track however many sessions come and go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

from livekit import rtc
from livekit.agents import (
    NOT_GIVEN,
    AgentSession,
    APIConnectOptions,
    CloseEvent,
    CloseReason,
    ErrorEvent,
    llm,
    room_io,
)

from agent.audio.transmitter import Transmitter
from agent.settings import HostSettings
from agent.voice.host import Host

log = logging.getLogger("radio24.sessions")

SUMMARY_HEADER = "What you said on air most recently (for continuity; do not repeat it):\n"


class SessionKeeper:
    def __init__(
        self,
        *,
        room: rtc.Room,
        settings: HostSettings,
        transmitter: Transmitter,
        tts: Any,
        make_host: Callable[[llm.ChatContext | None], Host],
        wire: Callable[[AgentSession], None],
    ) -> None:
        self._room = room
        self._settings = settings
        self._transmitter = transmitter
        self._tts = tts
        self._make_host = make_host
        self._wire = wire
        self.session: AgentSession | None = None
        self.host: Host | None = None
        self.ready = asyncio.Event()
        self.started_at = 0.0
        self.renewals = 0
        self._stopping = False
        self._renewing = False
        self._restart: asyncio.Task[None] | None = None
        self._renewal: asyncio.Task[None] | None = None
        self._started: list[Callable[[AgentSession], None]] = []

    @property
    def offline(self) -> bool:
        return self._settings.offline

    def on_start(self, started: Callable[[AgentSession], None]) -> None:
        """Call `started` with every session once it is on (e.g. a caller on the floor while a
        session was being replaced must be heard by the new one)."""
        self._started.append(started)

    def renewal_due(self) -> bool:
        age = time.monotonic() - self.started_at
        return self.session is not None and age > self._settings.session_max_minutes * 60

    async def start(self, summary: list[str] | None = None) -> None:
        session: AgentSession = AgentSession(
            llm=self._model() or NOT_GIVEN,
            tts=self._tts,
            vad=None,
            turn_handling={"turn_detection": "manual"},
            aec_warmup_duration=None,
            user_away_timeout=None,
        )
        session.output.audio = self._transmitter.feed()
        host = self._make_host(_summary_context(summary or []))
        self._wire(session)
        session.on("close", self._on_close)
        session.on("error", self._on_error)
        await session.start(
            host,
            room=self._room,
            room_options=room_io.RoomOptions(
                text_input=False,
                audio_output=False,  # the transmitter owns the host's one track
                close_on_disconnect=False,
                audio_input=room_io.AudioInputOptions(pre_connect_audio=False),
            ),
            session_host=False,
            record=False,
        )
        session.input.set_audio_enabled(False)
        self.session, self.host = session, host
        self.started_at = time.monotonic()
        for started in self._started:
            try:
                started(session)
            except Exception:  # the session is on: a listener's failure must not restart it
                log.exception("a session-start listener failed")
        self.ready.set()
        log.info("host session started", extra={"mode": "offline" if self.offline else "realtime"})

    async def renew(self, summary: list[str]) -> None:
        """Close the session and start a fresh one that carries only `summary`.

        A caller's press cancels the on-air step that called this, but not the renewal: a
        session cut half-way through its start would keep hold of the room's audio input. The
        renewal goes on in its own task; a later call waits for that one."""
        if self._renewal is None or self._renewal.done():
            if self.session is None:
                return
            self._renewal = asyncio.create_task(self._renew(summary), name="renew")
        await asyncio.shield(self._renewal)

    async def _renew(self, summary: list[str]) -> None:
        session = self.session
        if session is None:
            return
        self._renewing = True
        self.ready.clear()
        try:
            await _close(session)
            await self._start_with_retries(summary)
            self.renewals += 1
            log.info("host session renewed", extra={"renewals": self.renewals})
        finally:
            self._renewing = False

    async def aclose(self) -> None:
        self._stopping = True
        for task in (self._restart, self._renewal):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        session, self.session = self.session, None
        self.ready.clear()
        if session is not None:
            await _close(session)

    def _model(self) -> llm.RealtimeModel | None:
        if self.offline:
            return None
        from livekit.plugins import openai
        from openai.types.realtime.realtime_truncation_retention_ratio import (
            RealtimeTruncationRetentionRatio,
        )

        s = self._settings
        key = s.openai_api_key
        return openai.realtime.RealtimeModel(
            model=s.realtime_model,
            voice=s.realtime_voice,
            api_key=key.get_secret_value() if key else None,
            base_url=s.openai_base_url or NOT_GIVEN,  # None would override OpenAI's URL
            # The plugin recycles its socket this often (below OpenAI's 60-minute cap) and
            # replays the context each time: `truncation` keeps that context bounded.
            max_session_duration=s.realtime_socket_minutes * 60,
            truncation=RealtimeTruncationRetentionRatio(
                type="retention_ratio", retention_ratio=0.5
            ),
            conn_options=APIConnectOptions(
                max_retry=s.realtime_max_retry,
                retry_interval=s.realtime_retry_interval,
                timeout=10.0,
            ),
        )

    def _on_error(self, ev: ErrorEvent) -> None:
        recoverable = getattr(ev.error, "recoverable", True)
        log.warning("host session error", extra={"recoverable": recoverable})
        # AgentSession tolerates a few unrecoverable model errors and then sits on a dead
        # model (the plugin stops reconnecting after a failed renewal): start a fresh session.
        if not recoverable and self.session is not None:
            self.replace(self.session)

    def replace(self, session: AgentSession) -> None:
        """Start a fresh session in place of `session` (if it is still the current one): for a
        session that has stopped playing anything without reporting an error."""
        if self._renewing or self._stopping or session is not self.session:
            return
        if self._restart is None or self._restart.done():
            log.warning("host session stuck; replacing it")
            self._restart = asyncio.create_task(self._replace(session), name="replace")

    async def _replace(self, session: AgentSession) -> None:
        self._renewing = True
        self.ready.clear()
        try:
            await _close(session)
            await self._start_with_retries([])
        finally:
            self._renewing = False

    def _on_close(self, ev: CloseEvent) -> None:
        if ev.error is not None or not self._renewing:
            log.warning("host session closed", extra={"reason": str(ev.reason)})
        if self._renewing or self._stopping or ev.reason == CloseReason.JOB_SHUTDOWN:
            return
        self.session = None
        self.ready.clear()
        if self._restart is None or self._restart.done():
            self._restart = asyncio.create_task(self._start_with_retries([]), name="restart")

    async def _start_with_retries(self, summary: list[str]) -> None:
        delay = 0.5
        while not self._stopping:
            try:
                await self.start(summary)
                return
            except Exception:
                log.exception("could not start a host session; retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)


async def _close(session: AgentSession) -> None:
    with contextlib.suppress(Exception):
        await session.aclose()
    # livekit-agents 1.8.9: after the realtime model ends a session with an error, the session's
    # own close stops half-way (its activity's teardown re-raises that error) and leaves its
    # RoomIO open, with its tasks, for the life of the job: five more tasks after every fatal
    # model error in the simulated day. Its public `room_io` is there only while it is open.
    try:
        left_open = session.room_io
    except RuntimeError:
        return
    log.warning("the closed session left its room input open; closing it")
    with contextlib.suppress(Exception):
        await left_open.aclose()


def _summary_context(summary: list[str]) -> llm.ChatContext | None:
    """A new session's memory: a few recent lines as one assistant note, not the history."""
    lines = [line.strip() for line in summary if line.strip()]
    if not lines:
        return None
    ctx = llm.ChatContext.empty()
    ctx.add_message(role="assistant", content=SUMMARY_HEADER + "\n".join(f"- {x}" for x in lines))
    return ctx
