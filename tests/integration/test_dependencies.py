"""Dependencies degrade, never kill: Redis and Postgres stopped, frozen (SIGSTOP) or flushed.

Each test takes down a Redis or a Postgres of its own (tests/integration/parts.py) and drives
the host's real parts (PostQueue, AiredLog, Board) and the real API against it:
- posts written while Redis is down are stored (201) and still air; a Redis that comes back
  empty strands nothing;
- posts written while Postgres is down get a clear 503 and leave nothing behind;
- what the host could not write while Postgres was down is written, in order, when it is back;
  a host killed meanwhile leaves it in its spool file, and the next host writes it (once);
- no call blocks longer than its timeout against a frozen Redis or Postgres.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import psycopg
import pytest
import redis.asyncio as aioredis

from agent.store.aired import AiredLog, open_pool
from agent.store.board import Board
from agent.store.posts import PostQueue
from contract.events import FloorEvent, FloorInfo, ListenersEvent, PromptsStatus
from contract.keys import Keys
from core.outage import within
from radio24 import rack
from tests.api.conftest import ROOM, make_settings, running, until
from tests.conftest import LiveKit
from tests.integration.parts import PostgresBox, RedisBox

pytestmark = pytest.mark.integration

T = TypeVar("T")
KEYS = Keys(ROOM)  # the API's Redis names in these tests
BOUND = 2.5  # "about a second or two": every host-side call, with a margin for a busy machine
KEYS = Keys("radio24-test")  # the station make_settings() runs
STATE, STREAM = KEYS.state, KEYS.posts


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pg_box(parts_dir: Path) -> Iterator[PostgresBox]:
    os.environ["RADIO_PG_FAST"] = "1"
    box = PostgresBox(parts_dir / "pgbox", parts_dir / "pgbox.log")
    box.prepare()
    yield box
    box.stop()


@pytest.fixture
def own_pg(pg_box: PostgresBox) -> Iterator[PostgresBox]:
    """The module's own Postgres, running; whatever a test did to it is undone after."""
    if not pg_box.running:
        pg_box.start()
    yield pg_box
    pg_box.resume()
    if not pg_box.running:
        pg_box.start()


@pytest.fixture
def own_db(own_pg: PostgresBox) -> str:
    return own_pg.new_database()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisBox]:
    box = RedisBox(tmp_path / "redis", tmp_path / "redis.log")
    box.start()
    yield box
    box.stop()


@pytest.fixture
async def host_redis(own_redis: RedisBox) -> AsyncIterator[aioredis.Redis]:
    """A client as the host job makes it (no socket timeouts of its own: ours must hold)."""
    client = aioredis.from_url(own_redis.url)
    yield client
    own_redis.resume()
    await client.aclose()


class Host:
    """The host's post-side parts on one database and one Redis, with the queue running."""

    def __init__(self, database_url: str, redis: aioredis.Redis, **queue: Any) -> None:
        self.pool = open_pool(database_url)
        self.aired = AiredLog(self.pool)
        self.posts = PostQueue(redis, self.aired, keys=KEYS, consumer="test-host", **queue)
        self.board = Board(redis, KEYS)
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Host:
        await self.pool.open(wait=True, timeout=10)
        self.task = asyncio.create_task(self.posts.run())
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self.task is not None
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.aired.aclose()
        await self.board.aclose()
        await self.pool.close()

    async def next_post(self, within: float) -> Any:
        await until(lambda: self.posts.waiting > 0, within)
        return self.posts.take()

    async def air(self, post: Any) -> uuid.UUID:
        """Air a post as the on-air loop does: check, speak (logged), mark aired."""
        assert await self.posts.still_queued(post)
        now = datetime.now(UTC)
        ref = await self.aired.host_utterance(
            text=f"お便りです。{post.post.text}",
            segment="test",
            mode="offline",
            started_at=now,
            ended_at=now + timedelta(seconds=2),
            interrupted=False,
        )
        assert await self.posts.aired(post, ref)
        return ref


async def timed(call: Awaitable[T]) -> tuple[T, float]:
    started = time.monotonic()
    result = await call
    return result, time.monotonic() - started


def queue_post(database_url: str, text: str, nickname: str = "ミツキ") -> str:
    with psycopg.connect(database_url) as conn:
        (person,) = conn.execute(
            "INSERT INTO people (nickname) VALUES (%s) RETURNING id", (nickname,)
        ).fetchone()  # type: ignore[misc]
        (post,) = conn.execute(
            "INSERT INTO posts (author_id, text) VALUES (%s, %s) RETURNING id", (person, text)
        ).fetchone()  # type: ignore[misc]
    return str(post)


def rows(database_url: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, args).fetchall()


def aired_once(database_url: str, post_id: str) -> bool:
    """The post is aired, by exactly one utterance, which carries its text."""
    [(status, utterance, text)] = rows(
        database_url, "SELECT status, utterance_id, text FROM posts WHERE id = %s", post_id
    )
    [(count,)] = rows(
        database_url,
        "SELECT count(*) FROM utterances WHERE kind = 'host' AND position(%s in text) > 0",
        text,
    )
    return status == "aired" and utterance is not None and count == 1


# --- Redis down, frozen or flushed: posts are kept and air -----------------------------------


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
async def test_post_written_while_redis_is_down_is_stored_and_airs(
    database_url: str,
    own_redis: RedisBox,
    host_redis: aioredis.Redis,
    livekit_server: LiveKit,
    outage: str,
) -> None:
    settings = make_settings(database_url, own_redis.url, livekit_server)
    async with running(settings) as api, Host(database_url, host_redis) as host:
        listener = await api.listener()
        own_redis.stop() if outage == "stopped" else own_redis.pause()

        resp, took = await timed(api.post(listener, "停電中に書きました"))
        assert resp.status_code == 201, resp.text
        assert resp.json()["status"] == "queued"
        assert took < 10, f"a post took {took:.1f} s against a {outage} Redis"
        assert (await api.client.get("/healthz")).status_code == 200
        ready = (await api.client.get("/readyz")).json()
        assert ready["parts"]["redis"].startswith("down") and ready["parts"]["postgres"] == "ok"

        # The host finds it in Postgres without the doorbell, and airs it once.
        post = await host.next_post(within=15)
        assert str(post.post.id) == resp.json()["id"]
        await host.air(post)
        assert aired_once(database_url, resp.json()["id"])
        mine = (await api.client.get("/api/posts/mine", headers=listener.headers)).json()
        assert mine[0]["status"] == "aired"


@pytest.mark.parametrize("how", ["flushall", "restart_empty"])
async def test_redis_coming_back_empty_strands_no_post(
    database_url: str,
    own_redis: RedisBox,
    host_redis: aioredis.Redis,
    livekit_server: LiveKit,
    how: str,
) -> None:
    """Handed over (doorbell rung, even claimed by a host) but not aired, then Redis loses
    everything: the post still airs, once."""
    settings = make_settings(database_url, own_redis.url, livekit_server)
    async with running(settings) as api:
        listener = await api.listener()
        first = (await api.post(listener, "一通目: ホストが受け取ったまま")).json()["id"]
        second = (await api.post(listener, "二通目: まだ誰も受け取っていない")).json()["id"]
        assert await host_redis.xlen(KEYS.posts) == 2
        async with Host(database_url, host_redis, batch=1) as host:
            await until(lambda: host.posts.waiting == 1, 10)  # holds the first only
            if how == "flushall":
                await host_redis.flushall()
            else:
                own_redis.restart_empty()
            assert await host_redis.exists(KEYS.posts) == 0
            for expected in (first, second):
                post = await host.next_post(within=15)
                assert str(post.post.id) == expected
                await host.air(post)
        for post_id in (first, second):
            assert aired_once(database_url, post_id)


async def test_doorbell_wakes_the_host_long_before_its_poll(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    settings = make_settings(database_url, redis_url, livekit_server)
    client = aioredis.from_url(redis_url)
    try:
        async with running(settings) as api, Host(database_url, client, poll_seconds=30) as host:
            listener = await api.listener()
            await asyncio.sleep(0.5)  # the host is blocked on the doorbell now
            started = time.monotonic()
            posted = (await api.post(listener, "すぐ読んでね")).json()["id"]
            post = await host.next_post(within=10)
            assert str(post.post.id) == posted
            assert time.monotonic() - started < 5  # the doorbell, not the 30 s poll
            # The doorbell stream is capped: it never grows with the history of posts.
            await client.xtrim(KEYS.posts, maxlen=0)
            for _ in range(1200):
                await api.station.doorbell.ring(uuid.uuid4())
            assert await client.xlen(KEYS.posts) < 1200
    finally:
        await client.aclose()


async def test_nothing_blocks_on_a_frozen_redis(
    database_url: str, own_redis: RedisBox, host_redis: aioredis.Redis
) -> None:
    async with Host(database_url, host_redis, poll_seconds=0.5) as host:
        await host.board.show(ListenersEvent(count=1))
        await host.board.written()
        assert await host_redis.hget(STATE, "listeners") == b"1"
        own_redis.pause()

        for call in (
            host.board.show(ListenersEvent(count=2)),
            host.board.show(FloorEvent(floor=FloorInfo(state="free"))),
            host.board.prompts_status(PromptsStatus(ok=True, problems=[])),
        ):
            _, took = await timed(call)
            assert took < 1.5, f"a board call took {took:.2f} s against a frozen Redis"

        # Posts still arrive (from Postgres) and air; each call within its bound.
        post_id = queue_post(database_url, "凍ったRedisでも届きます")
        post, took = await timed(host.next_post(within=15))
        assert str(post.post.id) == post_id
        assert (await timed(host.posts.still_queued(post)))[1] < BOUND
        ref, took = await timed(
            host.aired.host_utterance(
                text=f"お便り: {post.post.text}",
                segment="test",
                mode="offline",
                started_at=datetime.now(UTC),
                ended_at=datetime.now(UTC),
                interrupted=False,
            )
        )
        assert took < BOUND
        marked, took = await timed(host.posts.aired(post, ref))  # its event cannot be published
        assert marked and took < BOUND, f"aired() took {took:.2f} s"
        assert aired_once(database_url, post_id)

        # Redis answers again: the board carries the current state, the heartbeat lands.
        own_redis.resume()
        await host.board.show(ListenersEvent(count=3))
        await host.board.written()
        assert await host_redis.hget(STATE, "listeners") == b"3"


# --- Postgres down or frozen -----------------------------------------------------------------


@pytest.mark.parametrize("outage", ["stopped", "frozen"])
async def test_post_written_while_postgres_is_down_is_503_and_leaves_nothing(
    own_pg: PostgresBox, own_db: str, redis_url: str, livekit_server: LiveKit, outage: str
) -> None:
    settings = make_settings(own_db, redis_url, livekit_server)
    client = aioredis.from_url(redis_url, decode_responses=True)
    events = client.pubsub(ignore_subscribe_messages=True)
    await events.subscribe(KEYS.events)
    try:
        async with running(settings) as api:
            listener = await api.listener()
            own_pg.stop() if outage == "stopped" else own_pg.pause()

            resp, took = await timed(api.post(listener, "データベースが止まっています"))
            assert resp.status_code == 503
            assert resp.json() == {"detail": "the station's database is unavailable: retry shortly"}
            assert resp.headers["Retry-After"] == "5"
            assert took < 10, f"503 took {took:.1f} s"
            health, took = await timed(api.client.get("/healthz"))
            assert health.status_code == 200 and took < 1
            ready, took = await timed(api.client.get("/readyz"))
            assert ready.status_code == 503 and took < 5
            parts = ready.json()["parts"]
            assert parts["postgres"].startswith("down") and parts["redis"] == "ok"

            own_pg.resume()
            if outage == "stopped":
                own_pg.start()
            # Nothing half-written: no row, no doorbell, no event, no rate-limit hit.
            assert rows(own_db, "SELECT count(*) FROM posts") == [(0,)]
            assert await client.xlen(KEYS.posts) == 0
            assert await client.keys(KEYS.rate_limit("posts:*")) == []
            assert await events.get_message(timeout=0.5) is None

            async def accepted() -> bool:
                return (await api.post(listener, "戻りました")).status_code == 201

            await until(accepted, 20, step=0.5)  # the API recovers on its own
    finally:
        await events.aclose()
        await client.aclose()


async def test_host_spools_what_postgres_missed_and_writes_it_in_order(
    own_pg: PostgresBox, own_db: str, redis_url: str
) -> None:
    client = aioredis.from_url(redis_url)
    post_id = queue_post(own_db, "停電の前に届いたお便り")
    listener = rows(own_db, "SELECT author_id FROM posts")[0][0]
    t0 = datetime.now(UTC)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    try:
        async with Host(own_db, client) as host:
            post = await host.next_post(within=10)
            a = host.aired
            await a.host_utterance(
                text="before", segment="s", mode="offline", started_at=at(0), ended_at=at(1),
                interrupted=False,
            )  # fmt: skip
            own_pg.stop()

            calls = [
                a.host_utterance(
                    text="during", segment="s", mode="offline", started_at=at(2),
                    ended_at=at(3), interrupted=True,
                ),
                a.caller_turn(
                    identity=str(listener), text="", segment="s", started_at=at(4), ended_at=at(5)
                ),
                a.music(
                    file="music/dawn.ogg", title="Dawn", artist="radio24", segment="s",
                    started_at=at(6), duration_seconds=30.5,
                ),
                a.add_usage("gpt-realtime", audio_in=10, audio_out=20, text_in=3, text_out=4),
                a.recent_lines(5),
                host.posts.still_queued(post),
            ]  # fmt: skip
            answers = []
            for call in calls:
                answer, took = await timed(call)
                assert took < BOUND, f"{answer!r} took {took:.2f} s with Postgres down"
                answers.append(answer)
            caller, recent, still = answers[1], answers[4], answers[5]
            assert recent == [] and still is True
            _, took = await timed(a.set_text(caller, "もしもし、聞こえますか"))
            assert took < BOUND
            ref = await a.host_utterance(
                text=f"お便り: {post.post.text}", segment="s", mode="offline",
                started_at=at(7), ended_at=at(8), interrupted=False,
            )  # fmt: skip
            marked, took = await timed(host.posts.aired(post, ref))
            assert marked and took < BOUND
            assert a.spooled == 7

            own_pg.start()
            await a.host_utterance(
                text="after", segment="s", mode="offline", started_at=at(9), ended_at=at(10),
                interrupted=False,
            )  # fmt: skip
            async with asyncio.timeout(30):
                await a.flushed()
            assert await a.recent_lines(3) == ["during", f"お便り: {post.post.text}", "after"]

        log = rows(
            own_db,
            "SELECT kind, text, interrupted, title, artist, file, duration_ms, ref "
            "FROM utterances ORDER BY started_at",
        )
        assert [(k, t) for k, t, *_ in log] == [
            ("host", "before"),
            ("host", "during"),
            ("caller", "もしもし、聞こえますか"),
            ("music", "Dawn"),
            ("host", f"お便り: {post.post.text}"),
            ("host", "after"),
        ]
        assert log[1][2] is True
        assert log[3][3:7] == ("Dawn", "radio24", "music/dawn.ogg", 30500)
        [(status, aired_at, by)] = rows(
            own_db,
            "SELECT p.status, p.aired_at, u.ref FROM posts p "
            "JOIN utterances u ON u.id = p.utterance_id WHERE p.id = %s",
            post_id,
        )
        assert (status, by) == ("aired", ref)
        assert aired_at < datetime.now(UTC) - timedelta(seconds=0.2)  # when it aired, not later
        assert rows(own_db, "SELECT audio_out_tokens FROM model_usage") == [(20,)]
    finally:
        await client.aclose()


# A host as the job wires its post side, in a process of its own: it claims the one queued post
# (a lease of 1 s), waits for a line on stdin (Postgres is stopped meanwhile), then reads the post
# on air: its line and its mark are spooled. It says so and waits to be killed.
KILLED_HOST = """
import asyncio, sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
import redis.asyncio as aioredis
from agent.store.aired import AiredLog, open_pool
from agent.store.posts import PostQueue
from contract.keys import Keys

async def main():
    database_url, redis_url, folder = sys.argv[1:4]
    pool = open_pool(database_url)
    await pool.open(wait=True, timeout=10)
    aired = AiredLog(pool, spool_dir=Path(folder))
    posts = PostQueue(aioredis.from_url(redis_url), aired, keys=Keys("radio24-test"),
                      consumer="doomed", poll_seconds=0.2, lease_seconds=1)
    task = asyncio.create_task(posts.run())
    while posts.waiting == 0:
        await asyncio.sleep(0.05)
    post = posts.take()
    print("claimed", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    now = datetime.now(UTC)
    ref = await aired.host_utterance(
        text="お便り: " + post.post.text, segment="s", mode="offline", started_at=now,
        ended_at=now + timedelta(seconds=2), interrupted=False)
    assert await posts.aired(post, ref)
    print("spooled", aired.spooled, ref, flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


async def test_a_host_killed_while_postgres_is_down_leaves_its_marks_for_the_next_host(
    own_pg: PostgresBox,
    own_db: str,
    redis_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The post it read is aired exactly once: the next host (started while Postgres is still
    down, the dead host's lease long over) writes the dead host's line and mark from its spool
    file before it claims anything, so it never claims the post; the file is then removed. The
    same file replayed again changes nothing (the mark is "gone")."""
    post_id = queue_post(own_db, "停電の最中に読まれたお便り")
    folder = tmp_path / "spool"
    host = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        KILLED_HOST,
        own_db,
        redis_url,
        str(folder),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        cwd=rack.ROOT,
        env={**os.environ, "PYTHONPATH": str(rack.ROOT)},
    )
    assert host.stdin is not None and host.stdout is not None
    try:
        said = await asyncio.wait_for(host.stdout.readline(), 30)
        assert said.strip() == b"claimed", "the first host did not claim the post"
        own_pg.stop()
        host.stdin.write(b"on air\n")
        await host.stdin.drain()
        said = await asyncio.wait_for(host.stdout.readline(), 30)
        assert said.split()[:2] == [b"spooled", b"2"], said
        ref = uuid.UUID(said.split()[2].decode())
    finally:
        host.kill()  # SIGKILL: no shutdown, no goodbye
        await asyncio.wait_for(host.wait(), 10)
    killed_at = datetime.now(UTC)
    left = {p.name: p.read_text() for p in folder.glob("*.jsonl")}
    await asyncio.sleep(1.5)  # the dead host's lease is over

    client = aioredis.from_url(redis_url)
    pool = open_pool(own_db)
    await pool.open(wait=False)  # as the job does: Postgres is still down
    aired = AiredLog(pool, spool_dir=folder)
    queue = PostQueue(client, aired, keys=KEYS, consumer="next-host", poll_seconds=0.2)
    task = asyncio.create_task(queue.run())
    try:
        await until(lambda: aired.spooled == 2, 10)  # taken over while Postgres is down
        own_pg.start()
        async with asyncio.timeout(30):
            await aired.flushed()
        await asyncio.sleep(1.0)  # polls enough to claim the post, were it still queued
        assert queue.waiting == 0, "the next host claimed the post the dead host had read"
        assert aired_once(own_db, post_id)
        [(by, aired_at)] = rows(
            own_db,
            "SELECT u.ref, p.aired_at FROM posts p "
            "JOIN utterances u ON u.id = p.utterance_id WHERE p.id = %s",
            post_id,
        )
        assert by == ref and aired_at < killed_at  # the dead host's reading, when it aired
        assert len(left) == 1 and list(folder.glob("*.jsonl")) == [], "the file is removed"

        # The same file again (a copy): replayed, it changes nothing.
        [(name, text)] = left.items()
        (folder / f"copy-{name}").write_text(text)
        with caplog.at_level(logging.INFO, logger="radio24.aired"):
            await until(lambda: list(folder.glob("*.jsonl")) == [], 15)
        assert "replayed mark: post no longer queued" in caplog.messages
        assert aired_once(own_db, post_id)
        assert rows(own_db, "SELECT count(*) FROM utterances") == [(1,)]
        assert queue.waiting == 0
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await aired.aclose()
        await pool.close()
        await client.aclose()


async def test_host_calls_return_in_time_against_a_frozen_postgres(
    own_pg: PostgresBox, own_db: str, redis_url: str
) -> None:
    """psycopg waits up to 10 s for a frozen server to cancel a query; the host must not."""
    client = aioredis.from_url(redis_url)
    queue_post(own_db, "凍る前のお便り")
    try:
        async with Host(own_db, client) as host:
            post = await host.next_post(within=10)
            own_pg.pause()
            now = datetime.now(UTC)
            for call in (
                host.aired.host_utterance(
                    text="frozen", segment=None, mode="offline", started_at=now, ended_at=now,
                    interrupted=False,
                ),
                host.aired.recent_lines(3),
                host.posts.still_queued(post),
                host.aired.caller_turn(
                    identity="x", text="", segment=None, started_at=now, ended_at=now
                ),
            ):  # fmt: skip
                _, took = await timed(call)
                assert took < BOUND, f"a call took {took:.2f} s against a frozen Postgres"
            await asyncio.sleep(3)  # the queue's own loop runs into the frozen server too
            assert not host.task.done()  # type: ignore[union-attr]
            own_pg.resume()
            async with asyncio.timeout(30):
                await host.aired.flushed()
        assert [t for (t,) in rows(own_db, "SELECT text FROM utterances ORDER BY id")] == [
            "frozen",
            "",
        ]
    finally:
        own_pg.resume()
        await client.aclose()


async def test_a_query_cut_off_by_a_freeze_returns_on_time(
    own_pg: PostgresBox, own_db: str
) -> None:
    """Mid-query, a frozen server also holds psycopg's own cancel (it waits up to 10 s for the
    server to confirm); `within` hands control back on time all the same."""
    conn = await psycopg.AsyncConnection.connect(own_db, autocommit=True)
    try:

        async def slow() -> None:
            await conn.execute("SELECT pg_sleep(1)")

        asyncio.get_running_loop().call_later(0.3, own_pg.pause)
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await within(1.5, slow)
        took = time.monotonic() - started
        assert own_pg.paused and took < BOUND, f"returned after {took:.1f} s"
    finally:
        own_pg.resume()
        await conn.close()
