"""The on-air loop: the one sequence that turns the director's decisions into sound.

One step at a time: wait until the host may speak (a session is up, nobody holds the floor,
someone is listening, the producers' silence gap has passed), then do exactly one thing — answer
the caller who just spoke, renew the session, air music (`playout`), or ask the director for the
next cue and voice it — report to the director what actually aired, and log it. The call-in desk
pre-empts the loop: it cancels the current step (cutting the host) before a caller is heard, and
nothing starts while the floor is held. As-aired records go to one ordered writer, off the
step's path (`record`); who is listening is `presence`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Coroutine
from typing import Any

from livekit import rtc
from livekit.agents import AgentSession, AgentStateChangedEvent, SpeechCreatedEvent
from livekit.agents.voice import SpeechHandle

from agent.audio.transmitter import Transmitter
from agent.call_in.desk import CallInDesk
from agent.call_in.floor import Turn
from agent.on_air import lines
from agent.on_air.display import Display
from agent.on_air.playout import Playout, track
from agent.on_air.presence import Presence
from agent.on_air.record import AsAiredRecord
from agent.settings import HostSettings
from agent.store.aired import AiredLog
from agent.store.posts import Post, PostQueue
from agent.voice.sessions import SessionKeeper
from agent.voice.voice import Aired, Airing, Line, Voice
from programme.director import Cue, CueKind, ProgramDirector, StationState
from programme.music import MusicPlanner

log = logging.getLogger("radio24.on_air")

TICK_SECONDS = 0.25
STEP_STOP_SECONDS = 2.0  # a step cut by the loop's own stop, to hand over what of it aired


class OnAirLoop:
    def __init__(
        self,
        *,
        room: rtc.Room,
        settings: HostSettings,
        director: ProgramDirector,
        sessions: SessionKeeper,
        voice: Voice,
        posts: PostQueue,
        aired: AiredLog,
        display: Display,
        language: str,
        transmitter: Transmitter | None = None,
        planner: MusicPlanner | None = None,
    ) -> None:
        self._settings = settings
        self.director = director
        self._sessions = sessions
        self._voice = voice
        self._posts = posts
        self._display = display
        self._language = language.split("-")[0]

        self._step: asyncio.Task[None] | None = None
        # Short side tasks (ban checks, a caller leaving, beds, now playing): owned here,
        # cancelled at stop.
        self._side_tasks: set[asyncio.Future[Any]] = set()
        # A host that just joined (perhaps taking over from a dead one) speaks at once.
        self._quiet_since = time.monotonic() - 3600
        self._wake = asyncio.Event()
        self._instructions: str | None = None
        self._current_post: Post | None = None
        # A caller's answer on its way: the handle the session creates on commit.
        self._answer: asyncio.Future[SpeechHandle] | None = None
        self._thank_caller = False
        self._transmitter = transmitter
        self._segue = False  # the last step ended with music: the next one follows at once
        self._record = AsAiredRecord(
            aired=aired,
            posts=posts,
            director=director,
            model=settings.realtime_model,
            talk_aired=self._talk_aired,
        )
        self._playout = Playout(
            director=director,
            voice=voice,
            record=self._record,
            display=display,
            spawn=self._spawn,
            fallback=self._fallback_line,
            transmitter=transmitter,
            planner=planner,
        )
        self._presence = Presence(
            room=room,
            host_identity=settings.host_identity,
            sessions=sessions,
            wake=self._wake.set,
            spawn=self._spawn,
        )

    # --- wiring ------------------------------------------------------------------------------

    @property
    def desk(self) -> CallInDesk | None:
        return self._presence.desk

    @desk.setter
    def desk(self, desk: CallInDesk | None) -> None:
        self._presence.desk = desk

    @property
    def planner(self) -> MusicPlanner | None:
        return self._playout.planner

    @property
    def aired_lines(self) -> int:
        return self._record.aired_lines

    def wire(self, session: AgentSession) -> None:
        """Handlers for a new AgentSession (the session keeper calls this for each one)."""
        self._record.new_session()
        session.on("speech_created", self._on_speech_created)
        session.on("agent_state_changed", self._on_agent_state)
        session.on("user_input_transcribed", self._record.on_user_transcript)
        session.on("session_usage_updated", self._record.on_usage)

    def next_post(self) -> str | None:
        """For the host's `read_next_post` tool."""
        return self._current_post.quoted if self._current_post else None

    def start(self, recent: list[str]) -> None:
        self._record.recent.extend(recent)
        self._presence.start()

    def stop(self) -> None:
        self._presence.stop()
        for task in list(self._side_tasks):
            task.cancel()

    def _spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> None:
        """A side task off the step's path; a failure is logged, never raised."""
        task = asyncio.ensure_future(coro)
        self._side_tasks.add(task)

        def done(t: asyncio.Future[Any]) -> None:
            self._side_tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.warning("on-air side task failed", extra={"task": what}, exc_info=t.exception())

        task.add_done_callback(done)

    # --- the loop ----------------------------------------------------------------------------

    async def run(self) -> None:
        while True:
            await self._may_speak()
            step = self._step = asyncio.create_task(self._one_step(), name="on-air-step")
            try:
                await asyncio.wait({step})  # a pre-empted (cancelled) step does not raise here
            except asyncio.CancelledError:
                # The loop itself is being stopped: the cut step hands its record (and its
                # post, marked aired or put back) to the writer before the job flushes it.
                step.cancel()
                await asyncio.wait({step}, timeout=STEP_STOP_SECONDS)
                raise
            finally:
                self._step = None
                self._quiet_since = time.monotonic()
            if not step.cancelled() and step.exception() is not None:
                log.error("on-air step failed", exc_info=step.exception())
                await asyncio.sleep(0.5)

    async def preempt(self) -> None:
        """Cut whatever the host is doing and wait until it has stopped (a caller pressed)."""
        step = self._step
        self._answer_cancelled()
        if self._transmitter is not None:
            self._transmitter.hush()  # music and bed out before the caller is on air
        session = self._sessions.session
        if session is not None:
            with contextlib.suppress(Exception):
                session.interrupt(force=True)
        if step is None or step.done():
            return
        step.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await step

    async def _may_speak(self) -> None:
        while True:
            # No session (starting, renewing, replaced after a fatal error) does not stop the
            # host: the voice then speaks straight to the transmitter.
            ready = (self.desk is None or not self.desk.held) and self.listener_count() > 0
            answer_due = self._answer is not None or self._thank_caller
            gap = self.silence_gap if not (answer_due or self._segue) else 0.0
            if ready and time.monotonic() - self._quiet_since >= gap:
                return
            self._wake.clear()
            # asyncio.wait, not wait_for: on 3.11 wait_for drops a cancel that arrives as the
            # wake event is set, and the loop ran on after the job had stopped it.
            waiter = asyncio.ensure_future(self._wake.wait())
            try:
                await asyncio.wait({waiter}, timeout=0.1)
            finally:
                waiter.cancel()

    async def _one_step(self) -> None:
        self._segue = False
        if self._answer is not None or self._thank_caller:
            await self._answer_caller()
            return
        if self._sessions.renewal_due():
            await self._sessions.renew(list(self._record.recent)[-6:])
            self._instructions = None
            return
        aired = await self._playout.air(self.state, self._air_next_cue)
        if aired is not None:
            self._segue = aired == "music"
            return
        await self._air_next_cue()

    async def _answer_caller(self) -> None:
        answer, self._answer = self._answer, None
        thank, self._thank_caller = self._thank_caller, False
        aired: Aired | None = None
        if answer is not None:
            try:
                handle = await asyncio.wait_for(answer, self._settings.fallback_after_seconds)
                aired = await self._voice.answer(handle)
            except TimeoutError:
                log.warning("the model did not answer the caller in time; offline voice thanks")
                thank = True
        if aired is not None:
            self._record.line(aired, None)
            thank = thank or not aired.complete  # the model failed mid-answer
        if thank:
            thanks = await self._voice.say(lines.caller_thanks(self._language))
            self._record.line(thanks, None)

    async def _air_next_cue(self, cue: Cue | None = None) -> None:
        """The director's next cue (or `cue`, a station ID whose ident has just played).

        A post whose reading had begun on air counts as aired even when it is cut (by a press,
        a preempt, a failure): a listener must never hear the same post twice. A post cut
        before any of it aired goes back and airs next."""
        state = self.state()
        await self._follow_instructions(state)
        if cue is None:
            cue = self.director.cue(state)
        post = self._posts.take() if cue.kind is CueKind.READ_POST else None
        airing = Airing()
        try:
            if post is not None and not await self._posts.still_queued(post):
                post = None
            if cue.kind is CueKind.READ_POST and post is None:
                cue = self.director.cue(StationState(**{**state.__dict__, "posts_waiting": 0}))
            opens = {"opens": cue.segment.id} if cue.opens else {}
            log.info("on air", extra={"cue": cue.kind.value, "post": post is not None, **opens})
            self._current_post = post
            fallback = lines.joined(cue.back_announce, self._fallback_line(cue, post))
            line = Line(cue.instructions, fallback, post)
            aired = await self._voice.speak(line, airing)
        except BaseException:
            self._record.cut(airing, post)
            raise
        finally:
            self._current_post = None
        if aired.complete:
            self.director.aired(cue)
        if aired.text and cue.announces and self.planner is not None:
            self.planner.announced()
        if post is not None and not airing.on_air and not aired.complete:
            self._posts.put_back(post)  # nothing of it aired: it airs next time
            post = None
        if aired.text or post is None:
            self._record.line(aired, post, lead=cue.back_announce)
        else:
            self._record.cut(airing, post)  # aired, its words not in yet

    async def _follow_instructions(self, state: StationState) -> None:
        """Standing instructions follow the segment and the clock, not only producers' edits."""
        host = self._sessions.host
        if host is None or self._sessions.offline:
            return
        text = self.director.instructions(state)
        if text == self._instructions:
            return
        try:
            await asyncio.wait_for(host.update_instructions(text), 3.0)
            self._instructions = text
        except Exception:
            log.warning("could not update the model's instructions", exc_info=True)

    def programme_changed(self) -> None:
        self._instructions = None
        self._display.forget()

    # --- music and what aired ----------------------------------------------------------------

    async def warm_media(self) -> None:
        """Prepare the beds and idents before they are needed (a new job starts cold)."""
        await self._playout.warm_media()

    def replace_library(self, planner: MusicPlanner | None) -> None:
        """A producer's edit changed the media folder: plan from the new library."""
        self._playout.replace_library(planner)

    def _talk_aired(self, segment: str, seconds: float) -> None:
        if self.planner is not None:
            self.planner.aired_talk(segment, seconds)

    async def run_writer(self) -> None:
        """The as-aired writer: records in the order they aired; a failure never stops it."""
        await self._record.run()

    async def flush_writes(self) -> None:
        """Return once every record handed to the writer is written (or spooled)."""
        await self._record.flush()

    async def turn_over(self, turn: Turn, heard: bool) -> None:
        """The desk's report of a finished turn: the model answers, or the offline voice does."""
        session = self._sessions.session
        if heard and session is not None and not self._sessions.offline:
            self._answer = asyncio.get_running_loop().create_future()
            try:
                session.commit_user_turn()
            except RuntimeError:  # the session is closing (a fatal model error): thank them
                log.warning("could not hand the caller's turn to the model")
                self._answer = None
                self._thank_caller = True
        elif heard:
            self._thank_caller = True
        elif session is not None and not self._sessions.offline:
            with contextlib.suppress(RuntimeError):
                session.clear_user_turn()
        self._quiet_since = time.monotonic()
        self._wake.set()
        self._record.caller_turn(turn)

    def _answer_cancelled(self) -> None:
        answer, self._answer = self._answer, None
        if answer is not None and not answer.done():
            answer.cancel()
        self._thank_caller = False

    # --- session events ----------------------------------------------------------------------

    def _on_speech_created(self, ev: SpeechCreatedEvent) -> None:
        answer = self._answer
        if answer is not None and not answer.done() and ev.source != "say":
            answer.set_result(ev.speech_handle)

    def _on_agent_state(self, ev: AgentStateChangedEvent) -> None:
        self._voice.agent_state(ev.new_state)

    # --- the room ----------------------------------------------------------------------------

    @property
    def silence_gap(self) -> float:
        """The producers' pause before the host carries on (station.yaml), live."""
        return float(self.director.programme.station.silence_gap_seconds)

    def listener_count(self) -> int:
        return self._presence.listener_count()

    def state(self) -> StationState:
        return StationState(
            posts_waiting=self._posts.waiting,
            floor_held=self.desk is not None and self.desk.held,
            listener_count=self.listener_count(),
            recent=tuple(self._record.recent),
            played=tuple(track(i) for i in self.planner.unannounced()) if self.planner else (),
        )

    async def watch(self) -> None:
        """Pages' view and the floor's clock, a few times a second."""
        while True:
            try:
                count = self.listener_count()
                await self._display.listeners(count)
                with contextlib.suppress(Exception):
                    await self._display.segment(self.director.lineup())
                if self.desk is not None:
                    await self.desk.expire()
                if count == 0 and self._step is not None:
                    await self.preempt()  # nobody is listening: spend nothing
            except Exception:
                log.warning("on-air watch failed", exc_info=True)
            await asyncio.sleep(TICK_SECONDS)

    def _fallback_line(self, cue: Cue, post: Post | None) -> str:
        return lines.fallback_line(
            cue,
            post,
            language=self._language,
            recent=self._record.recent,
            station_name=self.director.programme.station.name,
        )
