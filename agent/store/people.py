"""The station's people, as the host needs them: whether a caller is banned (Postgres)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from db.queries import load

PEOPLE = load("people.sql")


def ban_check(pool: AsyncConnectionPool) -> Callable[[str], Coroutine[Any, Any, bool]]:
    """`banned(identity)`: whether the listener with that identity is banned (the call-in
    desk bounds and handles its failures)."""

    async def banned(identity: str) -> bool:
        async with pool.connection(timeout=2) as conn:
            conn.row_factory = dict_row  # type: ignore[assignment]
            try:
                row = await PEOPLE.person_by_id(conn, id=identity)
            except Exception:
                # Not a listener id (a test or staff identity): nothing to be banned.
                await conn.rollback()
                return False
        return bool(row and row.get("banned_at"))

    return banned
