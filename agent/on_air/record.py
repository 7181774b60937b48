"""The as-aired record: what went out, counted at once and written in order, off the air's path.

Every line the host said (and the post it aired), every caller turn with its transcript, every
piece of music and the model's usage go to one ordered writer task, so a press never waits for
Postgres and the log keeps the order things aired in. A line is also counted at once: the recent
lines the director steers away from, and the talk time the music planner balances music against.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime
from typing import Any

from livekit.agents import SessionUsageUpdatedEvent, UserInputTranscribedEvent
from livekit.agents.metrics import LLMModelUsage

from agent.call_in.floor import Turn
from agent.store.aired import AiredLog
from agent.store.posts import Post, PostQueue
from agent.voice.voice import Aired, Airing
from programme.director import ProgramDirector
from programme.media import MediaItem

log = logging.getLogger("radio24.on_air")

RECENT_LINES = 12


class AsAiredRecord:
    def __init__(
        self,
        *,
        aired: AiredLog,
        posts: PostQueue,
        director: ProgramDirector,
        model: str,
        talk_aired: Callable[[str, float], None],
    ) -> None:
        """`model`: the Realtime model usage is counted for; `talk_aired(segment, seconds)`:
        told of every stretch of talk (the music planner's share)."""
        self._aired = aired
        self._posts = posts
        self._director = director
        self._model = model
        self._talk_aired = talk_aired
        self.recent: deque[str] = deque(maxlen=RECENT_LINES)
        self.aired_lines = 0
        self._caller_ref: Any = None
        self._usage: dict[str, tuple[int, int, int, int]] = {}
        self._writes: asyncio.Queue[Callable[[], Awaitable[Any]]] = asyncio.Queue()

    def line(
        self, aired: Aired, post: Post | None, *, lead: str = "", over_music: bool = False
    ) -> None:
        """`lead`: a back-announce said before the line; `over_music`: said over a track
        (its time is the track's in the music share, not talk)."""
        if not aired.text:
            return
        segment = self._director.on_air_segment().id
        self._count(aired, segment, lead=lead, over_music=over_music)

        async def write() -> None:
            await self._write_line(aired, segment, post)

        self._writes.put_nowait(write)

    def cut(self, airing: Airing, post: Post | None) -> None:
        """A line that was cut: logged once the model's words up to the cut are in (off the
        step's path: a press must not wait for them). Its post, if any of the line aired,
        is marked aired with it; otherwise the post goes back to the front of the queue."""
        if not airing.on_air:
            if post is not None:
                self._posts.put_back(post)
            return
        segment = self._director.on_air_segment().id

        async def write() -> None:
            aired = await airing.heard()
            if aired is None or not (aired.text or post):
                return  # nothing to log: no words known, no post to mark
            self._count(aired, segment)
            await self._write_line(aired, segment, post)

        self._writes.put_nowait(write)

    def music(self, item: MediaItem, segment: str, started: datetime, seconds: float) -> None:
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

    def caller_turn(self, turn: Turn) -> None:
        segment = self._director.on_air_segment().id

        async def write() -> None:
            self._caller_ref = await self._aired.caller_turn(
                identity=turn.caller,
                text="",
                segment=segment,
                started_at=turn.started,
                ended_at=turn.ended,
            )

        self._writes.put_nowait(write)

    def _count(
        self, aired: Aired, segment: str, *, lead: str = "", over_music: bool = False
    ) -> None:
        self.aired_lines += 1
        if lead and aired.text.startswith(lead):
            # Two things the listener heard: the line's rotation must still see the line itself.
            self.recent.extend((lead[:120], aired.text[len(lead) :].strip()[:120]))
        elif aired.text:
            self.recent.append(aired.text[:120])
        if not over_music:
            self._talk_aired(segment, (aired.ended - aired.started).total_seconds())

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

    async def run(self) -> None:
        """The as-aired writer: records in the order they aired; a failure never stops it."""
        while True:
            write = await self._writes.get()
            try:
                await write()
            except Exception:
                log.warning("as-aired write failed", exc_info=True)
            finally:
                self._writes.task_done()

    async def flush(self) -> None:
        """Return once every record handed to the writer is written (or spooled)."""
        await self._writes.join()

    # --- session events ----------------------------------------------------------------------

    def new_session(self) -> None:
        self._usage.clear()  # usage is cumulative per session

    def on_user_transcript(self, ev: UserInputTranscribedEvent) -> None:
        if not (ev.is_final and ev.transcript):
            return
        transcript = ev.transcript

        async def write() -> None:
            if self._caller_ref is not None:
                await self._aired.set_text(self._caller_ref, transcript)

        self._writes.put_nowait(write)

    def on_usage(self, ev: SessionUsageUpdatedEvent) -> None:
        for usage in ev.usage.model_usage:
            if not isinstance(usage, LLMModelUsage):
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
            at = self._director.lineup().at  # the station clock: hours of the simulated day too

            def write(
                d: list[int] = delta, model: str = self._model, at: Any = at
            ) -> Coroutine[Any, Any, Any]:
                return self._aired.add_usage(
                    model, audio_in=d[0], audio_out=d[1], text_in=d[2], text_out=d[3], at=at
                )

            self._writes.put_nowait(write)
