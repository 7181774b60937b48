"""The host's job: one dispatch into the station room, wired and kept running.

`run_host` joins the room (as identity `host`), opens the job's Postgres pool and Redis client,
loads the producers' programme and builds the host's parts (see `agent/on_air.py` for the loop,
`call_in.py` for the floor, `sessions.py` for the AgentSession's life, `voice.py` for the model
with its fallback, `transmitter.py` for the one audio track). Every background task is owned
here: one that fails is started again with back-off, never taking the job down — a dead Redis or
Postgres degrades the station, it does not silence it. The host renews a heartbeat in Redis so
the keeper can tell a dead host from a live one at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiosql
import redis as sync_redis
import redis.asyncio as aioredis
from livekit.agents import AutoSubscribe, JobContext, llm
from livekit.plugins import silero
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agent import prompt_watcher
from agent.aired import AiredLog, open_pool
from agent.audio.transmitter import Transmitter
from agent.board import HEARTBEAT_KEY, WORKER_KEY, Board
from agent.breaker import ModelBreaker
from agent.call_in import CallInDesk
from agent.display import Display
from agent.floor import Floor
from agent.host import Host
from agent.memory import recall_quotes
from agent.offline_voice import OfflineTTS
from agent.on_air import OnAirLoop
from agent.posts import PostQueue
from agent.sessions import SessionKeeper
from agent.settings import HostSettings
from agent.voice import Voice, probe_conn_options
from programme.director import ProgramDirector
from programme.media import load_library
from programme.model import Programme
from programme.music import MusicPlanner

log = logging.getLogger("radio24.job")

HEARTBEAT_SECONDS = 0.5
HEARTBEAT_TTL_MS = 2000  # a dead host is noticed within 2 s
PEOPLE = aiosql.from_path(
    Path(__file__).resolve().parent.parent / "db" / "queries" / "people.sql", "apsycopg"
)


def worker_registered(settings: HostSettings, worker_id: str) -> None:
    """Tell operators (and `make run`'s banner) that a host worker is registered."""

    async def publish() -> None:
        client = aioredis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            await client.hset(WORKER_KEY, mapping={"id": worker_id, "at": time.time()})
        finally:
            await client.aclose()

    def done(task: asyncio.Task[None]) -> None:
        _registrations.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not record worker", exc_info=task.exception())

    # The worker's loop owns the task; the set keeps it alive until it is done.
    task = asyncio.get_running_loop().create_task(publish(), name="record-worker")
    _registrations.add(task)
    task.add_done_callback(done)


_registrations: set[asyncio.Task[None]] = set()


def station_clock(settings: HostSettings) -> Callable[[], datetime]:
    """The station's clock: real time, or (for the simulated day) a faster one that reads
    `RADIO_CLOCK_START` at the real moment `RADIO_CLOCK_EPOCH` — shared by every job, so a host
    that takes over does not rewind the day (without an epoch: this job's start)."""
    speed = settings.radio_clock_speed
    if speed == 1.0 and settings.radio_clock_start is None:
        return lambda: datetime.now(UTC)
    epoch = settings.radio_clock_epoch or datetime.now(UTC)
    origin = settings.radio_clock_start or epoch

    def clock() -> datetime:
        return origin + (datetime.now(UTC) - epoch) * speed

    return clock


async def _first_programme(folder: Path, board: Board, stop: asyncio.Event) -> Programme:
    """The programme to start with; a broken folder is reported and re-tried until fixed."""
    while True:
        loaded = await prompt_watcher.load(folder, board)
        if loaded is not None:
            return loaded
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 2.0)
        if stop.is_set():
            raise asyncio.CancelledError


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
    tasks: list[asyncio.Task[Any]] = []
    parts: dict[str, Any] = {}

    def keep(name: str, factory: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        tasks.append(asyncio.create_task(_kept(name, factory), name=name))

    # The heartbeat starts first: the keeper must not take a slow-starting host for a dead one.
    room = ctx.room
    board = Board(redis)
    heartbeat = Heartbeat(settings.redis_url, room.name, room.local_participant.sid)
    heartbeat.start()
    keep("task-count", heartbeat.count_tasks)

    async def off_air(*_: Any) -> None:
        stop.set()
        loop_part = parts.get("loop")
        if loop_part is not None:
            # What aired must be recorded before the claims are released (the posts task lets
            # them go when cancelled): else the next host airs a post a second time.
            try:
                await asyncio.wait_for(loop_part.flush_writes(), 3.0)
            except Exception:
                log.warning("as-aired writes not all recorded at shutdown")
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for name in ("loop", "desk", "display", "sessions", "transmitter", "tts", "aired"):
            part = parts.get(name)
            if part is None:
                continue
            with contextlib.suppress(Exception):
                result = part.stop() if name == "loop" else part.aclose()
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
        programme = await _first_programme(folder, board, stop)
        clock = station_clock(settings)
        director = ProgramDirector(programme, clock)
        floor = Floor(
            lambda: datetime.now(UTC),
            timedelta(seconds=settings.max_turn_seconds),
            timedelta(seconds=settings.max_quiet_turn_seconds),
        )
        aired = parts["aired"] = AiredLog(pool)
        posts = PostQueue(redis, aired, consumer=settings.host_consumer)
        tts = parts["tts"] = OfflineTTS(programme.station.language)
        tts.prewarm()
        memory = _memory(settings)
        display = parts["display"] = Display(room, board)
        station = programme.station
        transmitter = parts["transmitter"] = Transmitter(
            room, target_lufs=station.loudness_target_lufs, ceiling_dbtp=station.true_peak_dbtp
        )
        await transmitter.start()
        planner = await _planner(folder, programme, clock)

        async def recall(topic: str) -> list[dict[str, Any]]:
            return list(await recall_quotes(await memory(), topic))

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
            make_probe_model=None if settings.offline else _probe_model(settings),
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
            banned=_ban_check(pool),
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
        keep("as-aired", loop.run_writer)
        keep("posts", posts.run)
        keep("model-probe", voice.run_probes)
        keep("prompts", lambda: prompt_watcher.watch(folder, board, programme_changed, stop))
        tasks.append(asyncio.create_task(loop.warm_media(), name="warm-media"))  # one-shot
    except BaseException:
        log.exception("host could not go on air")
        ctx.shutdown("host could not go on air")
        raise


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


class Heartbeat:
    """The host's heartbeat, renewed from a thread of its own.

    It says "this host's process is alive", which is what the keeper needs to replace a dead
    host at once. A thread keeps beating while the job's event loop is busy for a few seconds
    (imports, a slow start on a loaded machine), which a loop task would not, and a live host
    must never be taken for a dead one. Redis being down only means no beats (the keeper then
    goes by LiveKit presence).
    """

    def __init__(self, redis_url: str, room: str, sid: str) -> None:
        self._key = HEARTBEAT_KEY.format(room=room)
        self._sid = sid
        # The job's asyncio task count, set by the job's loop (`count_tasks`): beaten with the
        # sid so an operator (and the soak) can see a task leak from outside the process.
        self.tasks: int | None = None
        self._client = sync_redis.Redis.from_url(
            redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(Exception):
            self._client.delete(self._key)  # gone at once: the keeper need not wait for expiry
        self._client.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            value = json.dumps({"sid": self._sid, "tasks": self.tasks})
            with contextlib.suppress(Exception):
                self._client.set(self._key, value, px=HEARTBEAT_TTL_MS)
            self._stop.wait(HEARTBEAT_SECONDS)

    async def count_tasks(self) -> None:
        """Keep `tasks` current, from the job's own loop (asyncio.all_tasks is not for threads)."""
        while True:
            self.tasks = len(asyncio.all_tasks())
            await asyncio.sleep(1.0)


def _ban_check(pool: AsyncConnectionPool) -> Callable[[str], Coroutine[Any, Any, bool]]:
    async def banned(identity: str) -> bool:
        async with pool.connection(timeout=2) as conn:
            conn.row_factory = dict_row  # type: ignore[assignment]
            try:
                row = await PEOPLE.person_by_id(conn, id=identity)
            except Exception:
                # Not a listener id (a test or staff identity): nothing to be banned.
                await conn.rollback()
                return False
        return bool(row and row.get("banned_at"))

    return banned


def _probe_model(settings: HostSettings) -> Callable[[], llm.RealtimeModel]:
    def make() -> llm.RealtimeModel:
        from livekit.plugins import openai

        key = settings.openai_api_key
        return openai.realtime.RealtimeModel(
            model=settings.realtime_model,
            api_key=key.get_secret_value() if key else None,
            base_url=settings.openai_base_url,
            conn_options=probe_conn_options(),
        )

    return make


async def _recent(aired: AiredLog) -> list[str]:
    try:
        return await asyncio.wait_for(aired.recent_lines(12), 3.0)
    except Exception:
        log.warning("could not read recent lines", exc_info=True)
        return []


def _memory(settings: HostSettings) -> Any:
    """The post memory, opened on first use (the embedding model loads only if called)."""
    from db.memory import MemoryStore, embedder_for

    store: list[MemoryStore] = []
    lock = asyncio.Lock()

    async def get() -> MemoryStore:
        async with lock:
            if not store:
                pool = AsyncConnectionPool(
                    settings.database_url.get_secret_value(), min_size=0, max_size=1, open=False
                )
                await pool.open()
                key = settings.openai_api_key.get_secret_value() if not settings.offline else None
                store.append(MemoryStore(pool, embedder_for(key, settings.openai_base_url)))
            return store[0]

    return get
