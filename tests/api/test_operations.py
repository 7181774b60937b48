"""Operations and the producers' read-outs: health, readiness, metrics, docs, logs, the as-aired
log, the schedule and the prompt status."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from agent.store.aired import AiredLog, open_pool
from contract.keys import Keys
from radio24 import rack
from tests.api.conftest import Api, make_settings, running
from tests.conftest import LiveKit
from tests.integration.parts import RedisBox

pytestmark = pytest.mark.integration


async def test_healthz_and_readyz_when_everything_answers(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    resp = await api.client.get("/readyz")
    assert resp.status_code == 200
    assert resp.json() == {
        "ready": True,
        "parts": {"postgres": "ok", "redis": "ok", "livekit": "ok"},
    }


@pytest.mark.parametrize("part", ["redis", "postgres", "livekit"])
async def test_readyz_is_503_naming_the_part_that_is_down(
    database_url: str, redis_url: str, livekit_server: LiveKit, part: str
) -> None:
    nowhere = rack.free_port()
    overrides = {
        "redis": {"redis_url": f"redis://127.0.0.1:{nowhere}/0"},
        "postgres": {"database_url": f"postgresql://postgres@127.0.0.1:{nowhere}/x"},
        "livekit": {"livekit_url": f"ws://127.0.0.1:{nowhere}"},
    }[part]
    urls = {"database_url": database_url, "redis_url": redis_url, **overrides}
    settings = make_settings(
        urls.pop("database_url"), urls.pop("redis_url"), livekit_server, **urls
    )
    async with running(settings) as api:
        assert (await api.client.get("/healthz")).status_code == 200  # alive, not ready
        resp = await api.client.get("/readyz")
        assert resp.status_code == 503
        parts = resp.json()["parts"]
        assert parts[part].startswith("down")
        assert [p for p, v in parts.items() if v != "ok"] == [part]
        if part == "postgres":  # the routes say so instead of failing with a 500
            resp = await api.client.post("/api/session", json={"nickname": "Mika"})
            assert resp.status_code == 503
            assert resp.headers["Retry-After"] == "5"


async def test_readyz_names_a_frozen_redis_and_healthz_answers(
    database_url: str, tmp_path: Path, livekit_server: LiveKit
) -> None:
    """A Redis that accepts connections and never answers (SIGSTOP) is "down", on time."""
    redis = RedisBox(tmp_path / "redis", tmp_path / "redis.log")
    redis.start()
    try:
        async with running(make_settings(database_url, redis.url, livekit_server)) as api:
            redis.pause()
            started = time.monotonic()
            assert (await api.client.get("/healthz")).status_code == 200
            resp = await api.client.get("/readyz")
            assert time.monotonic() - started < 5
            assert resp.status_code == 503
            parts = resp.json()["parts"]
            assert [p for p, v in parts.items() if v != "ok"] == ["redis"]
            assert parts["redis"].startswith("down")
            redis.resume()
            assert (await api.client.get("/readyz")).status_code == 200
    finally:
        redis.stop()


async def test_metrics_count_requests_posts_and_queue(api: Api) -> None:
    listener = await api.listener()
    await api.post(listener, "counted")
    await api.client.get("/api/me", headers=listener.headers)
    await api.client.get("/api/me")
    text = (await api.client.get("/metrics")).text
    assert 'radio24_api_requests_total{method="POST",route="/api/posts",status="201"} 1.0' in text
    assert 'radio24_api_requests_total{method="GET",route="/api/me",status="401"} 1.0' in text
    assert 'radio24_api_request_seconds_count{method="POST",route="/api/session"} 1.0' in text
    assert 'radio24_posts{status="queued"} 1.0' in text
    assert 'radio24_posts{status="aired"} 0.0' in text
    assert "radio24_queue_stream_length 1.0" in text  # the doorbell rang once
    assert "radio24_queue_pending 0.0" in text  # no host holds it yet
    assert "radio24_queue_owed 1.0" in text  # waiting for a host to claim it
    assert 'radio24_posts_created_total{outcome="queued"} 1.0' in text
    # Raw paths never become labels.
    await api.client.get(f"/api/listeners/{listener.id}/nothing")
    assert listener.id not in (await api.client.get("/metrics")).text


async def test_openapi_docs_are_served(api: Api) -> None:
    assert (await api.client.get("/docs")).status_code == 200
    schema = (await api.client.get("/openapi.json")).json()
    for path in (
        "/api/session",
        "/api/auth/login",
        "/api/livekit/token",
        "/api/posts",
        "/api/posts/mine",
        "/api/posts/search",
        "/api/posts/{post_id}",
        "/api/listeners/{listener_id}/ban",
        "/api/aired",
        "/api/schedule",
        "/api/prompts/status",
    ):
        assert path in schema["paths"], path


async def test_logs_name_the_post_but_never_carry_its_text_or_tokens(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="radio24")
    listener = await api.listener()
    post = (await api.post(listener, "my very private words")).json()
    stored = [r for r in caplog.records if r.getMessage() == "post stored"]
    assert [getattr(r, "post_id", None) for r in stored] == [post["id"]]
    everything = "\n".join(f"{r.getMessage()} {vars(r)}" for r in caplog.records)
    assert "my very private words" not in everything
    assert listener.token not in everything


async def test_aired_log_as_json_and_csv(api: Api) -> None:
    producer, listener = await api.producer(), await api.listener()
    now = datetime.now(UTC)
    with psycopg.connect(api.settings.database_url.get_secret_value()) as conn:
        conn.execute(
            "INSERT INTO utterances (kind, speaker, text, segment, mode, started_at, ended_at) "
            "VALUES ('host', 'host', 'Good morning', 'morning', 'offline', %s, %s)",
            (now - timedelta(minutes=5), now - timedelta(minutes=4)),
        )
        conn.execute(
            "INSERT INTO utterances (kind, speaker, person_id, text, started_at, duration_ms) "
            "VALUES ('caller', %s, %s, '=HYPERLINK(\"x\")', %s, 3000)",
            (listener.id, listener.id, now - timedelta(minutes=3)),
        )
        conn.execute(
            "INSERT INTO utterances (kind, speaker, text, started_at) "
            "VALUES ('host', 'host', 'long ago', %s)",
            (now - timedelta(days=3),),
        )
    rows = (await api.client.get("/api/aired", headers=producer.headers)).json()
    assert [(r["kind"], r["text"], r["person"]) for r in rows] == [
        ("host", "Good morning", None),
        ("caller", '=HYPERLINK("x")', "Mika"),
    ]
    window = {
        "from": (now - timedelta(days=4)).isoformat(),
        "to": (now - timedelta(days=2)).isoformat(),
    }
    older = (await api.client.get("/api/aired", params=window, headers=producer.headers)).json()
    assert [r["text"] for r in older] == ["long ago"]

    resp = await api.client.get("/api/aired", params={"format": "csv"}, headers=producer.headers)
    assert resp.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(resp.text)))
    assert [r["text"] for r in table] == ["Good morning", '\'=HYPERLINK("x")']  # no formulas
    by_accept = await api.client.get(
        "/api/aired", headers={**producer.headers, "Accept": "text/csv"}
    )
    assert by_accept.text == resp.text

    for params in (
        {"from": now.isoformat(), "to": (now - timedelta(hours=1)).isoformat()},
        {"from": (now - timedelta(days=40)).isoformat()},
        {"from": "2026-01-01T00:00:00"},
        {"to": "yesterday"},
        {"to": "0001-01-01T00:01:00Z"},  # the default day before it is out of range
    ):
        resp = await api.client.get("/api/aired", params=params, headers=producer.headers)
        assert resp.status_code == 422, params


async def test_music_items_make_a_music_use_report(api: Api) -> None:
    """What the host logs for music (AiredLog.music) is in the as-aired log and, with
    kind=music, a CSV with start, length, title, artist and file per item."""
    producer = await api.producer()
    pool = open_pool(api.settings.database_url.get_secret_value())
    await pool.open(wait=True)
    now = datetime.now(UTC)
    try:
        aired = AiredLog(pool)
        await aired.music(
            file="music/夜明け.ogg",
            title="夜明け",
            artist="radio24",
            segment="morning",
            started_at=now - timedelta(minutes=10),
            duration_seconds=184.2,
        )
        await aired.host_utterance(
            text="今の曲は夜明けでした",
            segment="morning",
            mode="offline",
            started_at=now - timedelta(minutes=7),
            ended_at=now - timedelta(minutes=6),
            interrupted=False,
        )
        await aired.music(
            file="idents/id1.wav",
            title=None,
            artist=None,
            segment="morning",
            started_at=now - timedelta(minutes=6),
            duration_seconds=4,
        )
    finally:
        await pool.close()
    everything = (await api.client.get("/api/aired", headers=producer.headers)).json()
    assert [(r["kind"], r["title"]) for r in everything] == [
        ("music", "夜明け"),
        ("host", None),
        ("music", None),
    ]
    resp = await api.client.get(
        "/api/aired", params={"kind": "music", "format": "csv"}, headers=producer.headers
    )
    assert resp.status_code == 200
    assert 'filename="music-' in resp.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(resp.text)))
    report = [
        (r["started_at"][:19], r["duration_ms"], r["title"], r["artist"], r["file"]) for r in table
    ]
    start = (now - timedelta(minutes=10)).isoformat()[:19]
    assert report[0] == (start, "184200", "夜明け", "radio24", "music/夜明け.ogg")
    assert report[1][1:] == ("4000", "", "", "idents/id1.wav")
    assert len(report) == 2
    assert datetime.fromisoformat(table[0]["ended_at"]) - datetime.fromisoformat(
        table[0]["started_at"]
    ) == timedelta(seconds=184.2)


async def test_schedule_says_what_is_on_now_and_next(api: Api) -> None:
    resp = await api.client.get("/api/schedule")  # public: no token
    assert resp.status_code == 200
    body = resp.json()
    now, nxt = body["now"], body["next"]
    assert datetime.fromisoformat(now["starts"]) <= datetime.fromisoformat(body["at"])
    assert datetime.fromisoformat(body["at"]) < datetime.fromisoformat(now["ends"])
    assert nxt["starts"] == now["ends"]
    assert now["segment"] != nxt["segment"]


async def test_schedule_is_503_with_the_problems_when_prompts_do_not_load(
    database_url: str, redis_url: str, livekit_server: LiveKit, tmp_path: object
) -> None:
    settings = make_settings(
        database_url, redis_url, livekit_server, radio_prompts_dir=str(tmp_path)
    )
    async with running(settings) as api:
        resp = await api.client.get("/api/schedule")
    assert resp.status_code == 503
    assert resp.json()["detail"]["problems"]


async def test_prompt_status_is_what_the_host_reported(api: Api) -> None:
    producer = await api.producer()
    resp = await api.client.get("/api/prompts/status", headers=producer.headers)
    assert resp.status_code == 404
    report = {
        "ok": False,
        "loaded_at": "2026-01-01T00:00:00Z",
        "problems": [
            {
                "file": "segments/morning.md",
                "line": 3,
                "message": "unknown placeholder $wether",
                "fix": "use one of $time, $weekday, ...",
            }
        ],
    }
    await api.station.redis.set(Keys(api.settings.radio_room).prompts_status, json.dumps(report))
    resp = await api.client.get("/api/prompts/status", headers=producer.headers)
    assert resp.status_code == 200
    assert resp.json() == report
