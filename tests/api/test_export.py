"""The as-aired CSV of a whole month, more rows than the old 20,000-row cap, from a real server
(uvicorn on loopback): every row once, in order, music included, in bounded memory."""

from __future__ import annotations

import csv
import random
import time
import tracemalloc
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from api.settings import ApiSettings
from tests.api.conftest import served

pytestmark = pytest.mark.integration

SPOKEN, MUSIC = 25_000, 8_000  # over 30 days: past the old cap of 20,000 (about two days)
FROM = datetime(2026, 3, 1, tzinfo=UTC)
TO = FROM + timedelta(days=31)  # the longest range a request may ask for
HEAP_BOUND = 16 * 2**20  # the most Python memory the export may hold at once, client included


def seed(database_url: str, caller_id: str) -> None:
    """The month's rows by COPY, shuffled (ids do not follow time), in pairs that share a
    started_at (the id breaks the tie), and one row just outside either end of the range."""
    n = SPOKEN + MUSIC
    step = timedelta(days=30) / n
    rows: list[tuple[object, ...]] = []
    for i in range(n):
        at = FROM + step * (i - i % 2)
        if i % 33 < 8:  # 8 in 33: MUSIC of them
            rows.append(("music", "host", None, "", at, f"Track {i}", "radio24", f"m/{i}.ogg"))
        elif i % 7 == 0:
            rows.append(("caller", caller_id, caller_id, f'"{i}", she said, 今日は', at))
        else:
            rows.append(("host", "host", None, f"line {i}, on air", at))
    rows.append(("host", "host", None, "just before", FROM - timedelta(microseconds=1)))
    rows.append(("host", "host", None, "at the end", TO))
    random.Random(7).shuffle(rows)
    with psycopg.connect(database_url) as conn, conn.cursor() as cur:
        columns = "kind, speaker, person_id, text, started_at, title, artist, file"
        with cur.copy(f"COPY utterances ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row((*row, None, None, None)[:8])


async def test_a_month_of_the_as_aired_log_streams_whole_as_csv(api_settings: ApiSettings) -> None:
    database_url = api_settings.database_url.get_secret_value()
    async with served(api_settings) as (api, _):
        producer, caller = await api.producer(), await api.listener("Mika")
        seed(database_url, caller.id)
        with psycopg.connect(database_url) as conn:  # the oracle: what the month holds, in order
            expected = [
                (str(i), kind, text, person or "", title or "")
                for i, kind, text, person, title in conn.execute(
                    "SELECT u.id, u.kind, u.text, p.nickname, u.title FROM utterances u"
                    " LEFT JOIN people p ON p.id = u.person_id"
                    " WHERE u.started_at >= %s AND u.started_at < %s ORDER BY u.started_at, u.id",
                    (FROM, TO),
                )
            ]
        assert len(expected) == SPOKEN + MUSIC
        params = {"from": FROM.isoformat(), "to": TO.isoformat(), "format": "csv"}

        tracemalloc.start()
        started = time.monotonic()
        seen, wrong, music, body_bytes, first_row_at = 0, [], 0, 0, None
        async with api.client.stream(
            "GET", "/api/aired", params=params, headers=producer.headers, timeout=120
        ) as resp:
            assert resp.status_code == 200
            assert resp.headers["content-type"].startswith("text/csv")
            lines = resp.aiter_lines()
            header = next(csv.reader([await anext(lines)]))
            assert header[:3] == ["id", "kind", "speaker"] and header[-1] == "file"
            async for line in lines:
                body_bytes += len(line.encode())
                first_row_at = first_row_at or time.monotonic()
                row = dict(zip(header, next(csv.reader([line])), strict=True))
                got = (row["id"], row["kind"], row["text"], row["person"], row["title"])
                if seen >= len(expected) or got != expected[seen]:
                    wrong.append((seen, got))
                music += row["kind"] == "music"
                seen += 1
        took = time.monotonic() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()

        print(  # for the record (pytest -s)
            f"\n{seen} rows, {body_bytes / 2**20:.1f} MiB of CSV in {took:.1f} s "
            f"(first row after {(first_row_at or started) - started:.2f} s), "
            f"Python heap peak {peak / 2**20:.1f} MiB"
        )
        # Every row once, in order, nothing beyond.
        assert (seen, len(wrong), wrong[:3]) == (len(expected), 0, [])
        assert music == MUSIC
        assert peak < HEAP_BOUND  # held a few pages, never the month

        # The JSON refuses the month rather than cut it short, naming its limit.
        params.pop("format")
        resp = await api.client.get("/api/aired", params=params, headers=producer.headers)
        assert resp.status_code == 422
        assert "20000" in resp.json()["detail"] and "format=csv" in resp.json()["detail"]
        params["to"] = (FROM + timedelta(days=2)).isoformat()  # two days: under the limit
        two_days = (
            await api.client.get("/api/aired", params=params, headers=producer.headers)
        ).json()
        assert [str(r["id"]) for r in two_days] == [e[0] for e in expected[: len(two_days)]]
        assert 0 < len(two_days) <= 20000
