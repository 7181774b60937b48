"""Named SQL queries shared by the agent and the API (aiosql over psycopg 3, async)."""

from __future__ import annotations

from pathlib import Path

import aiosql

QUERIES_DIR = Path(__file__).parent / "queries"

queries = aiosql.from_path(QUERIES_DIR, "psycopg")
