"""The API's named SQL (db/queries/*.sql), loaded for psycopg's async connections.

Only the API's files: the host loads its own (host.sql), so neither side can break the other
with a clashing name.
"""

from __future__ import annotations

from pathlib import Path

import aiosql

QUERIES_DIR = Path(__file__).resolve().parent.parent / "db" / "queries"

FILES = ("people.sql", "posts.sql", "blocklist.sql", "aired.sql", "memory.sql")

queries = aiosql.from_str(
    "\n\n".join((QUERIES_DIR / name).read_text() for name in FILES), "apsycopg"
)
