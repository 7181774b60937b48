"""Posts survive a host that dies and a Redis that comes back empty: aired exactly once after.
A caller's press that cuts a post's reading: the post airs again only if none of it had aired."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import psycopg
import pytest
import redis.asyncio as aioredis

from contract.keys import Keys
from tests.fakes.realtime_server import DEFAULT_REPLY, FakeRealtimeServer, ResponseRequest
from tests.host.conftest import Listener, Station, silence_pcm
from tests.host.test_ptt import _on_air, _publish_when_granted

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
            await redis.xadd(Keys(station.room).posts, {"post_id": post})
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


CUT_POST = "駅前の桜が、今朝ちょうど満開になっていました。"


def _reads_the_post(request: ResponseRequest) -> bool:
    """A request to read CUT_POST: the host has just added it as a quoted user item."""
    return any(
        item.get("role") == "user" and CUT_POST in json.dumps(item, ensure_ascii=False)
        for item in request.new_items
    )


async def _reading_asked(fake: FakeRealtimeServer, count: int, within: float = 60) -> float:
    """Wait for the `count`-th request to read the post; when it arrived (monotonic)."""
    deadline = time.monotonic() + within
    while len([r for r in fake.response_requests if _reads_the_post(r)]) < count:
        assert time.monotonic() < deadline, f"the host was not asked to read the post ({count})"
        await asyncio.sleep(0.02)
    return time.monotonic()


async def _press_and_release(caller: Listener) -> float:
    """A press that says nothing: the host is cut, then carries on. Returns when the press
    was answered (the host has stopped by then)."""
    held = json.loads(await caller.rpc("start_turn"))
    pressed = time.monotonic()
    assert held["state"] == "held"
    await _publish_when_granted(caller)
    await caller.speak(silence_pcm(1.0))
    assert json.loads(await caller.rpc("end_turn"))["status"] == "no_speech"
    await caller.unpublish()
    return pressed


async def test_a_post_cut_by_a_press_airs_again_only_if_none_of_it_aired(
    realtime_station: Station,
) -> None:
    """First the caller presses while the model is still preparing the reading (nothing on
    air): the post goes back and is read after the call. Then the caller presses a second
    into that reading: it counts as aired, is logged as cut, and is never read again."""
    station, fake = realtime_station, realtime_station.fake
    assert fake is not None
    _every_segment_reads_posts_first(station.prompts)

    def reply(request: ResponseRequest) -> str:
        last = request.conversation[-1] if request.conversation else {}
        if last.get("role") == "user" and CUT_POST in json.dumps(last, ensure_ascii=False):
            return f"Reading a post: {CUT_POST}"
        return DEFAULT_REPLY

    fake.reply = reply
    fake.reply_seconds = 4.0  # a reading long enough to press into
    caller = await _on_air(station)
    redis = aioredis.from_url(station.redis_url)
    try:
        fake.response_latency = 1.5  # the model takes a moment: room to press before audio
        post = _queue_post(station.database_url, CUT_POST)
        await redis.xadd(Keys(station.room).posts, {"post_id": post})

        asked = await _reading_asked(fake, 1)
        pressed = await _press_and_release(caller)
        fake.response_latency = 0.0
        assert pressed - asked < 1.5, "the press came after the model's answer had started"
        assert _aired(station.database_url, post)[0] == "queued", "a post nobody heard aired"

        asked = await _reading_asked(fake, 2)
        heard = await caller.hears_host(10, since=asked)
        assert heard is not None, "the post's second reading was not heard"
        await asyncio.sleep(1.0)
        assert caller.levels[-1][1] > 300, "the reading was over before the press"
        await _press_and_release(caller)
        released = len(fake.response_requests)

        deadline = time.monotonic() + 20
        while _aired(station.database_url, post)[0] != "aired":
            assert time.monotonic() < deadline, "the cut reading was not marked aired"
            await asyncio.sleep(0.3)
        # A post put back is the next cue (posts first), or the one after a station ID.
        while len([r for r in fake.response_requests[released:] if r.refused is None]) < 2:
            assert time.monotonic() < deadline + 20, "the host did not carry on after the call"
            await asyncio.sleep(0.1)
        readings = len([r for r in fake.response_requests if _reads_the_post(r)])
        assert readings == 2, f"the host was asked to read the post {readings} times"
        with psycopg.connect(station.database_url) as conn:
            # The model's words up to the cut (the plugin's transcript, synchronised to the
            # audio that played), so only the reading's first word is sure to be there.
            readings_logged = conn.execute(
                "SELECT u.id, u.interrupted, u.mode FROM utterances u "
                "WHERE u.kind = 'host' AND position('Reading' in u.text) = 1"
            ).fetchall()
            (linked,) = conn.execute(
                "SELECT utterance_id FROM posts WHERE id = %s", (post,)
            ).fetchone()  # type: ignore[misc]
        assert len(readings_logged) == 1, f"the reading was logged {len(readings_logged)} times"
        [(utterance, interrupted, mode)] = readings_logged
        assert linked == utterance, "the post is not linked to the reading that aired"
        assert (interrupted, mode) == (True, "realtime")
    finally:
        await redis.aclose()
        await caller.leave()
