"""The on-air loop: the one sequence that turns the director's decisions into sound.

One step at a time: wait until the host may speak (a session is up, nobody holds the floor,
someone is listening, the producers' silence gap has passed), then do exactly one thing — answer
the caller who just spoke, renew the session, or ask the director for the next cue and voice it —
report to the director what actually aired, and log it. The call-in desk pre-empts the loop: it
cancels the current step (cutting the host) before a caller is heard, and nothing starts while
the floor is held. As-aired records go to one ordered writer, off the step's path.

With a media library (station.yaml `media:`) a step may be music instead of talk: where the
director has nothing time-critical (an ID, a new segment, a post), the music planner decides
between talk and a track or jingle, with room up to the next ID minute or the segment's end. A
station ID opens with an ident, and the segment's bed plays under the talk. The host brings a
track in over its intro when its length is known (else in a line just before it), and the next
talk break names what played.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from livekit import rtc
from livekit.agents import (
    AgentSession,
    AgentStateChangedEvent,
    SessionUsageUpdatedEvent,
    SpeechCreatedEvent,
    UserInputTranscribedEvent,
)
from livekit.agents.voice import SpeechHandle

from agent.audio.prepare import MediaError
from agent.audio.samples import SAMPLE_RATE
from agent.audio.transmitter import Transmitter
from agent.call_in.desk import CallInDesk
from agent.call_in.floor import Turn
from agent.display import Display
from agent.settings import HostSettings
from agent.store.aired import AiredLog
from agent.store.posts import Post, PostQueue
from agent.voice.sessions import SessionKeeper
from agent.voice.voice import Aired, Airing, Line, Voice
from programme.director import Cue, CueKind, ProgramDirector, StationState, Track
from programme.media import MediaItem
from programme.model import Segment
from programme.music import Introduction, MusicPlanner, Play, introduction

log = logging.getLogger("radio24.on_air")

TICK_SECONDS = 0.25
RECENT_LINES = 12

# What the offline voice says where the model would improvise.
CALLER_THANKS = {
    "ja": "お電話ありがとうございます。いただいた声は、番組で大切に受け取りました。",
    "en": "Thanks for calling in. We heard you on air.",
}
POST_INTRO = {"ja": "{author}さんからのおたよりです。", "en": "A post from {author}."}


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
        self._room = room
        self._settings = settings
        self.director = director
        self._sessions = sessions
        self._voice = voice
        self._posts = posts
        self._aired = aired
        self._display = display
        self._language = language.split("-")[0]
        self.desk: CallInDesk | None = None

        self._step: asyncio.Task[None] | None = None
        # Short side tasks (ban checks, a caller leaving, beds, now playing): owned here,
        # cancelled at stop.
        self._side_tasks: set[asyncio.Future[Any]] = set()
        self._beds: dict[str, Any] = {}  # prepared beds by name (a few files)
        self._beds_loading: set[str] = set()
        # A host that just joined (perhaps taking over from a dead one) speaks at once.
        self._quiet_since = time.monotonic() - 3600
        self._wake = asyncio.Event()
        self._recent: deque[str] = deque(maxlen=RECENT_LINES)
        self._instructions: str | None = None
        self._current_post: Post | None = None
        # A caller's answer on its way: the handle the session creates on commit.
        self._answer: asyncio.Future[SpeechHandle] | None = None
        self._thank_caller = False
        self._caller_ref: Any = None
        self._usage: dict[str, tuple[int, int, int, int]] = {}
        self._writes: asyncio.Queue[Callable[[], Awaitable[Any]]] = asyncio.Queue()
        self.aired_lines = 0
        self._transmitter = transmitter
        self.planner = planner
        self._ident_for: datetime | None = None  # the ID minute whose ident has aired
        self._segue = False  # the last step ended with music: the next one follows at once
        self._bed_run: tuple[MediaItem, str, datetime, float] | None = None

    # --- wiring ------------------------------------------------------------------------------

    def wire(self, session: AgentSession) -> None:
        """Handlers for a new AgentSession (the session keeper calls this for each one)."""
        self._usage.clear()  # usage is cumulative per session
        session.on("speech_created", self._on_speech_created)
        session.on("agent_state_changed", self._on_agent_state)
        session.on("user_input_transcribed", self._on_user_transcript)
        session.on("session_usage_updated", self._on_usage)

    def next_post(self) -> str | None:
        """For the host's `read_next_post` tool."""
        return self._current_post.quoted if self._current_post else None

    def start(self, recent: list[str]) -> None:
        self._recent.extend(recent)
        self._room.on("participant_connected", self._on_joined)
        self._room.on("participant_disconnected", self._on_left)

    def stop(self) -> None:
        self._room.off("participant_connected", self._on_joined)
        self._room.off("participant_disconnected", self._on_left)
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
                step.cancel()  # the loop itself is being stopped
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
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    async def _one_step(self) -> None:
        self._segue = False
        if self._answer is not None or self._thank_caller:
            await self._answer_caller()
            return
        if self._sessions.renewal_due():
            await self._sessions.renew(list(self._recent)[-6:])
            self._instructions = None
            return
        if await self._air_music():
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
            self._log(aired, None)
            thank = thank or not aired.complete  # the model failed mid-answer
        if thank:
            thanks = await self._voice.say(CALLER_THANKS.get(self._language, CALLER_THANKS["en"]))
            self._log(thanks, None)

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
            fallback = _joined(cue.back_announce, self._fallback_line(cue, post))
            line = Line(cue.instructions, fallback, post)
            aired = await self._voice.speak(line, airing)
        except BaseException:
            self._log_cut(airing, post)
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
            self._log(aired, post, lead=cue.back_announce)
        else:
            self._log_cut(airing, post)  # aired, its words not in yet

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

    # --- music, idents and the bed -----------------------------------------------------------

    async def _air_music(self) -> bool:
        """Music instead of talk when the planner says so; True if this step aired something.

        Before a station ID its ident plays and the spoken ID follows in the same step (that
        cue, not a new one: the ident's seconds must not let a later cue take its place).
        Before talk the segment's bed comes up under it.
        """
        if self.planner is None or self._transmitter is None or not self.planner.library.items:
            return False
        cue = self.director.cue(self.state())
        if cue.kind is CueKind.STATION_ID and cue.id_minute != self._ident_for:
            ident = self.planner.ident(cue.segment)
            if ident is not None:
                await self._bed_for(None)
                if await self._play(ident, cue.segment):
                    self._ident_for = cue.id_minute
                    await self._bed_for(cue.segment)
                    await self._air_next_cue(cue)
                    return True
        if cue.kind is CueKind.CONTINUE:
            choice = self.planner.next_item(cue.segment, self.director.next_event())
            if isinstance(choice, Play):
                log.info("on air", extra={"cue": "music", "kind": choice.item.kind})
                # Prepared while the bed still plays: a cold track takes seconds on a busy
                # machine, dead air if the bed were already out (`_play` reports a bad file).
                with contextlib.suppress(MediaError, OSError):
                    await self._transmitter.prepared(choice.item.path)
                await self._bed_for(None)
                if await self._play(choice.item, cue.segment, introduce=True):
                    self._segue = True
                    return True
        await self._bed_for(cue.segment)
        return False

    async def _play(self, item: MediaItem, segment: Segment, *, introduce: bool = False) -> bool:
        """Air one file to its end (a press cancels the step, which fades it out); log it.
        False if the file cannot air (it is skipped for the planner's repeat window).

        `introduce`: the host brings a track in, over its intro or just before it."""
        assert self._transmitter is not None and self.planner is not None
        try:
            samples = await self._transmitter.prepared(item.path)
        except (MediaError, OSError) as exc:
            log.warning("media file skipped", extra={"file": item.name, "why": str(exc)})
            self.planner.aired(segment.id, item, self.director.lineup().at, 0.0)
            return False
        intro = introduction(item) if introduce else None
        if intro is not None and not intro.over:
            cue = self.director.track_cue(_track(item), intro.seconds, over=False)
            talk_up = Line(cue.instructions, self._fallback_line(cue, None))
            self._log(await self._voice.speak(talk_up), None)
        started, at, t0 = _now(), self.director.lineup().at, time.monotonic()
        self._show_playing(item)
        over = None
        if intro is not None and intro.over:
            over = asyncio.create_task(self._talk_over(item, intro, t0), name="intro-line")
        try:
            await self._transmitter.play(samples)
        finally:
            if over is not None:
                if not over.done():
                    over.cancel()  # the track ended first (or a caller pressed): the line too
                    await asyncio.wait({over}, timeout=2.0)
                if over.done() and not over.cancelled() and over.exception() is not None:
                    log.warning("the line over the intro failed", exc_info=over.exception())
            seconds = min(time.monotonic() - t0, len(samples) / SAMPLE_RATE)
            self.planner.aired(segment.id, item, at, seconds)
            self._log_music(item, segment.id, started, seconds)
            self._show_playing(None)
        return True

    async def _talk_over(self, item: MediaItem, intro: Introduction, t0: float) -> None:
        """The host's line over the track's intro, from `lead_in` into the track. The track
        stays ducked while the voice lasts; a line still running at `cut_at` is cut, so the
        host never talks over the vocals for long (the track itself plays on)."""
        await asyncio.sleep(max(0.0, t0 + intro.lead_in - time.monotonic()))
        cue = self.director.track_cue(_track(item), intro.seconds, over=True)
        line = Line(cue.instructions, self._fallback_line(cue, None), over_music=True)
        speak = asyncio.ensure_future(self._voice.speak(line))
        try:
            aired = await asyncio.wait_for(speak, max(0.0, t0 + intro.cut_at - time.monotonic()))
        except TimeoutError:
            log.info("the line over the intro ran into the vocals; cut", extra={"file": item.name})
            return
        self._log(aired, None, over_music=True)

    async def _bed_for(self, segment: Segment | None) -> None:
        """The segment's bed under the talk (None: no bed), and its run in the as-aired log."""
        assert self._transmitter is not None and self.planner is not None
        item = self.planner.bed(segment) if segment is not None else None
        run = self._bed_run
        if run is not None and (item is None or item.name != run[0].name):
            self._bed_run = None
            self._log_music(run[0], run[1], run[2], time.monotonic() - run[3])
        if item is None:
            self._transmitter.set_bed(None)
            return
        samples = self._beds.get(item.name)
        if samples is None:
            # Never hold the talk for a bed: it is prepared in the background (seconds for a
            # new job, e.g. a takeover, on a loaded machine) and comes up at a later step.
            if item.name not in self._beds_loading:
                self._beds_loading.add(item.name)
                self._spawn(self._load_bed(item), "bed")
            return
        self._transmitter.set_bed(samples, key=item.name)
        if self._bed_run is None:
            assert segment is not None
            self._bed_run = (item, segment.id, _now(), time.monotonic())

    async def _load_bed(self, item: MediaItem) -> None:
        assert self._transmitter is not None
        try:
            self._beds[item.name] = await self._transmitter.prepared(item.path)
        except (MediaError, OSError) as exc:
            log.warning("media file skipped", extra={"file": item.name, "why": str(exc)})
        finally:
            self._beds_loading.discard(item.name)

    async def warm_media(self) -> None:
        """Prepare the beds and idents before they are needed (a new job starts cold)."""
        if self.planner is None or self._transmitter is None:
            return
        for item in self.planner.library.items:
            if item.kind in ("bed", "ident", "jingle"):
                with contextlib.suppress(MediaError, OSError):
                    samples = await self._transmitter.prepared(item.path)
                    if item.kind == "bed":
                        self._beds[item.name] = samples

    def _log_music(self, item: MediaItem, segment: str, started: datetime, seconds: float) -> None:
        async def write() -> None:
            await self._aired.music(
                file=item.name,
                title=item.title,
                artist=item.artist or None,
                segment=segment,
                started_at=started,
                duration_seconds=seconds,
            )

        self._writes.put_nowait(write)

    def _show_playing(self, item: MediaItem | None) -> None:
        """Pages' "now playing", off the step's path (a cut must not wait for it)."""
        self._spawn(self._display.now_playing(item), "now-playing")

    def replace_library(self, planner: MusicPlanner | None) -> None:
        """A producer's edit changed the media folder: plan from the new library."""
        if planner is None or self.planner is None:
            self.planner = planner
        else:
            self.planner.replace_library(planner.library)

    # --- what aired --------------------------------------------------------------------------

    def _log(
        self, aired: Aired, post: Post | None, *, lead: str = "", over_music: bool = False
    ) -> None:
        """`lead`: a back-announce said before the line; `over_music`: said over a track
        (its time is the track's in the music share, not talk)."""
        if not aired.text:
            return
        segment = self.director.on_air_segment().id
        self._count(aired, segment, lead=lead, over_music=over_music)

        async def write() -> None:
            await self._write_line(aired, segment, post)

        self._writes.put_nowait(write)

    def _log_cut(self, airing: Airing, post: Post | None) -> None:
        """A line that was cut: logged once the model's words up to the cut are in (off the
        step's path: a press must not wait for them). Its post, if any of the line aired,
        is marked aired with it; otherwise the post goes back to the front of the queue."""
        if not airing.on_air:
            if post is not None:
                self._posts.put_back(post)
            return
        segment = self.director.on_air_segment().id

        async def write() -> None:
            aired = await airing.heard()
            if aired is None or not (aired.text or post):
                return  # nothing to log: no words known, no post to mark
            self._count(aired, segment)
            await self._write_line(aired, segment, post)

        self._writes.put_nowait(write)

    def _count(
        self, aired: Aired, segment: str, *, lead: str = "", over_music: bool = False
    ) -> None:
        self.aired_lines += 1
        if lead and aired.text.startswith(lead):
            # Two things the listener heard: the line's rotation must still see the line itself.
            self._recent.extend((lead[:120], aired.text[len(lead) :].strip()[:120]))
        elif aired.text:
            self._recent.append(aired.text[:120])
        if self.planner is not None and not over_music:
            self.planner.aired_talk(segment, (aired.ended - aired.started).total_seconds())

    async def _write_line(self, aired: Aired, segment: str, post: Post | None) -> None:
        ref = await self._aired.host_utterance(
            text=aired.text,
            segment=segment,
            mode=aired.mode,
            started_at=aired.started,
            ended_at=aired.ended,
            interrupted=aired.interrupted,
        )
        if post is not None:
            await self._posts.aired(post, ref)

    async def run_writer(self) -> None:
        """The as-aired writer: records in the order they aired; a failure never stops it."""
        while True:
            write = await self._writes.get()
            try:
                await write()
            except Exception:
                log.warning("as-aired write failed", exc_info=True)
            finally:
                self._writes.task_done()

    async def flush_writes(self) -> None:
        """Return once every record handed to the writer is written (or spooled)."""
        await self._writes.join()

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
        segment = self.director.on_air_segment().id

        async def write() -> None:
            self._caller_ref = await self._aired.caller_turn(
                identity=turn.caller,
                text="",
                segment=segment,
                started_at=turn.started,
                ended_at=turn.ended,
            )

        self._writes.put_nowait(write)

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

    def _on_user_transcript(self, ev: UserInputTranscribedEvent) -> None:
        if not (ev.is_final and ev.transcript):
            return
        transcript = ev.transcript

        async def write() -> None:
            if self._caller_ref is not None:
                await self._aired.set_text(self._caller_ref, transcript)

        self._writes.put_nowait(write)

    def _on_usage(self, ev: SessionUsageUpdatedEvent) -> None:
        for usage in ev.usage.model_usage:
            if getattr(usage, "type", "") != "llm_usage":
                continue
            now = (
                usage.input_audio_tokens,
                usage.output_audio_tokens,
                usage.input_text_tokens,
                usage.output_text_tokens,
            )
            before = self._usage.get(usage.model, (0, 0, 0, 0))
            self._usage[usage.model] = now
            delta = [max(a - b, 0) for a, b in zip(now, before, strict=True)]
            if not any(delta):
                continue
            at = self.director.lineup().at  # the station clock: hours of the simulated day too

            def write(
                d: list[int] = delta, model: str = self._settings.realtime_model, at: Any = at
            ) -> Coroutine[Any, Any, Any]:
                return self._aired.add_usage(
                    model, audio_in=d[0], audio_out=d[1], text_in=d[2], text_out=d[3], at=at
                )

            self._writes.put_nowait(write)

    # --- the room ----------------------------------------------------------------------------

    @property
    def silence_gap(self) -> float:
        """The producers' pause before the host carries on (station.yaml), live."""
        return float(self.director.programme.station.silence_gap_seconds)

    def listener_count(self) -> int:
        return sum(
            1
            for p in self._room.remote_participants.values()
            if p.kind != rtc.ParticipantKind.PARTICIPANT_KIND_AGENT
            and p.identity != self._settings.host_identity
        )

    def state(self) -> StationState:
        return StationState(
            posts_waiting=self._posts.waiting,
            floor_held=self.desk is not None and self.desk.held,
            listener_count=self.listener_count(),
            recent=tuple(self._recent),
            played=tuple(_track(i) for i in self.planner.unannounced()) if self.planner else (),
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

    def _on_joined(self, participant: rtc.RemoteParticipant) -> None:
        self._wake.set()
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

    # --- the offline voice's lines -----------------------------------------------------------

    def _fallback_line(self, cue: Cue, post: Post | None) -> str:
        if post is not None:
            intro = POST_INTRO.get(self._language, POST_INTRO["en"]).format(author=post.post.author)
            return f"{intro} {post.post.text}"
        lines = [line for line in cue.fallback if line.strip()]
        if not lines:
            lines = [line for line in cue.segment.fallback if line.strip()]
        if not lines:
            return self.director.programme.station.name
        # Rotate without repeating a line the listener heard recently; the oldest one otherwise.
        recent = list(self._recent)
        fresh = [line for line in lines if line[:120] not in recent]
        if fresh:
            return fresh[0]
        return min(lines, key=lambda line: _last_index(recent, line[:120]))


def _now() -> datetime:
    return datetime.now(UTC)


def _track(item: MediaItem) -> Track:
    return Track(item.title, item.artist)


def _joined(lead: str, line: str) -> str:
    """A back-announce before the offline voice's line (Japanese sentences run on unspaced)."""
    if not lead:
        return line
    return f"{lead}{'' if lead.endswith(('。', '！', '？')) else ' '}{line}"


def _last_index(items: list[str], value: str) -> int:
    for i in range(len(items) - 1, -1, -1):
        if items[i] == value:
            return i
    return -1
