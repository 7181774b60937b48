"""Memory of posts: the worker embeds posts with the real local multilingual model, and a search
finds the nearest in meaning first."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from db.memory import LOCAL_MODEL, LocalEmbedder, MemoryStore
from tests.api.conftest import Api, make_settings, running
from tests.conftest import LiveKit

pytestmark = pytest.mark.integration

POSTS = [
    "My cat sleeps on the keyboard every morning",
    "The stock market fell sharply today",
    "Heavy rain flooded the streets of Osaka",
    "Can you play some jazz piano tonight?",
]


async def test_worker_embeds_posts_and_search_finds_the_nearest_first(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    settings = make_settings(
        database_url, redis_url, livekit_server, api_embeddings="local", api_post_rate_limit=100
    )
    async with running(settings) as api:
        producer, listener = await api.producer(), await api.listener()
        ids = [(await api.post(listener, text)).json()["id"] for text in POSTS]
        async with asyncio.timeout(60):  # off the request path, shortly after
            while True:
                with psycopg.connect(database_url) as conn:
                    row = conn.execute(
                        "SELECT count(*), min(model), max(vector_dims(embedding)) "
                        "FROM post_embeddings"
                    ).fetchone()
                if row and row[0] == len(POSTS):
                    break
                await asyncio.sleep(0.2)
        assert row[1:] == (LOCAL_MODEL, 512)

        async def search(q: str) -> list[dict[str, object]]:
            resp = await api.client.get(
                "/api/posts/search", params={"q": q, "k": 3}, headers=producer.headers
            )
            assert resp.status_code == 200, resp.text
            return resp.json()  # type: ignore[no-any-return]

        kitten = await search("a kitten napping")
        assert kitten[0]["id"] == ids[0]
        assert kitten[0]["author"] == "Mika" and kitten[0]["model"] == LOCAL_MODEL
        assert len(kitten) == 3
        assert [f["distance"] for f in kitten] == sorted(f["distance"] for f in kitten)
        assert (await search("shares and investors lost money"))[0]["id"] == ids[1]
        assert (await search("bad weather and storms"))[0]["id"] == ids[2]
        assert (await search("music request"))[0]["id"] == ids[3]
        # The station speaks Japanese: a query in Japanese finds the English post it means.
        assert (await search("子猫が昼寝している"))[0]["id"] == ids[0]
        assert (await search("大雨で道路が水浸し"))[0]["id"] == ids[2]

        # Hidden or rejected posts are never recalled.
        await api.client.patch(
            f"/api/posts/{ids[0]}", json={"action": "hide"}, headers=producer.headers
        )
        assert ids[0] not in [f["id"] for f in await search("a kitten napping")]

        metrics = (await api.client.get("/metrics")).text
        assert "radio24_embedding_lag_posts 0.0" in metrics
        assert "radio24_embedded_posts_total 4.0" in metrics

        bad = await api.client.get("/api/posts/search", params={"q": ""}, headers=producer.headers)
        assert bad.status_code == 422


async def test_search_is_503_when_embeddings_are_off(api: Api) -> None:
    producer = await api.producer()
    resp = await api.client.get("/api/posts/search", params={"q": "cats"}, headers=producer.headers)
    assert resp.status_code == 503


async def test_memory_store_is_usable_alone_as_the_host_will(database_url: str) -> None:
    """The host's `recall_posts` builds a MemoryStore on its own pool and calls `search`."""
    with psycopg.connect(database_url) as conn:
        author = conn.execute(
            "INSERT INTO people (nickname) VALUES ('Ann') RETURNING id"
        ).fetchone()
        post_ids = [
            conn.execute(
                "INSERT INTO posts (author_id, text, status, aired_at) "
                "VALUES (%s, %s, 'aired', now()) RETURNING id",
                (author[0], text),
            ).fetchone()[0]
            for text in POSTS
        ]  # type: ignore[index]
    async with AsyncConnectionPool(database_url, min_size=1, max_size=2, open=False) as pool:
        store = MemoryStore(pool, LocalEmbedder())
        assert (await store.lag()).waiting == len(POSTS)
        assert await store.embed_pending() == len(POSTS)
        assert await store.embed_pending() == 0
        found = await store.search("jazz music", k=2, statuses=("aired",))
        assert found[0].post_id == post_ids[3]
        assert found[0].author == "Ann" and found[0].status == "aired"
        assert len(found) == 2
        assert await store.search("jazz music", k=2, statuses=("queued",)) == []
