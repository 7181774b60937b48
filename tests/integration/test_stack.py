"""The real parts answer: LiveKit carries audio between participants, pgvector finds
neighbours, Redis streams round-trip, migrations apply to an empty database idempotently."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import psycopg
import pytest
import redis.asyncio as aioredis
from livekit import api as lkapi
from livekit import rtc
from pgvector.psycopg import register_vector_async

from db import migrate
from tests.conftest import LiveKit, Postgres

pytestmark = pytest.mark.integration


def token(lk: LiveKit, identity: str, room: str, *, publish: bool) -> str:
    grants = lkapi.VideoGrants(room_join=True, room=room, can_subscribe=True, can_publish=publish)
    return (
        lkapi.AccessToken(lk.api_key, lk.api_secret)
        .with_identity(identity)
        .with_grants(grants)
        .to_jwt()
    )


async def test_listener_hears_audio_another_participant_publishes(livekit_server: LiveKit) -> None:
    room_name = "stack-audio"
    speaker, listener = rtc.Room(), rtc.Room()
    heard: asyncio.Queue[rtc.AudioFrame] = asyncio.Queue()
    drains: list[asyncio.Future[None]] = []

    @listener.on("track_subscribed")
    def _on_track(track: rtc.Track, *_: object) -> None:
        async def drain() -> None:
            async for event in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
                await heard.put(event.frame)

        drains.append(asyncio.ensure_future(drain()))

    await listener.connect(livekit_server.url, token(livekit_server, "listener", room_name,
                                                     publish=False))  # fmt: skip
    await speaker.connect(livekit_server.url, token(livekit_server, "speaker", room_name,
                                                    publish=True))  # fmt: skip
    source = rtc.AudioSource(48000, 1)
    track = rtc.LocalAudioTrack.create_audio_track("tone", source)
    await speaker.local_participant.publish_track(
        track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
    )

    async def play_tone() -> None:
        t = np.arange(480) / 48000
        for i in range(300):  # 3 s of 440 Hz in 10 ms frames
            pcm = (0.3 * 32767 * np.sin(2 * np.pi * 440 * (t + i * 0.01))).astype(np.int16)
            await source.capture_frame(rtc.AudioFrame(pcm.tobytes(), 48000, 1, 480))

    player = asyncio.ensure_future(play_tone())
    try:
        loudest = 0.0
        async with asyncio.timeout(10):
            while loudest < 1000:
                frame = await heard.get()
                samples = np.frombuffer(frame.data, dtype=np.int16)
                loudest = max(loudest, float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))))
        assert loudest >= 1000, "the listener received only silence"
    finally:
        player.cancel()
        for drain in drains:
            drain.cancel()
        await speaker.disconnect()
        await listener.disconnect()


async def test_listener_token_without_publish_grant_cannot_publish(livekit_server: LiveKit) -> None:
    room = rtc.Room()
    await room.connect(livekit_server.url, token(livekit_server, "guest", "stack-grants",
                                                 publish=False))  # fmt: skip
    try:
        source = rtc.AudioSource(48000, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", source)
        with pytest.raises(Exception) as refused:  # the SDK raises a bare error
            await asyncio.wait_for(room.local_participant.publish_track(track), 10)
        # Whatever the client saw, the server must hold no track from this participant.
        async with lkapi.LiveKitAPI(livekit_server.http_url, livekit_server.api_key,
                                    livekit_server.api_secret) as server:  # fmt: skip
            info = await server.room.get_participant(
                lkapi.RoomParticipantIdentity(room="stack-grants", identity="guest")
            )
        assert list(info.tracks) == [], f"published despite no grant ({refused.value!r})"
    finally:
        await room.disconnect()


NEAREST = (
    "SELECT post_id FROM post_embeddings WHERE model = 'all-MiniLM-L6-v2' "
    "ORDER BY embedding::vector(384) <=> %s::vector(384) LIMIT 3"
)


async def _fetch(conn: psycopg.AsyncConnection, sql: str, params: tuple = ()) -> list[tuple]:
    return await (await conn.execute(sql, params)).fetchall()


async def test_pgvector_answers_a_nearest_neighbour_query(database_url: str) -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(200, 384)).astype(np.float32)
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        await register_vector_async(conn)
        [(author,)] = await _fetch(
            conn, "INSERT INTO people (nickname) VALUES ('tester') RETURNING id"
        )
        ids = []
        for i, vec in enumerate(vectors):
            [(post_id,)] = await _fetch(
                conn, "INSERT INTO posts (author_id, text) VALUES (%s, %s) RETURNING id",
                (author, f"post {i}"),
            )  # fmt: skip
            ids.append(post_id)
            await conn.execute(
                "INSERT INTO post_embeddings (post_id, model, embedding) VALUES (%s, %s, %s)",
                (post_id, "all-MiniLM-L6-v2", vec),
            )
        query = vectors[42] + 0.01 * rng.normal(size=384).astype(np.float32)
        rows = await _fetch(conn, NEAREST, (query,))
        assert rows[0][0] == ids[42]
        # The query's shape matches the per-model HNSW index (forced: 200 rows favour a scan).
        await conn.execute("SET enable_seqscan = off")
        plan = await _fetch(conn, "EXPLAIN " + NEAREST, (query,))
        assert any("post_embeddings_minilm" in line for (line,) in plan), plan
        assert (await _fetch(conn, NEAREST, (query,)))[0][0] == ids[42]


async def test_redis_stream_round_trip_and_reclaim(redis_url: str) -> None:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        await client.xgroup_create("s", "host", id="0", mkstream=True)
        sent = await client.xadd("s", {"post": "p1"})
        got = await client.xreadgroup("host", "c1", {"s": ">"}, count=1)
        assert got[0][1][0] == (sent, {"post": "p1"})
        # Unacked by c1 (it "died"): c2 reclaims it. 6.2 returns 2 elements, 7.x returns 3.
        reply = await client.xautoclaim("s", "host", "c2", min_idle_time=0, start_id="0-0")
        claimed = reply[1]
        assert claimed[0][0] == sent
        assert await client.xack("s", "host", sent) == 1
        assert (await client.xpending("s", "host"))["pending"] == 0
    finally:
        await client.aclose()


def test_migrations_apply_to_an_empty_database_and_are_idempotent(
    postgres_server: Postgres,
) -> None:
    from radio24 import rack

    url = rack.create_database(postgres_server.port, "empty_for_migrations")
    expected = sorted(
        f.name.removesuffix(".sql")
        for f in migrate.MIGRATIONS.glob("*.sql")
        if not f.name.endswith(".rollback.sql")
    )
    assert expected[0] == "0001.initial"
    assert sorted(migrate.apply(url)) == expected
    assert migrate.apply(url) == []
    with psycopg.connect(url) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()}  # fmt: skip
    assert {"people", "posts", "post_embeddings", "utterances", "station_state"} <= tables


def test_migration_ids_are_unambiguous_in_order() -> None:
    """Each number names one migration: yoyo orders by id, and two files sharing a number
    left their order to the alphabet."""
    ids = [
        f.name.removesuffix(".sql")
        for f in migrate.MIGRATIONS.glob("*.sql")
        if not f.name.endswith(".rollback.sql")
    ]
    numbers = [i.split(".", 1)[0] for i in ids]
    assert len(set(numbers)) == len(numbers), sorted(ids)


def test_a_database_migrated_before_the_renumbering_migrates_cleanly(
    postgres_server: Postgres, tmp_path: Path
) -> None:
    """A station whose database applied the multilingual-memory migration as 0003 (before it
    became 0004) starts as usual: the renumbered migration records itself and changes nothing."""
    import shutil

    from yoyo import get_backend, read_migrations

    from radio24 import rack

    old = tmp_path / "migrations"
    shutil.copytree(migrate.MIGRATIONS, old)
    for suffix in (".sql", ".rollback.sql"):
        (old / f"0004.multilingual-memory{suffix}").rename(
            old / f"0003.multilingual-memory{suffix}"
        )
    # The old file as it was applied: no IF NOT EXISTS, no dependency.
    (old / "0003.multilingual-memory.sql").write_text(
        "CREATE INDEX post_embeddings_use ON post_embeddings\n"
        "    USING hnsw ((embedding::vector(512)) vector_cosine_ops)\n"
        "    WHERE model = 'use-multilingual-v3';\n"
    )
    url = rack.create_database(postgres_server.port, "migrated_as_0003")
    backend = get_backend(migrate.yoyo_url(url))
    try:
        with backend.lock():
            backend.apply_migrations(backend.to_apply(read_migrations(str(old))))
    finally:
        backend.connection.close()

    assert migrate.apply(url) == ["0004.multilingual-memory"]
    assert migrate.apply(url) == []
    with psycopg.connect(url) as conn:
        (indexes,) = conn.execute(
            "SELECT count(*) FROM pg_indexes WHERE indexname = 'post_embeddings_use'"
        ).fetchone()  # type: ignore[misc]
    assert indexes == 1


def test_parts_stop_cleanly_when_their_parent_is_killed(tmp_path: Path) -> None:
    """A SIGKILLed test run or supervisor leaves no Postgres or Redis behind."""
    import subprocess
    import sys
    import time

    import psutil

    from tests.conftest import world_traversable_dir

    folder = world_traversable_dir("radio24-orphans-")
    script = f"""
import time
from pathlib import Path
from radio24 import rack
d = Path({str(folder)!r})
rack.prepare_postgres(d / "pg")
pg_port, redis_port = rack.free_port(), rack.free_port()
pg = rack.popen(rack.postgres(d / "pg", pg_port), d / "pg.log")
rd = rack.popen(rack.redis(d / "redis", redis_port), d / "redis.log")
rack.wait_port(pg_port, 30, pg)
rack.wait_port(redis_port, 30, rd)
print(pg.pid, rd.pid, flush=True)
time.sleep(120)
"""
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        line = parent.stdout.readline() if parent.stdout else ""
        pids = [int(p) for p in line.split()]
        assert len(pids) == 2, "the parts did not start"
        assert all(psutil.pid_exists(pid) for pid in pids)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 20
        while any(psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
                  for pid in pids):  # fmt: skip
            assert time.monotonic() < deadline, "parts outlived their killed parent"
            time.sleep(0.1)
        assert not (folder / "pg" / "postmaster.pid").exists(), "Postgres did not shut down"
    finally:
        if parent.poll() is None:
            parent.kill()
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
