"""Posts survive a host that dies and a Redis that comes back empty: aired exactly once after."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path

import psycopg
import pytest
import redis.asyncio as aioredis

from agent.posts import STREAM
from tests.host.conftest import Station

pytestmark = pytest.mark.integration


def _every_segment_reads_posts_first(prompts: Path) -> None:
    for segment in (prompts / "segments").glob("*.md"):
        text = segment.read_text()
        segment.write_text(re.sub(r"(?m)^posts: \w+$", "posts: first", text))


def _queue_post(database_url: str, text: str) -> str:
    with psycopg.connect(database_url) as conn:
        (person,) = conn.execute(
            "INSERT INTO people (nickname) VALUES ('ミツキ') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        (post,) = conn.execute(
            "INSERT INTO posts (author_id, text) VALUES (%s, %s) RETURNING id", (person, text)
        ).fetchone()  # type: ignore[misc]
    return str(post)


def _claim_for_a_dead_host(database_url: str, post_id: str) -> None:
    """As a host killed mid-read leaves it: claimed, lease still running, never aired."""
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "UPDATE posts SET claimed_by = 'host:deadbeef', enqueued_at = now(), "
            "claimed_until = now() + interval '15 seconds' WHERE id = %s",
            (post_id,),
        )


def _aired(database_url: str, post_id: str) -> tuple[str, int | None, int]:
    """(status, utterance id, how many host utterances carry the post's text)."""
    with psycopg.connect(database_url) as conn:
        status, utterance, text = conn.execute(
            "SELECT status, utterance_id, text FROM posts WHERE id = %s", (post_id,)
        ).fetchone()  # type: ignore[misc]
        (count,) = conn.execute(
            "SELECT count(*) FROM utterances WHERE kind = 'host' AND position(%s in text) > 0",
            (text,),
        ).fetchone()  # type: ignore[misc]
    return status, utterance, count


async def test_post_queued_while_host_is_down_airs_exactly_once(
    offline_station: Station,
) -> None:
    station = offline_station
    _every_segment_reads_posts_first(station.prompts)
    first = station.start_worker()
    await station.start_keeper()
    listener = await station.listener()
    redis = aioredis.from_url(station.redis_url)
    try:
        await listener.wait_for_host(60)
        assert await listener.hears_host(15) is not None

        first.kill()  # a crash: no goodbye, no cleanup
        assert not first.leftovers(), "the killed worker left processes behind"

        # While the host is down: one post a dead host had already taken (claimed, its lease
        # still running), its doorbell rung twice; another only queued. Then Redis loses
        # everything (a flush, a failover to an empty replica): the doorbell entries are gone.
        taken = _queue_post(station.database_url, "きのう、はじめて富士山を見ました。")
        queued = _queue_post(station.database_url, "夜のコーヒーがおいしい季節ですね。")
        _claim_for_a_dead_host(station.database_url, taken)
        for post in (taken, queued, taken):
            await redis.xadd(STREAM, {"post_id": post})
        await redis.flushall()

        station.start_worker()  # the keeper dispatches the host to it
        deadline = time.monotonic() + 120
        while True:
            states = [_aired(station.database_url, p) for p in (taken, queued)]
            if all(s[0] == "aired" for s in states):
                break
            assert time.monotonic() < deadline, f"posts not aired after restart: {states}"
            await asyncio.sleep(0.5)
        await asyncio.sleep(8)  # long enough for a second airing, if there were one
        for post in (taken, queued):
            status, utterance, count = _aired(station.database_url, post)
            assert status == "aired" and utterance is not None
            assert count == 1, f"post {post} aired {count} times"
        with psycopg.connect(station.database_url) as conn:
            (held,) = conn.execute(
                "SELECT count(*) FROM posts WHERE claimed_until IS NOT NULL"
            ).fetchone()  # type: ignore[misc]
        assert held == 0, "aired posts hold no claim"
    finally:
        await redis.aclose()
        await listener.leave()


async def test_worker_stop_leaves_nothing_running(offline_station: Station) -> None:
    worker = offline_station.start_worker()
    await offline_station.start_keeper()
    listener = await offline_station.listener()
    try:
        await listener.wait_for_host(60)
        assert await listener.hears_host(15) is not None
        started = time.monotonic()
        await asyncio.to_thread(worker.stop, 40)
        assert time.monotonic() - started < 40
        assert worker.proc is not None and worker.proc.returncode is not None
        assert worker.leftovers() == [], "processes left running after the worker stopped"
        deadline = time.monotonic() + 10
        while "host" in listener.room.remote_participants:
            assert time.monotonic() < deadline, "the host stayed in the room"
            await asyncio.sleep(0.2)
    finally:
        await listener.leave()
