"""The as-aired log: what the host said and what callers said, written to Postgres.

Radio keeps a log of what went out; radio24's is the `utterances` table. Every host utterance
(text, segment, start, end, interrupted, mode) and every caller turn (identity, duration,
transcript) lands here, and a post is marked aired with the utterance that aired it. Model usage
is summed per hour here too, for cost. The SQL lives in `db/queries/host.sql`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import aiosql
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

log = logging.getLogger("radio24.aired")

QUERIES = aiosql.from_path(
    Path(__file__).resolve().parent.parent / "db" / "queries" / "host.sql", "apsycopg"
)


def open_pool(database_url: str) -> AsyncConnectionPool:
    """The job's one connection pool (opened by the caller, closed at shutdown)."""
    return AsyncConnectionPool(
        database_url, min_size=1, max_size=4, open=False, kwargs={"row_factory": dict_row}
    )


@dataclass(frozen=True)
class QueuedPost:
    id: UUID
    text: str
    author: str
    author_id: UUID
    created_at: datetime


class AiredLog:
    def __init__(self, pool: AsyncConnectionPool) -> None:
        self._pool = pool

    async def host_utterance(
        self,
        *,
        text: str,
        segment: str | None,
        mode: str,
        started_at: datetime,
        ended_at: datetime,
        interrupted: bool,
    ) -> int:
        async with self._pool.connection() as conn:
            row = await QUERIES.record_host_utterance(
                conn,
                text=text,
                segment=segment,
                mode=mode,
                started_at=started_at,
                ended_at=ended_at,
                interrupted=interrupted,
            )
        return int(row["id"])

    async def caller_turn(
        self,
        *,
        identity: str,
        text: str,
        segment: str | None,
        started_at: datetime,
        ended_at: datetime,
    ) -> int:
        async with self._pool.connection() as conn:
            row = await QUERIES.record_caller_turn(
                conn,
                identity=identity,
                text=text,
                segment=segment,
                started_at=started_at,
                ended_at=ended_at,
            )
        return int(row["id"])

    async def set_text(self, utterance_id: int, text: str) -> None:
        async with self._pool.connection() as conn:
            await QUERIES.set_utterance_text(conn, id=utterance_id, text=text)

    async def queued_post(self, post_id: str) -> QueuedPost | None:
        async with self._pool.connection() as conn:
            row = await QUERIES.queued_post(conn, id=post_id)
        return QueuedPost(**row) if row else None

    async def mark_aired(self, post_id: UUID, utterance_id: int) -> dict[str, Any] | None:
        """The post's row if this call aired it; None if it was no longer queued."""
        async with self._pool.connection() as conn:
            row = await QUERIES.mark_post_aired(conn, id=post_id, utterance_id=utterance_id)
        return dict(row) if row else None

    async def recent_lines(self, n: int) -> list[str]:
        async with self._pool.connection() as conn:
            rows = [r async for r in QUERIES.recent_host_lines(conn, n=n)]
        return [r["text"] for r in reversed(rows)]

    async def add_usage(
        self, model: str, *, audio_in: int, audio_out: int, text_in: int, text_out: int
    ) -> None:
        hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        async with self._pool.connection() as conn:
            await QUERIES.add_model_usage(
                conn,
                hour=hour,
                model=model,
                audio_in=audio_in,
                audio_out=audio_out,
                text_in=text_in,
                text_out=text_out,
            )
