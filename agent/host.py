"""The host: the AI voice that stays on air in the station room.

`run_host` is one job: it joins the room it was dispatched to (as identity `host`), opens the
job's Postgres pool and Redis client, loads the producers' programme, and puts `OnAir` to work:
the AgentSession (Realtime model, or the offline voice with no OpenAI key), the push-to-talk RPC
methods `start_turn` / `end_turn` / `cancel_turn`, the post queue and the prompt watcher. Every
background task is owned here and stopped when the job shuts down.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from livekit import rtc
from livekit.agents import AutoSubscribe, JobContext
from livekit.plugins import silero

from agent import programme as programme_files
from agent.aired import AiredLog, open_pool
from agent.board import Board
from agent.director import ProgramDirector
from agent.floor import Floor, FloorError
from agent.memory import recall_quotes
from agent.offline_voice import OfflineTTS
from agent.on_air import OnAir
from agent.posts import PostQueue
from agent.prompts import Programme
from agent.settings import HostSettings

log = logging.getLogger("radio24.host")

WORKER_KEY = "radio24:host:worker"


def worker_registered(settings: HostSettings, worker_id: str) -> None:
    """Tell operators (and `make run`'s banner) that a host worker is registered."""

    async def publish() -> None:
        client = aioredis.from_url(settings.redis_url)
        try:
            await client.hset(WORKER_KEY, mapping={"id": worker_id, "at": time.time()})
        finally:
            await client.aclose()

    def done(task: asyncio.Task[None]) -> None:
        _registrations.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not record worker", exc_info=task.exception())

    # The worker's loop owns the task; the set keeps it alive until it is done (asyncio holds
    # only weak references to tasks).
    task = asyncio.get_running_loop().create_task(publish(), name="record-worker")
    _registrations.add(task)
    task.add_done_callback(done)


_registrations: set[asyncio.Task[None]] = set()


def _clock() -> datetime:
    return datetime.now(UTC)


def _rpc_error(err: FloorError) -> rtc.RpcError:
    return rtc.RpcError(
        rtc.RpcError.ErrorCode.APPLICATION_ERROR, str(err), json.dumps({"code": err.code})
    )


async def _first_programme(folder: Path, board: Board, stop: asyncio.Event) -> Programme:
    """The programme to start with; a broken folder is reported and re-tried until fixed."""
    while True:
        loaded = await programme_files.load(folder, board)
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

    # --- issue 9 heartbeat: MINIMAL version on the supervisor branch, for the keeper's fast
    # takeover (api/keeper.py HEARTBEAT_KEY); the lead reconciles it with main's at merge.
    async def heartbeat() -> None:
        beats = aioredis.from_url(settings.redis_url, socket_timeout=1, socket_connect_timeout=1)
        key = f"radio24:host:heartbeat:{ctx.room.name}"
        try:
            while ctx.room.isconnected():  # a replaced or disconnected host stops at once
                value = {"sid": ctx.room.local_participant.sid, "at": time.time()}
                with contextlib.suppress(Exception):  # Redis down: the keeper goes by presence
                    await beats.set(key, json.dumps(value), px=3000)
                await asyncio.sleep(1)
        finally:
            await beats.aclose()

    beating = asyncio.create_task(heartbeat(), name="heartbeat")

    async def stop_beating(*_: Any) -> None:
        beating.cancel()

    ctx.add_shutdown_callback(stop_beating)
    # --- end of the issue 9 heartbeat

    stop = asyncio.Event()
    redis = aioredis.from_url(settings.redis_url)
    pool = open_pool(settings.database_url.get_secret_value())
    tasks: list[asyncio.Task[Any]] = []
    on_air: OnAir | None = None
    tts: OfflineTTS | None = None

    async def off_air(*_: Any) -> None:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if on_air is not None:
            await on_air.aclose()
        if tts is not None:
            with contextlib.suppress(Exception):
                await tts.aclose()
        with contextlib.suppress(Exception):
            await pool.close()
        with contextlib.suppress(Exception):
            await redis.aclose()
        log.info("host left")

    ctx.add_shutdown_callback(off_air)
    try:
        await pool.open(wait=True, timeout=30)
        board = Board(redis)
        folder = Path(settings.radio_prompts_dir)
        programme = await _first_programme(folder, board, stop)
        director = ProgramDirector(programme, _clock)
        floor = Floor(_clock, timedelta(seconds=settings.max_turn_seconds))
        aired = AiredLog(pool)
        posts = PostQueue(redis, aired, consumer=settings.host_consumer)
        language = programme.station.language
        tts = OfflineTTS(language)
        tts.prewarm()
        memory = _memory(settings)

        async def recall(topic: str) -> list[dict[str, Any]]:
            return list(await recall_quotes(await memory(), topic))

        on_air = OnAir(
            room=ctx.room,
            livekit=ctx.api,
            settings=settings,
            director=director,
            floor=floor,
            posts=posts,
            aired=aired,
            board=board,
            tts=tts,
            vad_model=silero.VAD.load(),
            language=language,
            recall=recall,
        )
        _register_floor(ctx.room, floor, on_air)
        await on_air.start(await _recent(aired))

        async def programme_changed(new: Programme) -> None:
            director.replace_programme(new)
            assert on_air is not None
            await on_air.programme_changed()

        tasks.extend(
            [
                _owned(on_air.run(), "on-air", ctx),
                _owned(posts.run(), "posts", ctx),
                _owned(
                    programme_files.watch(folder, board, programme_changed, stop), "prompts", ctx
                ),
            ]
        )
    except BaseException:
        log.exception("host could not go on air")
        ctx.shutdown("host could not go on air")
        raise


def _owned(coro: Any, name: str, ctx: JobContext) -> asyncio.Task[Any]:
    """A task that lives as long as the job; if it dies, the job ends (the keeper re-dispatches)."""
    task = asyncio.create_task(coro, name=name)

    def done(t: asyncio.Task[Any]) -> None:
        if t.cancelled():
            return
        log.error("host task ended; ending the job", extra={"task": name}, exc_info=t.exception())
        ctx.shutdown(f"{name} ended")

    task.add_done_callback(done)
    return task


async def _recent(aired: AiredLog) -> list[str]:
    try:
        return await aired.recent_lines(12)
    except Exception:
        log.warning("could not read recent lines", exc_info=True)
        return []


def _memory(settings: HostSettings) -> Any:
    """The post memory, opened on first use (the embedding model loads only if called)."""
    from psycopg_pool import AsyncConnectionPool

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


def _register_floor(room: rtc.Room, floor: Floor, on_air: OnAir) -> None:
    """The push-to-talk RPC methods (the names LiveKit's own push-to-talk example uses)."""
    me = room.local_participant

    async def start_turn(data: rtc.RpcInvocationData) -> str:
        try:
            floor.start(data.caller_identity)
        except FloorError as e:
            raise _rpc_error(e) from None
        try:
            return json.dumps(await on_air.begin_turn(data.caller_identity))
        except Exception:
            log.exception("could not open the caller's microphone")
            with contextlib.suppress(FloorError):
                turn = floor.cancel(data.caller_identity)
                await on_air.finish_turn(turn)
            raise rtc.RpcError(
                rtc.RpcError.ErrorCode.APPLICATION_ERROR, "could not open your microphone"
            ) from None

    async def end_turn(data: rtc.RpcInvocationData) -> str:
        try:
            turn = floor.end(data.caller_identity)
        except FloorError as e:
            raise _rpc_error(e) from None
        return json.dumps(await on_air.finish_turn(turn))

    async def cancel_turn(data: rtc.RpcInvocationData) -> str:
        try:
            turn = floor.cancel(data.caller_identity)
        except FloorError as e:
            raise _rpc_error(e) from None
        return json.dumps(await on_air.finish_turn(turn))

    me.register_rpc_method("start_turn", start_turn)
    me.register_rpc_method("end_turn", end_turn)
    me.register_rpc_method("cancel_turn", cancel_turn)
