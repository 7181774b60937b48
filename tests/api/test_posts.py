"""Posts: written, moderated, stored, handed to the host exactly once, reviewed by producers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import psycopg
import pytest
import redis.asyncio as aioredis
import uvicorn
from fastapi import FastAPI, Request

from agent.store.aired import AiredLog, open_pool
from agent.store.posts import PostQueue
from api.auth import Person, issue_token
from contract.keys import Keys
from db import posts
from radio24 import rack
from tests.api.conftest import ROOM, Api, Who, make_settings, running, until
from tests.conftest import LiveKit

pytestmark = pytest.mark.integration


async def stream_post_ids(redis_url: str) -> list[str]:
    client = aioredis.from_url(redis_url, decode_responses=True)
    try:
        entries = await client.xrange(Keys(ROOM).posts)
    finally:
        await client.aclose()
    return [fields["post_id"] for _, fields in entries]


def db_row(database_url: str, sql: str, *args: object) -> tuple[object, ...] | None:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql, args).fetchone()


async def test_post_is_stored_queued_and_rings_the_hosts_doorbell(api: Api, redis_url: str) -> None:
    listener = await api.listener()
    resp = await api.post(listener, "  Good morning from Osaka!  ")
    assert resp.status_code == 201
    post = resp.json()
    assert post["status"] == "queued"
    assert post["text"] == "Good morning from Osaka!"
    assert await stream_post_ids(redis_url) == [post["id"]]
    row = db_row(
        api.settings.database_url.get_secret_value(),
        "SELECT status, claimed_by, enqueued_at FROM posts WHERE id = %s",
        post["id"],
    )
    assert row == ("queued", None, None)  # waiting for a host to claim it
    mine = (await api.client.get("/api/posts/mine", headers=listener.headers)).json()
    assert [(p["id"], p["status"]) for p in mine] == [(post["id"], "queued")]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "text is empty"),
        ("   \n\t ", "text is empty"),
        ("x" * 501, "501 characters long"),
        ("bad\u0000byte", "control characters"),
    ],
)
async def test_bad_text_is_422_saying_what_is_wrong(api: Api, text: str, says: str) -> None:
    listener = await api.listener()
    resp = await api.post(listener, text)
    assert resp.status_code == 422
    assert says in resp.text
    assert (await api.client.get("/api/posts/mine", headers=listener.headers)).json() == []


async def test_500_characters_is_fine(api: Api) -> None:
    listener = await api.listener()
    assert (await api.post(listener, "あ" * 500)).status_code == 201


async def test_idempotency_key_returns_the_same_post(api: Api, redis_url: str) -> None:
    listener = await api.listener()
    first = await api.post(listener, "only once please", **{"Idempotency-Key": "k-1"})
    again = await api.post(listener, "only once please", **{"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    other = await api.post(listener, "different text", **{"Idempotency-Key": "k-1"})
    assert other.status_code == 409
    mine = (await api.client.get("/api/posts/mine", headers=listener.headers)).json()
    assert len(mine) == 1
    assert await stream_post_ids(redis_url) == [first.json()["id"]]
    # Keys belong to their author: another listener's same key is a new post.
    someone = await api.listener("Someone")
    theirs = await api.post(someone, "only once please", **{"Idempotency-Key": "k-1"})
    assert theirs.json()["id"] != first.json()["id"]


async def test_parallel_retries_with_one_key_make_one_post(api: Api) -> None:
    listener = await api.listener()
    results = await asyncio.gather(
        *(api.post(listener, "raced", **{"Idempotency-Key": "race"}) for _ in range(5))
    )
    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1


async def test_rate_limit_is_429_with_retry_after(api: Api) -> None:
    listener = await api.listener()
    limit = api.settings.api_post_rate_limit
    for i in range(limit):
        assert (await api.post(listener, f"post {i}")).status_code == 201
    resp = await api.post(listener, "one too many")
    assert resp.status_code == 429
    assert 1 <= int(resp.headers["Retry-After"]) <= api.settings.api_post_rate_window_seconds
    # Per listener: someone else still gets through, and a retry of a stored post is no new post.
    assert (await api.post(await api.listener("Other"), "hello")).status_code == 201


async def test_rate_limit_window_reopens(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    settings = make_settings(
        database_url,
        redis_url,
        livekit_server,
        api_post_rate_limit=2,
        api_post_rate_window_seconds=1,
    )
    async with running(settings) as api:
        listener = await api.listener()
        assert (await api.post(listener, "a")).status_code == 201
        assert (await api.post(listener, "b")).status_code == 201
        refused = await api.post(listener, "c")
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "1"
        await asyncio.sleep(1.1)
        assert (await api.post(listener, "c")).status_code == 201


async def test_blocklisted_post_is_stored_rejected_with_reason_and_never_queued(
    api: Api, redis_url: str
) -> None:
    producer, listener = await api.producer(), await api.listener()
    resp = await api.client.post(
        "/api/blocklist", json={"term": "Spoiler"}, headers=producer.headers
    )
    assert resp.status_code == 201
    assert [t["term"] for t in resp.json()] == ["spoiler"]
    resp = await api.post(listener, "Big SPOILER: the host is an AI")
    assert resp.status_code == 201
    assert resp.json()["status"] == "rejected"
    assert resp.json()["reason"] == "blocklist: spoiler"
    assert await stream_post_ids(redis_url) == []
    row = db_row(
        api.settings.database_url.get_secret_value(),
        "SELECT status, reason FROM posts WHERE id = %s",
        resp.json()["id"],
    )
    assert row == ("rejected", "blocklist: spoiler")
    # Once the term is removed, the same words pass.
    removed = await api.client.delete("/api/blocklist/SPOILER", headers=producer.headers)
    assert removed.status_code == 204
    assert (
        await api.client.delete("/api/blocklist/spoiler", headers=producer.headers)
    ).status_code == 404
    assert (await api.post(listener, "Big spoiler: none")).json()["status"] == "queued"


@contextlib.asynccontextmanager
async def fake_moderation(flag_word: str) -> AsyncIterator[tuple[str, list[dict[str, object]]]]:
    """A loopback stand-in for OpenAI's /v1/moderations that flags one word."""
    seen: list[dict[str, object]] = []
    app = FastAPI()

    @app.post("/v1/moderations")
    async def moderations(request: Request) -> dict[str, object]:
        body = await request.json()
        seen.append({"body": body, "auth": request.headers.get("authorization")})
        flagged = flag_word in body["input"]
        return {
            "results": [
                {"flagged": flagged, "categories": {"harassment": flagged, "violence": False}}
            ]
        }

    port = rack.free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.create_task(server.serve())
    await until(lambda: server.started)
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        server.should_exit = True
        await task


async def test_openai_moderation_rejects_when_a_key_is_set(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    async with fake_moderation("idiot") as (base_url, seen):
        settings = make_settings(
            database_url,
            redis_url,
            livekit_server,
            openai_api_key="sk-test",
            openai_base_url=base_url,
        )
        async with running(settings) as api:
            listener = await api.listener()
            rude = (await api.post(listener, "you idiot")).json()
            kind = (await api.post(listener, "you star")).json()
    assert rude["status"] == "rejected"
    assert rude["reason"] == "moderation: harassment"
    assert kind["status"] == "queued"
    assert seen[0]["auth"] == "Bearer sk-test"


async def test_moderation_outage_holds_the_post_and_stores_nothing(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    dead = f"http://127.0.0.1:{rack.free_port()}/v1"
    settings = make_settings(
        database_url, redis_url, livekit_server, openai_api_key="sk-test", openai_base_url=dead
    )
    async with running(settings) as api:
        # Nicknames are refused while moderation is away (tests/security): sign in beforehand.
        with psycopg.connect(database_url) as conn:
            row = conn.execute(
                "INSERT INTO people (nickname) VALUES ('Mika') RETURNING id"
            ).fetchone()
        person = Person(row[0], "Mika", "listener")  # type: ignore[index]
        token, _ = issue_token(settings.api_jwt_secret.get_secret_value(), person, 600)
        resp = await api.post(Who(str(person.id), token, "Mika"), "hello while openai is away")
        # Moderation never fails open: a clear 503 to send it again, and no row at all.
        assert resp.status_code == 503, resp.text
        assert resp.headers["Retry-After"] == "30"
        assert "not stored" in resp.json()["detail"]
        with psycopg.connect(database_url) as conn:
            stored = conn.execute("SELECT count(*) FROM posts WHERE author_id = %s", (row[0],))
            assert stored.fetchone() == (0,)  # type: ignore[index]
        metrics = (await api.client.get("/metrics")).text
        assert "radio24_moderation_unavailable_total 1.0" in metrics


# --- Producers review posts ------------------------------------------------------------------


async def test_producer_lists_hides_rejects_and_approves(api: Api, redis_url: str) -> None:
    producer, listener = await api.producer(), await api.listener()
    post = (await api.post(listener, "please read me")).json()
    pid = post["id"]

    listed = (await api.client.get("/api/posts?status=queued", headers=producer.headers)).json()
    assert [(p["id"], p["author"], p["author_id"]) for p in listed] == [(pid, "Mika", listener.id)]
    assert (await api.client.get("/api/posts?status=aired", headers=producer.headers)).json() == []
    bad = await api.client.get("/api/posts?status=lost", headers=producer.headers)
    assert bad.status_code == 422

    async def review(action: str, **extra: object) -> tuple[int, dict[str, object]]:
        resp = await api.client.patch(
            f"/api/posts/{pid}", json={"action": action, **extra}, headers=producer.headers
        )
        return resp.status_code, resp.json()

    assert await review("hide") == (
        200,
        {"id": pid, "status": "hidden", "reason": "hidden by a producer"},
    )
    assert await review("reject", reason="off topic") == (
        200,
        {"id": pid, "status": "rejected", "reason": "off topic"},
    )
    mine = (await api.client.get("/api/posts/mine", headers=listener.headers)).json()
    assert (mine[0]["status"], mine[0]["reason"]) == ("rejected", "off topic")
    assert await review("approve") == (200, {"id": pid, "status": "queued", "reason": None})
    # Approved again: owed to the host again, handed over once more.
    assert await stream_post_ids(redis_url) == [pid, pid]
    # Approving a queued post changes nothing and hands nothing over.
    assert (await review("approve"))[0] == 200
    assert await stream_post_ids(redis_url) == [pid, pid]


async def test_aired_post_is_final(api: Api) -> None:
    producer, listener = await api.producer(), await api.listener()
    pid = (await api.post(listener, "aired soon")).json()["id"]
    with psycopg.connect(api.settings.database_url.get_secret_value()) as conn:
        conn.execute("UPDATE posts SET status = 'aired', aired_at = now() WHERE id = %s", (pid,))
    for action in ("hide", "reject", "approve"):
        resp = await api.client.patch(
            f"/api/posts/{pid}", json={"action": action}, headers=producer.headers
        )
        assert resp.status_code == 409
        assert "aired" in resp.json()["detail"]


async def test_review_of_a_missing_post_is_404_and_bad_action_422(api: Api) -> None:
    producer = await api.producer()
    resp = await api.client.patch(
        f"/api/posts/{uuid.uuid4()}", json={"action": "hide"}, headers=producer.headers
    )
    assert resp.status_code == 404
    resp = await api.client.patch(
        f"/api/posts/{uuid.uuid4()}", json={"action": "delete"}, headers=producer.headers
    )
    assert resp.status_code == 422
    resp = await api.client.patch(
        "/api/posts/not-a-uuid", json={"action": "hide"}, headers=producer.headers
    )
    assert resp.status_code == 422


async def test_review_publishes_the_status_to_live_events(api: Api, redis_url: str) -> None:
    producer, listener = await api.producer(), await api.listener()
    pid = (await api.post(listener, "watch me")).json()["id"]
    client = aioredis.from_url(redis_url, decode_responses=True)
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    await pubsub.subscribe(Keys(ROOM).events)
    try:
        await api.client.patch(
            f"/api/posts/{pid}", json={"action": "hide"}, headers=producer.headers
        )
        message = None
        async with asyncio.timeout(5):
            while message is None:
                message = await pubsub.get_message(timeout=1)
    finally:
        await pubsub.aclose()
        await client.aclose()
    assert json.loads(message["data"]) == {
        "type": "post_status",
        "post_id": pid,
        "listener_id": listener.id,
        "status": "hidden",
    }


# --- Two hosts claiming at once ---------------------------------------------------------------


async def test_two_hosts_claiming_at_once_never_take_the_same_post(api: Api) -> None:
    """Postgres hands each queued post to one host only (SKIP LOCKED claims with a lease)."""
    listener = await api.listener()
    database_url = api.settings.database_url.get_secret_value()
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO posts (author_id, text) SELECT %s, 'post ' || g "
            "FROM generate_series(1, 60) g",
            (listener.id,),
        )
    pool = open_pool(database_url)
    await pool.open(wait=True)
    try:
        aired = AiredLog(pool)
        hosts = [PostQueue(api.station.redis, aired, consumer="host", batch=5) for _ in range(2)]
        assert hosts[0].claimer != hosts[1].claimer
        claimed: list[list[str]] = [[], []]

        async def claim_all(i: int) -> None:
            while True:
                held = [uuid.UUID(p) for p in claimed[i]]
                got = await aired.claim_posts(hosts[i].claimer, 5, 15, held)
                assert got is not None
                if not got:
                    return
                claimed[i].extend(str(p.id) for p in got)

        await asyncio.gather(claim_all(0), claim_all(1))
    finally:
        await pool.close()
    every = claimed[0] + claimed[1]
    assert len(every) == len(set(every)) == 60
    assert claimed[0] and claimed[1], "both hosts got a share"


async def test_the_store_claims_renews_releases_and_airs_a_post_once(api: Api) -> None:
    """db/posts.py, the host's side of the status machine, on a pool with the host's dict rows:
    claimed oldest first by one host only, renewed while still queued and held, released at
    once, and aired once."""
    listener = await api.listener()
    ids = [uuid.UUID((await api.post(listener, f"post {i}")).json()["id"]) for i in range(3)]
    pool = open_pool(api.settings.database_url.get_secret_value())  # dict rows, as the host's
    await pool.open(wait=True)
    try:
        async with pool.connection() as conn:
            mine = await posts.claim(conn, "host:a", 2, 15, [])
            assert [p.id for p in mine] == ids[:2]
            assert all(p.author == listener.nickname for p in mine)
            theirs = await posts.claim(conn, "host:b", 5, 15, [])
            assert [p.id for p in theirs] == ids[2:]
            assert await posts.renew_claims(conn, "host:a", ids, 15) == set(ids[:2])
            aired = await posts.mark_aired(conn, ids[0], uuid.uuid4(), datetime.now(UTC))
            assert aired == posts.AiredPost(ids[0], uuid.UUID(listener.id))
            assert await posts.mark_aired(conn, ids[0], uuid.uuid4(), datetime.now(UTC)) is None
            assert await posts.renew_claims(conn, "host:a", ids, 15) == {ids[1]}
            await posts.release_claims(conn, "host:a")
            assert [p.id for p in await posts.claim(conn, "host:b", 5, 15, ids[2:])] == [ids[1]]
    finally:
        await pool.close()
