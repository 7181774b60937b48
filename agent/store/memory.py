"""The host's memory of what listeners wrote: `recall_posts` quotes, found by meaning.

The search itself is the shared `db.memory.MemoryStore` (pgvector, one embedding model at a
time), opened on first use; this module only shapes its answer for the model: a few short quotes
with author and date.
A search is bounded in time (a hanging Postgres must not hold the model's tool call forever);
the first one may load the embedding model, hence the generous default.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from psycopg_pool import AsyncConnectionPool

from core.outage import within
from core.settings import StationSettings

if TYPE_CHECKING:
    from db.memory import MemoryStore

QUOTE_CHARS = 200
RECALL_SECONDS = 10.0


class Searcher(Protocol):
    async def search(self, text: str, k: int = 5, statuses: Any = ...) -> list[Any]: ...


async def recall_quotes(
    store: Searcher,
    topic: str,
    k: int = 5,
    *,
    seconds: float = RECALL_SECONDS,
) -> list[dict[str, str]]:
    """Past aired posts nearest in meaning to `topic`, nearest first (TimeoutError after
    `seconds`)."""

    async def search() -> list[Any]:
        return await store.search(topic, k=k, statuses=("aired",))

    return [
        {
            "author": r.author,
            "date": r.created_at.date().isoformat(),
            "quote": r.text if len(r.text) <= QUOTE_CHARS else r.text[: QUOTE_CHARS - 1] + "…",
        }
        for r in await within(seconds, search)
    ]


def recaller(settings: StationSettings) -> Callable[[str], Awaitable[list[dict[str, Any]]]]:
    """The host's `recall_posts`: quotes from the post memory, opened on first use."""
    memory = _opener(settings)

    async def recall(topic: str) -> list[dict[str, Any]]:
        return list(await recall_quotes(await memory(), topic))

    return recall


def _opener(settings: StationSettings) -> Callable[[], Awaitable[MemoryStore]]:
    """The post memory, opened on first use (the embedding model loads only if called)."""
    from db.memory import MemoryStore, embedder_for

    store: list[MemoryStore] = []
    lock = asyncio.Lock()

    async def get() -> MemoryStore:
        async with lock:
            if not store:
                pool = AsyncConnectionPool(
                    settings.database_url.get_secret_value(), min_size=0, max_size=1, open=False
                )
                await pool.open()
                secret = None if settings.offline else settings.openai_api_key
                key = secret.get_secret_value() if secret is not None else None
                store.append(MemoryStore(pool, embedder_for(key, settings.openai_base_url)))
            return store[0]

    return get
