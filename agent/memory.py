"""The host's memory of what listeners wrote: `recall_posts` quotes, found by meaning.

The search itself is the shared `db.memory.MemoryStore` (pgvector, one embedding model at a
time); this module only shapes its answer for the model: a few short quotes with author and date.
A search is bounded in time (a hanging Postgres must not hold the model's tool call forever);
the first one may load the embedding model, hence the generous default.
"""

from __future__ import annotations

from typing import Any, Protocol

from core.outage import within

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
