"""recall_posts finds past aired posts by meaning (real local embeddings, real pgvector), and
on air a slow recall is waited for: the listener hears the model's answer, not the offline voice.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from agent.store.memory import recall_quotes
from agent.voice.host import Host
from db.memory import OPENAI_SMALL, vector_literal
from tests.fakes.realtime_server import DEFAULT_REPLY, ResponseRequest, fake_embedding
from tests.host.conftest import Station
from tests.host.test_ptt import _on_air

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


TOPIC = "雨の朝のコーヒー"
ANSWER = "From the mailbag"
TOOL_SECONDS = 4.0


def _waiting_on_a_lock(database_url: str) -> bool:
    """Is a query of another session waiting for a lock on post_embeddings (the recall)?"""
    with psycopg.connect(database_url, autocommit=True) as conn:
        (n,) = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' AND query ILIKE '%%post_embeddings%%' "
            "AND pid <> pg_backend_pid()"
        ).fetchone()  # type: ignore[misc]
    return n > 0


async def test_a_slow_recall_is_waited_for_not_covered_by_the_offline_voice(
    realtime_station: Station,
) -> None:
    """The model calls recall_posts and the search takes over 4 s (Postgres holds it behind a
    table lock): no offline fallback line airs meanwhile, and the model's answer with the
    recalled post airs after the tool result."""
    station, fake = realtime_station, realtime_station.fake
    assert fake is not None
    quote = POSTS[0][1]
    with psycopg.connect(station.database_url) as conn:
        (person,) = conn.execute(
            "INSERT INTO people (nickname) VALUES ('ハル') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        (post,) = conn.execute(
            "INSERT INTO posts (author_id, text, status, aired_at) "
            "VALUES (%s, %s, 'aired', now()) RETURNING id",
            (person, quote),
        ).fetchone()  # type: ignore[misc]
        # Stored under the vector the fake's embeddings endpoint gives the topic: the host's
        # search (OpenAI embedder pointed at the fake) finds exactly this post.
        conn.execute(
            "INSERT INTO post_embeddings (post_id, model, embedding) VALUES (%s, %s, %s::vector)",
            (post, OPENAI_SMALL, vector_literal(fake_embedding(TOPIC))),
        )

    def reply(request: ResponseRequest) -> str:
        last = request.conversation[-1] if request.conversation else {}
        # the tool reply: asked for by the same speech, with the output and no instructions
        if last.get("type") == "function_call_output" and request.response_instructions is None:
            return f"{ANSWER}: {request.last_tool_output}"
        return DEFAULT_REPLY

    fake.reply = reply
    listener = await _on_air(station)
    lock = psycopg.connect(station.database_url)  # a transaction opens with the first statement
    try:
        lock.execute("LOCK TABLE post_embeddings IN ACCESS EXCLUSIVE MODE")
        asked = len(fake.response_requests)
        fake.call_tool_next_response("recall_posts", {"topic": TOPIC})
        deadline = time.monotonic() + 30
        while not [r for r in fake.response_requests[asked:] if r.refused is None]:
            assert time.monotonic() < deadline, "the host never asked the model again"
            await asyncio.sleep(0.02)
        called_at, called_wall = time.monotonic(), datetime.now(UTC)
        while not await asyncio.to_thread(_waiting_on_a_lock, station.database_url):
            assert time.monotonic() < called_at + 15, "the recall never reached Postgres"
            await asyncio.sleep(0.05)
        await asyncio.sleep(TOOL_SECONDS)
        lock.commit()  # the search goes on

        while not fake.tool_outputs:
            # A fallback that cuts the reply cancels the tool: its result never comes.
            assert time.monotonic() < called_at + 30, "the tool result never reached the model"
            await asyncio.sleep(0.05)
        output_at = time.monotonic()
        [output] = fake.tool_outputs
        assert output.name == "recall_posts"
        assert quote in output.output, f"the recall did not find the post: {output.output}"
        assert output_at - called_at >= TOOL_SECONDS

        # The model's answer airs: the listener hears it, and the as-aired log has it.
        assert await listener.hears_host(15, since=output_at) is not None, "no answer on air"
        answered = None
        while answered is None:
            assert time.monotonic() < output_at + 30, "the model's answer was not logged"
            await asyncio.sleep(0.2)
            with psycopg.connect(station.database_url) as conn:
                answered = conn.execute(
                    "SELECT mode, ended_at FROM utterances WHERE kind = 'host' "
                    "AND position(%s in text) = 1",
                    (ANSWER,),
                ).fetchone()
        assert answered[0] == "realtime"
        with psycopg.connect(station.database_url) as conn:
            offline = conn.execute(
                "SELECT text FROM utterances WHERE kind = 'host' AND mode = 'offline' "
                "AND started_at BETWEEN %s AND %s",
                (called_wall, answered[1]),
            ).fetchall()
        assert offline == [], f"the offline voice aired while the tool ran: {offline}"
        # Nor was anything else heard while the tool ran (a fallback is audible).
        heard = 0.01 * sum(
            1 for at, v in listener.levels if called_at + 0.3 <= at <= output_at and v > 300
        )
        assert heard == 0, f"{heard:.2f} s of host audio while the tool ran"
    finally:
        lock.close()
        await listener.leave()
