"""The call-in desk: who is on air from the audience, and everything that follows from it.

The floor (pure, `agent.call_in.floor`), the caller's microphone grant, the session's audio input
and the Silero VAD that decides whether a press held speech all change together, under one lock,
with a turn id: a quick tap whose release arrives while the grant is still on its way, a client
retry, a caller leaving mid-grant, the maximum length, a caller who says nothing and a crash all end
in the same state — floor free, microphone revoked, VAD stopped, pages told. Before a caller is
heard, the on-air loop is pre-empted (its current line is cut), so the host never talks over a
caller.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from livekit import api as lkapi
from livekit import rtc
from livekit.agents import AgentSession, vad

from agent.call_in.floor import Floor, FloorError, FloorState, Turn, TurnEnd
from agent.settings import HostSettings
from agent.voice.sessions import SessionKeeper
from contract.room import RPC_CANCEL_TURN, RPC_END_TURN, RPC_START_TURN

log = logging.getLogger("radio24.call_in")

# After a heard turn the model's first audio arrives within ~0.1–0.2 s. Revoking the microphone
# and telling pages the floor is free cost the event loop ~20–30 ms, so for an answered turn they
# wait this long instead of standing in front of the answer (the caller's audio is already cut
# from the model at the release, so nothing they say in between reaches the air).
RELEASE_AFTER_ANSWER_SECONDS = 0.25
SLOW_REPLY_SECONDS = 1.0


class CallRefused(FloorError):
    code = "refused"


@dataclass
class _Call:
    id: int
    caller: str
    stop: asyncio.Event
    vad: asyncio.Task[float] | None = None
    speech: float = 0.0  # seconds of speech the VAD has heard so far


class _Steps:
    """Where a slow grant spent its time (logged only when it was slow)."""

    def __init__(self) -> None:
        self._began = self._last = time.monotonic()
        self._took: dict[str, float] = {}

    def mark(self, step: str) -> None:
        now = time.monotonic()
        self._took[step] = round(now - self._last, 3)
        self._last = now

    def report(self) -> None:
        if time.monotonic() - self._began > SLOW_REPLY_SECONDS:
            log.warning("slow grant", extra={"steps": self._took})


class CallInDesk:
    def __init__(
        self,
        *,
        room: rtc.Room,
        livekit: lkapi.LiveKitAPI,
        settings: HostSettings,
        floor: Floor,
        sessions: SessionKeeper,
        vad_model: vad.VAD,
        preempt: Callable[[], Awaitable[None]],
        turn_over: Callable[[Turn, bool], Awaitable[None]],
        show_floor: Callable[[FloorState], Awaitable[None]],
        banned: Callable[[str], Awaitable[bool]],
    ) -> None:
        self._room = room
        self._livekit = livekit
        self._settings = settings
        self.floor = floor
        self._sessions = sessions
        self._vad_model = vad_model
        self._preempt = preempt
        self._turn_over = turn_over
        self._show_floor = show_floor
        self._banned = banned
        self._lock = asyncio.Lock()
        self._call: _Call | None = None
        self._ids = 0
        self._releases: dict[asyncio.Task[None], Turn] = {}

    @property
    def held(self) -> bool:
        return self.floor.holder is not None

    # --- the RPC methods (names from LiveKit's push-to-talk example) -------------------------

    def register(self) -> None:
        me = self._room.local_participant
        me.register_rpc_method(RPC_START_TURN, self._rpc(self.start_turn))
        me.register_rpc_method(RPC_END_TURN, self._rpc(self.end_turn))
        me.register_rpc_method(RPC_CANCEL_TURN, self._rpc(self.cancel_turn))

    def _rpc(
        self, method: Callable[[str], Awaitable[dict[str, Any]]]
    ) -> Callable[[rtc.RpcInvocationData], Awaitable[str]]:
        async def handler(data: rtc.RpcInvocationData) -> str:
            began = time.monotonic()
            outcome = "ok"
            try:
                return json.dumps(await method(data.caller_identity))
            except FloorError as e:
                outcome = e.code
                raise rtc.RpcError(
                    rtc.RpcError.ErrorCode.APPLICATION_ERROR, str(e), json.dumps({"code": e.code})
                ) from None
            finally:
                # The caller's page gives up after its response timeout: a slow reply is news.
                took = time.monotonic() - began
                if took > SLOW_REPLY_SECONDS:
                    how = {"method": data.method, "outcome": outcome, "seconds": round(took, 2)}
                    log.warning("slow call-in reply", extra=how)

        return handler

    async def start_turn(self, caller: str) -> dict[str, Any]:
        steps = _Steps()
        try:
            return await self._start_turn(caller, steps)
        finally:
            steps.report()

    async def _start_turn(self, caller: str, steps: _Steps) -> dict[str, Any]:
        async with self._lock:
            steps.mark("lock")
            if self._call is not None and self._call.caller == caller:
                return self._held_reply(self.floor.state)  # a retry: the turn goes on
            if self.floor.holder is not None:
                self.floor.start(caller)  # raises FloorBusy
            if await self._is_banned(caller):
                raise CallRefused("you cannot call in")
            state = self.floor.start(caller)
            self._ids += 1
            call = _Call(self._ids, caller, asyncio.Event())
            self._call = call
            try:
                await self._preempt()
                steps.mark("preempt")
                self._open_input(caller)
                await self._grant(caller, allowed=True)
                steps.mark("grant")
                call.vad = asyncio.create_task(self._measure_speech(call))
            except Exception:
                log.exception("could not open the caller's microphone")
                turn = self.floor.cancel(caller)
                await self._close(call, turn)
                raise CallRefused("could not open your microphone") from None
            await self._show_floor(state)
            steps.mark("shown")
            return self._held_reply(state)

    async def end_turn(self, caller: str) -> dict[str, Any]:
        async with self._lock:
            return await self._finish(self.floor.end(caller))

    async def cancel_turn(self, caller: str) -> dict[str, Any]:
        async with self._lock:
            return await self._finish(self.floor.cancel(caller))

    async def caller_left(self, identity: str) -> None:
        async with self._lock:
            turn = self.floor.left(identity)
            if turn is not None:
                log.info("caller left mid-turn; floor freed")
                await self._finish(turn)

    async def expire(self) -> None:
        if self.floor.holder is None:
            return
        async with self._lock:
            call = self._call
            turn = self.floor.expire(heard=call is None or call.speech > 0)
            if turn is not None:
                if turn.how is TurnEnd.QUIET:
                    log.info("turn cut: the caller said nothing")
                else:
                    log.info("turn cut at the maximum length")
                await self._finish(turn)

    async def joined(self, identity: str) -> None:
        """A banned listener who rejoins (LiveKit keeps refreshing a connected participant's
        token) is removed from the room; when the ban cannot be checked they stay listening."""
        try:
            banned = await asyncio.wait_for(self._banned(identity), 2.0)
        except Exception:
            return
        if not banned:
            return
        log.info("banned listener removed from the room")
        with contextlib.suppress(Exception):
            await asyncio.wait_for(
                self._livekit.room.remove_participant(
                    lkapi.RoomParticipantIdentity(room=self._room.name, identity=identity)
                ),
                5.0,
            )

    def session_started(self, session: AgentSession) -> None:
        """A session that starts (renewed, replaced) while a caller holds the floor hears them."""
        if self._call is not None:
            self._open_input(self._call.caller)

    async def reconcile_grants(self) -> None:
        """A host that starts (perhaps after a crash) revokes every microphone but the holder's,
        so nobody is left on air with no floor and no time limit."""
        try:
            listing = await self._livekit.room.list_participants(
                lkapi.ListParticipantsRequest(room=self._room.name)
            )
        except Exception:
            log.warning("could not list participants to reconcile grants", exc_info=True)
            return
        for p in listing.participants:
            if p.identity in (self._settings.host_identity, self.floor.holder):
                continue
            if p.permission.can_publish or p.permission.can_publish_sources:
                log.info("revoking a stale microphone grant")
                await self._grant(p.identity, allowed=False)

    async def aclose(self) -> None:
        pending, self._releases = self._releases, {}
        for task in pending:
            task.cancel()
        async with self._lock:
            for turn in pending.values():  # a job that stops revokes at once
                await self._release(turn)
            call = self._call
            if call is not None:
                with contextlib.suppress(FloorError):
                    turn = self.floor.cancel(call.caller)
                    await self._close(call, turn)

    # --- one sequence for every way a turn ends ----------------------------------------------

    async def _finish(self, turn: Turn) -> dict[str, Any]:
        call = self._call
        if call is None or call.caller != turn.caller:
            return {"status": turn.how.value}
        enough = self._settings.min_speech_seconds
        # The caller waits for the answer: when the VAD has already heard enough speech, the
        # model gets the turn at once, before the VAD winds down and the bookkeeping.
        early = turn.keep and call.speech >= enough
        if early:
            self._mute_input(call)
            await self._turn_over(turn, True)
        speech = await self._stop_listening(call)
        heard = early or (turn.keep and speech >= enough)
        log.info(
            "caller turn ended",
            extra={"how": turn.how.value, "speech_seconds": round(speech, 2), "heard": heard},
        )
        if not early:
            await self._turn_over(turn, heard)
        if heard and self._sessions.session is not None and not self._sessions.offline:
            self._release_soon(turn, call.id)
        else:
            await self._release(turn)
        if self._sessions.session is None:
            return {"status": "off_air"}
        if not heard:
            return {"status": "no_speech" if turn.keep else turn.how.value}
        return {"status": "answered"}

    async def _close(self, call: _Call, turn: Turn) -> None:
        await self._stop_listening(call)
        await self._release(turn)

    def _mute_input(self, call: _Call) -> None:
        self._call = None
        session = self._sessions.session
        if session is not None:
            session.input.set_audio_enabled(False)
        call.stop.set()

    async def _stop_listening(self, call: _Call) -> float:
        """Close the session's input and stop the VAD; returns the seconds of speech heard."""
        self._mute_input(call)
        speech = call.speech
        if call.vad is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                speech = await asyncio.wait_for(asyncio.shield(call.vad), 2.0)
            call.vad.cancel()
        return speech

    def _release_soon(self, turn: Turn, call_id: int) -> None:
        async def later() -> None:
            await asyncio.sleep(RELEASE_AFTER_ANSWER_SECONDS)
            async with self._lock:
                if self._call is not None and self._call.caller == turn.caller:
                    return  # pressed again meanwhile: the new turn owns the grant
                await self._release(turn)

        task = asyncio.create_task(later(), name=f"call-in-release-{call_id}")
        self._releases[task] = turn
        task.add_done_callback(lambda t: self._releases.pop(t, None))

    async def _release(self, turn: Turn) -> None:
        """Revoke the microphone (a caller who left has none) and tell pages the floor is free."""
        if turn.how is not TurnEnd.LEFT:
            await self._grant(turn.caller, allowed=False)
        await self._show_floor(self.floor.state)

    def _held_reply(self, state: FloorState) -> dict[str, Any]:
        return {
            "state": "held",
            "max_seconds": self._settings.max_turn_seconds,
            "deadline": state.deadline.isoformat() if state.deadline else None,
        }

    async def _is_banned(self, caller: str) -> bool:
        try:
            return await asyncio.wait_for(self._banned(caller), 2.0)
        except Exception:
            # Fail closed: a ban that cannot be checked is not waived.
            log.warning("could not check the caller's ban; call refused", exc_info=True)
            raise CallRefused("call-in is unavailable right now, try again shortly") from None

    def _open_input(self, caller: str) -> None:
        session = self._sessions.session
        if session is None:
            return
        if not self._sessions.offline:
            with contextlib.suppress(RuntimeError):
                session.clear_user_turn()
        with contextlib.suppress(Exception):
            session.room_io.set_participant(caller)
        session.input.set_audio_enabled(True)

    async def _grant(self, identity: str, *, allowed: bool) -> None:
        permission = lkapi.ParticipantPermission(
            can_subscribe=True,
            can_publish=allowed,
            can_publish_data=True,
            can_publish_sources=[lkapi.TrackSource.MICROPHONE] if allowed else [],
        )
        try:
            await asyncio.wait_for(
                self._livekit.room.update_participant(
                    lkapi.UpdateParticipantRequest(
                        room=self._room.name, identity=identity, permission=permission
                    )
                ),
                5.0,
            )
        except Exception:
            if allowed:
                raise
            log.warning("could not revoke the microphone", exc_info=True)

    async def _measure_speech(self, call: _Call) -> float:
        """Seconds of speech Silero VAD hears on the caller's microphone until the call stops
        (kept up to date on `call.speech`)."""
        participant = self._room.remote_participants.get(call.caller)
        if participant is None:
            return 0.0
        audio = rtc.AudioStream.from_participant(
            participant=participant,
            track_source=rtc.TrackSource.SOURCE_MICROPHONE,
            sample_rate=16000,
        )
        stream = self._vad_model.stream()
        enough = self._settings.min_speech_seconds

        async def feed() -> None:
            async for ev in audio:
                stream.push_frame(ev.frame)

        async def count() -> None:
            async for ev in stream:
                if ev.type == vad.VADEventType.INFERENCE_DONE and ev.probability >= 0.5:
                    call.speech += sum(f.duration for f in ev.frames)

        feeder = asyncio.create_task(feed())
        counter = asyncio.create_task(count())
        try:
            await call.stop.wait()
            if call.speech < enough:
                await asyncio.sleep(0.15)  # the last frames of the press may still hold speech
            feeder.cancel()
            stream.end_input()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(counter, 1.0)
        finally:
            feeder.cancel()
            counter.cancel()
            await asyncio.gather(feeder, counter, return_exceptions=True)
            await audio.aclose()
            await stream.aclose()
        return call.speech
