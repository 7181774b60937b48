"""A host that stops while a post is on air: the post is marked aired before its claim is let
go, and the next host never gets it.

The job's own stop (`agent.job.take_off_air`) over the host's real parts on a real Postgres and
Redis: the on-air loop, its as-aired writer, the post queue and the as-aired log. Only the
outside of the host is faked (the Realtime session, the room, the air), as in
tests/unit/test_on_air_loop.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
import redis.asyncio as aioredis
from pydantic import SecretStr

from agent.job import POSTS, WRITER, take_off_air
from agent.on_air.display import Display
from agent.on_air.loop import OnAirLoop
from agent.settings import HostSettings
from agent.store.aired import AiredLog, open_pool
from agent.store.posts import PostQueue
from agent.voice.breaker import ModelBreaker
from agent.voice.sessions import SessionKeeper
from agent.voice.voice import Voice
from contract.keys import Keys
from programme.director import ProgramDirector
from programme.model import Persona, Programme, Schedule, Segment, Slot, Station, StationIdRule
from tests.fakes.room import FakeRoom
from tests.fakes.session import FakeAir, FakeSession, FakeSpeechHandle, FakeTTS, Reply
from tests.fakes.store import FakeBoard

pytestmark = pytest.mark.integration

KEYS = Keys("radio24-shutdown-test")
POST = "最後の数秒に読まれたお便り"


def listener_corner() -> Programme:
    """All day the listener corner: a waiting post is the next cue."""
    station = Station("Test FM", "en", "UTC", StationIdRule(60, "$station_name"), "AI.", 0.01)
    segment = Segment("corner", "Corner", "calm", 60, ("Test FM.",), "first", "Read posts.")
    day = (Slot(0, 24 * 60, "corner"),)
    return Programme(station, Persona("", "Host."), {"corner": segment}, Schedule((day,) * 7, (0,)))


class ReadsOn(FakeSession):
    """Short lines (the station ID, the corner's introduction), except a post's reading, which
    runs on until it is cut."""

    reading: Callable[[], bool] = staticmethod(lambda: False)

    def generate_reply(self, **kwargs: Any) -> FakeSpeechHandle:
        self.replies.append(Reply.TALKS_ON if self.reading() else Reply.SPEAKS)
        return super().generate_reply(**kwargs)


class Host:
    """The host's parts as the job wires them, around a fake session."""

    def __init__(self, database_url: str, redis: aioredis.Redis) -> None:
        self.pool = open_pool(database_url)
        self.aired = AiredLog(self.pool)
        self.posts = PostQueue(redis, self.aired, keys=KEYS, poll_seconds=0.2)
        settings = HostSettings(
            _env_file=None,  # type: ignore[call-arg]
            openai_api_key=SecretStr("sk-test"),
            fallback_after_seconds=1.0,
        )
        room = FakeRoom(listeners=("listener",))
        air = FakeAir()
        self.session = ReadsOn(air)
        sessions = SessionKeeper(
            room=room,  # type: ignore[arg-type]
            settings=settings,
            transmitter=air,  # type: ignore[arg-type]
            tts=None,
            make_host=lambda ctx: None,  # type: ignore[arg-type,return-value]
            wire=lambda s: None,
        )
        sessions.session = self.session  # type: ignore[assignment]
        sessions.started_at = time.monotonic()
        self.loop = OnAirLoop(
            room=room,  # type: ignore[arg-type]
            settings=settings,
            director=ProgramDirector(listener_corner(), lambda: datetime.now(UTC)),
            sessions=sessions,
            voice=Voice(
                sessions=sessions,
                transmitter=air,  # type: ignore[arg-type]
                settings=settings,
                breaker=ModelBreaker(time.monotonic),
                tts=FakeTTS(),
            ),
            posts=self.posts,
            aired=self.aired,
            display=Display(room, FakeBoard()),  # type: ignore[arg-type]
            language="en",
            transmitter=air,  # type: ignore[arg-type]
        )
        self.session.reading = lambda: self.loop.next_post() is not None
        self.loop.wire(self.session)  # type: ignore[arg-type]
        self.loop.start([])
        self.tasks: dict[str, asyncio.Task[None]] = {}


async def until(check: Callable[[], bool], within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.02)


def queue_post(database_url: str, text: str) -> str:
    with psycopg.connect(database_url) as conn:
        (person,) = conn.execute(
            "INSERT INTO people (nickname) VALUES ('ミツキ') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        (post,) = conn.execute(
            "INSERT INTO posts (author_id, text) VALUES (%s, %s) RETURNING id", (person, text)
        ).fetchone()  # type: ignore[misc]
    return str(post)


async def test_a_post_on_air_when_the_host_stops_is_marked_aired_and_never_handed_on(
    database_url: str, redis_url: str
) -> None:
    post_id = queue_post(database_url, POST)
    redis = aioredis.from_url(redis_url)
    a = Host(database_url, redis)
    await a.pool.open(wait=True, timeout=10)
    try:
        a.tasks[POSTS] = asyncio.create_task(a.posts.run(), name=POSTS)
        await until(lambda: a.posts.waiting == 1, 10, "the host did not claim the post")
        a.tasks[WRITER] = asyncio.create_task(a.loop.run_writer(), name=WRITER)
        a.tasks["on-air"] = asyncio.create_task(a.loop.run(), name="on-air")
        # The post's reading is on air (it runs until cut): the job is told to stop now.
        await until(
            lambda: (
                a.loop.next_post() is not None
                and bool(a.session.handles)
                and a.session.handles[-1].began
            ),
            10,
            "the post's reading never went on air",
        )
        await take_off_air(a.tasks, flush=a.loop.flush_writes)
        assert all(task.done() for task in a.tasks.values())
        a.loop.stop()
        await a.aired.aclose()
    finally:
        await a.pool.close()

    # The next host, right after: nothing to claim; the post aired once, with the cut reading.
    b = Host(database_url, redis)
    await b.pool.open(wait=True, timeout=10)
    try:
        handed = await b.aired.claim_posts(b.posts.claimer, 5, 15, [])
    finally:
        await b.aired.aclose()
        await b.pool.close()
        await redis.aclose()
    assert handed is not None
    assert [str(p.id) for p in handed] == [], "the post aired on stop went to the next host"
    with psycopg.connect(database_url) as conn:
        status, interrupted, text = conn.execute(
            "SELECT p.status, u.interrupted, u.text FROM posts p "
            "JOIN utterances u ON u.id = p.utterance_id WHERE p.id = %s",
            (post_id,),
        ).fetchone() or (None, None, None)
        (cut,) = conn.execute(
            "SELECT count(*) FROM utterances WHERE kind = 'host' AND interrupted"
        ).fetchone()  # type: ignore[misc]
    assert status == "aired", "the post on air at the stop was not marked aired"
    assert interrupted is True and text, "the mark names the reading that was cut"
    assert cut == 1, "the cut reading is logged once"
