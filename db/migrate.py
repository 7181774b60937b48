"""Schema migrations with yoyo: the SQL files in `db/migrations/` are the schema's history.

Applied on start by the API's prestart step and by `make migrate`; yoyo records what it applied
in its own tables and takes a lock, so concurrent starts do not race.
"""

from __future__ import annotations

from pathlib import Path

from yoyo import get_backend, read_migrations

MIGRATIONS = Path(__file__).parent / "migrations"


def yoyo_url(database_url: str) -> str:
    """yoyo names the psycopg 3 driver in the URL scheme."""
    for prefix in ("postgresql://", "postgres://"):
        if database_url.startswith(prefix):
            return "postgresql+psycopg://" + database_url.removeprefix(prefix)
    return database_url


def apply(database_url: str) -> list[str]:
    """Apply every pending migration; return the ids applied (empty when up to date)."""
    backend = get_backend(yoyo_url(database_url))
    try:
        migrations = read_migrations(str(MIGRATIONS))
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
        return [m.id for m in pending]
    finally:
        # An open connection would block `CREATE DATABASE ... TEMPLATE` of this database.
        backend.connection.close()
