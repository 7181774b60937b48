"""The host's job: one dispatch into the station room, wired and kept running.

`run_host` joins the room (as identity `host`), opens the job's Postgres pool and Redis client,
loads the producers' programme and builds the host's parts (see `agent/on_air/` for the loop,
`agent/call_in/` for the floor, `agent/voice/` for the AgentSession's life and the model with its
fallback, `agent/audio/transmitter.py` for the one audio track, `agent/store/` for Postgres and
Redis). Every background task is owned here: one that fails is started again with back-off,
never taking the job down — a dead Redis or Postgres degrades the station, it does not silence
it. The host renews a heartbeat in Redis so the keeper can tell a dead host from a live one at
once. This module only wires: the parts' logic lives in their rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from livekit.agents import AutoSubscribe, JobContext, llm
from livekit.plugins import silero

from agent.audio.transmitter import Transmitter
from agent.call_in.desk import CallInDesk
from agent.call_in.floor import Floor
from agent.on_air import prompt_watcher
from agent.on_air.display import Display
from agent.on_air.loop import OnAirLoop
from agent.settings import HostSettings, station_clock
from agent.store.aired import AiredLog, open_pool
from agent.store.board import Board
from agent.store.heartbeat import Heartbeat
from agent.store.memory import recaller
from agent.store.people import ban_check
from agent.store.posts import PostQueue
from agent.voice.breaker import ModelBreaker
from agent.voice.host import Host
from agent.voice.offline import OfflineTTS
from agent.voice.sessions import SessionKeeper
from agent.voice.voice import Voice, probe_model
from contract.keys import Keys
from programme.director import ProgramDirector
from programme.media import load_library
from programme.model import Programme
from programme.music import MusicPlanner

log = logging.getLogger("radio24.job")

WRITER = "as-aired"  # the task that writes the as-aired records in order
POSTS = "posts"  # the task that keeps the post claims (and releases them on its way out)
# At shutdown, the writer's last records (a cut line's words take up to 2 s to come in).
FLUSH_SECONDS = 3.0


async def run_host(ctx: JobContext, settings: HostSettings) -> None:
    """Put the host on air and return; the job's shutdown callback takes it off air.

    (livekit-agents waits only 15 s for an entrypoint at shutdown, then cancels it; the
    LiveKit idiom is an entrypoint that starts things and a shutdown callback that stops them.)
    """
    await ctx.connect(auto_subscribe=AutoSubscribe.AUDIO_ONLY)
    log.info("host joined", extra={"room": ctx.room.name})

    stop = asyncio.Event()
    redis = aioredis.from_url(
        settings.redis_url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=10
    )
    pool = open_pool(settings.database_url.get_secret_value())
    tasks: dict[str, asyncio.Task[Any]] = {}
    parts: dict[str, Any] = {}

    def keep(name: str, factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        tasks[name] = asyncio.create_task(_kept(name, factory), name=name)

    # The heartbeat starts first: the keeper must not take a slow-starting host for a dead one.
    room = ctx.room
    keys = Keys(settings.radio_room)
    board = Board(redis, keys)
    heartbeat = Heartbeat(settings.redis_url, keys.station, room.local_participant.sid)
    heartbeat.start()
    keep("task-count", heartbeat.count_tasks)

    async def off_air(*_: Any) -> None:
        stop.set()
        loop_part = parts.get("loop")
        await take_off_air(tasks, flush=loop_part.flush_writes if loop_part is not None else None)
        for name in ("loop", "desk", "display", "sessions", "transmitter", "tts", "aired"):
            part = parts.get(name)
            if part is None:
                continue
            with contextlib.suppress(Exception):
                if name == "loop":
                    part.stop()
                elif name == "aired":
                    await part.aclose(drain=0.0)  # drained before the claims were released
                else:
                    result = part.aclose()
                    if asyncio.iscoroutine(result):
                        await result
        with contextlib.suppress(Exception):
            await board.aclose()
        with contextlib.suppress(Exception):
            await pool.close()
        await asyncio.to_thread(heartbeat.stop)
        with contextlib.suppress(Exception):
            await redis.aclose()
        log.info("host left")

    ctx.add_shutdown_callback(off_air)
    try:
        # No wait: a dead Postgres must not keep the host off air (the as-aired log spools).
        await pool.open(wait=False)
        folder = Path(settings.radio_prompts_dir)
        programme = await prompt_watcher.first(folder, board, stop)
        clock = station_clock(settings)
        director = ProgramDirector(programme, clock)
        floor = Floor(
            lambda: datetime.now(UTC),
            timedelta(seconds=settings.max_turn_seconds),
            timedelta(seconds=settings.max_quiet_turn_seconds),
        )
        spool_dir = Path(settings.host_spool_dir) / keys.station
        aired = parts["aired"] = AiredLog(pool, spool_dir=spool_dir)
        posts = PostQueue(redis, aired, keys=keys, consumer=settings.host_consumer)
        tts = parts["tts"] = OfflineTTS(programme.station.language)
        tts.prewarm()
        recall = recaller(settings)
        display = parts["display"] = Display(room, board)
        station = programme.station
        transmitter = parts["transmitter"] = Transmitter(
            room, target_lufs=station.loudness_target_lufs, ceiling_dbtp=station.true_peak_dbtp
        )
        await transmitter.start()
        planner = await _planner(folder, programme, clock)

        loop: OnAirLoop | None = None

        def make_host(chat_ctx: llm.ChatContext | None) -> Host:
            assert loop is not None
            return Host(
                director.instructions(loop.state()),
                recall=recall,
                next_post=loop.next_post,
                chat_ctx=chat_ctx,
            )

        sessions = parts["sessions"] = SessionKeeper(
            room=room,
            settings=settings,
            transmitter=transmitter,
            tts=tts,
            make_host=make_host,
            wire=lambda session: loop.wire(session) if loop is not None else None,
        )
        voice = Voice(
            sessions=sessions,
            transmitter=transmitter,
            settings=settings,
            breaker=ModelBreaker(time.monotonic),
            tts=tts,
            make_probe_model=None if settings.offline else probe_model(settings),
        )
        loop = parts["loop"] = OnAirLoop(
            room=room,
            settings=settings,
            director=director,
            sessions=sessions,
            voice=voice,
            posts=posts,
            aired=aired,
            display=display,
            language=programme.station.language,
            transmitter=transmitter,
            planner=planner,
        )
        desk = parts["desk"] = CallInDesk(
            room=room,
            livekit=ctx.api,
            settings=settings,
            floor=floor,
            sessions=sessions,
            vad_model=ctx.proc.userdata.get("vad") or silero.VAD.load(),
            preempt=loop.preempt,
            turn_over=loop.turn_over,
            show_floor=display.floor,
            banned=ban_check(pool),
        )
        loop.desk = desk
        sessions.on_start(desk.session_started)
        desk.register()
        recent = await _recent(aired)
        loop.start(recent)
        await sessions.start(recent[-6:])
        await desk.reconcile_grants()
        await display.floor(floor.state)

        async def programme_changed(new: Programme) -> None:
            director.replace_programme(new)
            loop.programme_changed()
            loudness = new.station
            transmitter.configure(loudness.loudness_target_lufs, loudness.true_peak_dbtp)
            loop.replace_library(await _planner(folder, new, clock))

        keep("on-air", loop.run)
        keep("on-air-watch", loop.watch)
        keep(WRITER, loop.run_writer)
        keep(POSTS, posts.run)
        keep("model-probe", voice.run_probes)
        keep("prompts", lambda: prompt_watcher.watch(folder, board, programme_changed, stop))
        tasks["warm-media"] = asyncio.create_task(loop.warm_media(), name="warm-media")  # once
    except BaseException:
        log.exception("host could not go on air")
        ctx.shutdown("host could not go on air")
        raise


async def take_off_air(
    tasks: Mapping[str, asyncio.Task[Any]], *, flush: Callable[[], Awaitable[None]] | None
) -> None:
    """Stop the job's tasks (`WRITER` and `POSTS` among them by name) so that what aired is
    recorded before any post is let go, else the next host airs it a second time: first the
    air (a step cut now hands the writer what of its line aired, and its post), then the
    writer once it has written or spooled every record (`flush`), and last the post queue,
    which gives the spool a moment to reach Postgres and releases its claims, except those of
    posts whose mark is still spooled (agent/store/posts.py)."""
    last = (WRITER, POSTS)
    await _cancel([task for name, task in tasks.items() if name not in last])
    if flush is not None:
        try:
            await asyncio.wait_for(flush(), FLUSH_SECONDS)
        except Exception:
            log.warning("as-aired writes not all recorded at shutdown")
    for name in last:
        await _cancel([tasks[name]] if name in tasks else [])


async def _cancel(tasks: list[asyncio.Task[Any]]) -> None:
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _planner(
    folder: Path, programme: Programme, clock: Callable[[], datetime]
) -> MusicPlanner | None:
    """The music planner over the programme's media folder (read in a thread), or None when
    the station has no media; bad files are left out (and reported by `prompts check`)."""
    if not programme.station.media:
        return None
    try:
        library = await asyncio.to_thread(load_library, folder, programme)
    except Exception:
        log.warning("could not read the media folder; talk only", exc_info=True)
        return None
    for problem in library.problems:
        log.warning("media file skipped", extra={"file": problem.file, "line": problem.line})
    log.info("media library", extra={"items": len(library.items), **library.counts()})
    return MusicPlanner(library, clock)


async def _kept(name: str, factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
    """Run a part for the life of the job; if it fails, start it again (with back-off)."""
    delay = 0.5
    while True:
        started = time.monotonic()
        try:
            await factory()
            log.warning("host task ended; starting it again", extra={"task": name})
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("host task failed; starting it again", extra={"task": name})
        if time.monotonic() - started > 30:
            delay = 0.5
        await asyncio.sleep(delay)
        delay = min(delay * 2, 10.0)


async def _recent(aired: AiredLog) -> list[str]:
    try:
        return await asyncio.wait_for(aired.recent_lines(12), 3.0)
    except Exception:
        log.warning("could not read recent lines", exc_info=True)
        return []
