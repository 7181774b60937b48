"""Playout: the music, jingles, idents and beds the on-air loop airs between and under the talk.

With a media library (station.yaml `media:`) a step may be music instead of talk: where the
director has nothing time-critical (an ID, a new segment, a post), the music planner decides
between talk and a track or jingle, with room up to the next ID minute or the segment's end. A
station ID opens with an ident, and the segment's bed plays under the talk. The host brings a
track in over its intro when its length is known (else in a line just before it); each piece
and each run of a bed goes to the as-aired record, and pages see what is playing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine
from datetime import UTC, datetime
from typing import Any, Literal

from agent.audio.prepare import MediaError
from agent.audio.samples import SAMPLE_RATE
from agent.audio.transmitter import Transmitter
from agent.on_air.display import Display
from agent.on_air.record import AsAiredRecord
from agent.store.posts import Post
from agent.voice.voice import Line, Voice
from programme.director import Cue, CueKind, ProgramDirector, StationState, Track
from programme.media import MediaItem
from programme.model import Segment
from programme.music import Introduction, MusicPlanner, Play, introduction

log = logging.getLogger("radio24.on_air")

Spawn = Callable[[Coroutine[Any, Any, Any], str], None]
Fallback = Callable[[Cue, Post | None], str]


class Playout:
    def __init__(
        self,
        *,
        director: ProgramDirector,
        voice: Voice,
        record: AsAiredRecord,
        display: Display,
        spawn: Spawn,
        fallback: Fallback,
        transmitter: Transmitter | None = None,
        planner: MusicPlanner | None = None,
    ) -> None:
        """`spawn(coro, what)`: a side task owned by the loop; `fallback(cue, post)`: the
        offline voice's line for a cue."""
        self._director = director
        self._voice = voice
        self._record = record
        self._display = display
        self._spawn = spawn
        self._fallback = fallback
        self._transmitter = transmitter
        self.planner = planner
        self._beds: dict[str, Any] = {}  # prepared beds by name (a few files)
        self._beds_loading: set[str] = set()
        self._ident_for: datetime | None = None  # the ID minute whose ident has aired
        self._bed_run: tuple[MediaItem, str, datetime, float] | None = None

    async def air(
        self,
        state: Callable[[], StationState],
        air_cue: Callable[[Cue], Awaitable[None]],
    ) -> Literal["ident", "music"] | None:
        """Music instead of talk when the planner says so: what this step aired, if anything.

        Before a station ID its ident plays and the spoken ID follows in the same step (that
        cue, aired by `air_cue`, not a new one: the ident's seconds must not let a later cue
        take its place). Before talk the segment's bed comes up under it.
        """
        if self.planner is None or self._transmitter is None or not self.planner.library.items:
            return None
        cue = self._director.cue(state())
        if cue.kind is CueKind.STATION_ID and cue.id_minute != self._ident_for:
            ident = self.planner.ident(cue.segment)
            if ident is not None:
                await self.bed_for(None)
                if await self._play(ident, cue.segment):
                    self._ident_for = cue.id_minute
                    await self.bed_for(cue.segment)
                    await air_cue(cue)
                    return "ident"
        if cue.kind is CueKind.CONTINUE:
            choice = self.planner.next_item(cue.segment, self._director.next_event())
            if isinstance(choice, Play):
                log.info("on air", extra={"cue": "music", "kind": choice.item.kind})
                # Prepared while the bed still plays: a cold track takes seconds on a busy
                # machine, dead air if the bed were already out (`_play` reports a bad file).
                with contextlib.suppress(MediaError, OSError):
                    await self._transmitter.prepared(choice.item.path)
                await self.bed_for(None)
                if await self._play(choice.item, cue.segment, introduce=True):
                    return "music"
        await self.bed_for(cue.segment)
        return None

    async def _play(self, item: MediaItem, segment: Segment, *, introduce: bool = False) -> bool:
        """Air one file to its end (a press cancels the step, which fades it out); log it.
        False if the file cannot air (it is skipped for the planner's repeat window).

        `introduce`: the host brings a track in, over its intro or just before it."""
        assert self._transmitter is not None and self.planner is not None
        try:
            samples = await self._transmitter.prepared(item.path)
        except (MediaError, OSError) as exc:
            log.warning("media file skipped", extra={"file": item.name, "why": str(exc)})
            self.planner.aired(segment.id, item, self._director.lineup().at, 0.0)
            return False
        intro = introduction(item) if introduce else None
        if intro is not None and not intro.over:
            cue = self._director.track_cue(track(item), intro.seconds, over=False)
            talk_up = Line(cue.instructions, self._fallback(cue, None))
            self._record.line(await self._voice.speak(talk_up), None)
        started, at, t0 = _now(), self._director.lineup().at, time.monotonic()
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
            self._record.music(item, segment.id, started, seconds)
            self._show_playing(None)
        return True

    async def _talk_over(self, item: MediaItem, intro: Introduction, t0: float) -> None:
        """The host's line over the track's intro, from `lead_in` into the track. The track
        stays ducked while the voice lasts; a line still running at `cut_at` is cut, so the
        host never talks over the vocals for long (the track itself plays on)."""
        await asyncio.sleep(max(0.0, t0 + intro.lead_in - time.monotonic()))
        cue = self._director.track_cue(track(item), intro.seconds, over=True)
        line = Line(cue.instructions, self._fallback(cue, None), over_music=True)
        speak = asyncio.ensure_future(self._voice.speak(line))
        try:
            aired = await asyncio.wait_for(speak, max(0.0, t0 + intro.cut_at - time.monotonic()))
        except TimeoutError:
            log.info("the line over the intro ran into the vocals; cut", extra={"file": item.name})
            return
        self._record.line(aired, None, over_music=True)

    async def bed_for(self, segment: Segment | None) -> None:
        """The segment's bed under the talk (None: no bed), and its run in the as-aired log."""
        assert self._transmitter is not None and self.planner is not None
        item = self.planner.bed(segment) if segment is not None else None
        run = self._bed_run
        if run is not None and (item is None or item.name != run[0].name):
            self._bed_run = None
            self._record.music(run[0], run[1], run[2], time.monotonic() - run[3])
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

    def _show_playing(self, item: MediaItem | None) -> None:
        """Pages' "now playing", off the step's path (a cut must not wait for it)."""
        self._spawn(self._display.now_playing(item), "now-playing")

    def replace_library(self, planner: MusicPlanner | None) -> None:
        """A producer's edit changed the media folder: plan from the new library."""
        if planner is None or self.planner is None:
            self.planner = planner
        else:
            self.planner.replace_library(planner.library)


def track(item: MediaItem) -> Track:
    return Track(item.title, item.artist)


def _now() -> datetime:
    return datetime.now(UTC)
