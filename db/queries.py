"""The one loader of the named SQL in `db/queries/*.sql` (aiosql), for every process.

Each side names the files it uses, so a clashing query name in a file it does not load cannot
break it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiosql

QUERIES_DIR = Path(__file__).resolve().parent / "queries"


def load(*files: str, driver: str = "apsycopg") -> Any:
    """The named queries of `files` (e.g. "posts.sql"); `driver="psycopg"` for sync callers."""
    return aiosql.from_str("\n\n".join((QUERIES_DIR / f).read_text() for f in files), driver)
