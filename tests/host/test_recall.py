"""recall_posts finds past aired posts by meaning (real local embeddings, real pgvector)."""

from __future__ import annotations

import json

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from agent.host import Host
from agent.memory import recall_quotes

pytestmark = pytest.mark.integration

POSTS = [
    ("ハル", "雨の朝は、窓をたたく音を聞きながらコーヒーを飲むのが好きです。", "aired"),
    ("ソラ", "昨日の野球の試合、九回裏の逆転ホームランに鳥肌が立ちました。", "aired"),
    ("ミオ", "新しいパン屋さんのクロワッサンがとてもおいしかった。", "aired"),
    ("カイ", "雨の日の散歩も、傘の音が楽しいですね。", "hidden"),  # never recalled
]


async def test_recall_posts_finds_aired_posts_by_meaning(database_url: str) -> None:
    from db.memory import LocalEmbedder, MemoryStore

    ids = []
    with psycopg.connect(database_url) as conn:
        for nick, text, status in POSTS:
            (person,) = conn.execute(
                "INSERT INTO people (nickname) VALUES (%s) RETURNING id", (nick,)
            ).fetchone()  # type: ignore[misc]
            (post,) = conn.execute(
                "INSERT INTO posts (author_id, text, status, aired_at) VALUES (%s, %s, %s, "
                "CASE WHEN %s = 'aired' THEN now() END) RETURNING id",
                (person, text, status, status),
            ).fetchone()  # type: ignore[misc]
            ids.append((post, text))
    async with AsyncConnectionPool(database_url, min_size=1, max_size=1, open=False) as pool:
        store = MemoryStore(pool, LocalEmbedder())
        for post, text in ids:
            await store.add(post, text)
        found = await recall_quotes(store, "雨の日の朝", k=3)
        assert found[0]["author"] == "ハル" and "雨の朝" in found[0]["quote"]
        assert all(f["author"] != "カイ" for f in found), "a hidden post was recalled"
        assert len(found[0]["date"]) == 10

        async def recall(topic: str) -> list[dict[str, str]]:
            return await recall_quotes(store, topic)

        presenter = Host("test", recall=recall, next_post=lambda: None)
        answer = json.loads(await presenter.recall_posts("野球"))
        assert answer["posts"][0]["author"] == "ソラ"
