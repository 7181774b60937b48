"""How the companion API holds up on this machine: LiveKit tokens and posts at rising rates, and
memory search at 100k posts.

One command starts its own Postgres (pgvector) and Redis on free loopback ports in a temp folder,
seeds the memory, serves the real app and measures, then writes bench/results/api_load.json and
prints a table. Everything it starts is stopped on the way out, also after Ctrl-C or an error.

    .venv/bin/python bench/api_load.py [--posts 100000] [--real-posts 2000]
        [--rates 10,20,40,...] [--seconds-per-step 4] [--ef-search 40,100]
        [--search-repeats 3] [--api-embeddings local|off] [--out PATH]

The default run takes about three and a half minutes on two shared cores; `--posts 10000
--real-posts 500 --seconds-per-step 2` is a one-minute smoke run.

Memory search. The corpus is `--posts` posts, of which `--real-posts` have their real
local-model (USE multilingual v3) embedding of their text; embedding 100k texts would take
ten minutes here, so the rest carry SYNTHETIC 512-dimension unit vectors: a random real
embedding plus half of another plus Gaussian noise, normalised, so they lie among the real ones
and compete for every query's top 10 (the table says what share of the exact top 10 they
take). Their texts are generated and do not match their vectors. All vectors go in by binary
COPY with the migration's HNSW index dropped; the index is then rebuilt from its own definition
and the build is timed. The queries are real local-model embeddings of real text. Latency is the
real search path, `MemoryStore.search` (the per-model named query of db/queries/memory.sql over
the partial HNSW index, with `hnsw.iterative_scan = strict_order`), with the query embedded
beforehand so the SQL is timed alone; the local-model embedding of a query and the whole HTTP route
are timed beside it. Recall@10 is against the same SQL with `enable_indexscan = off`, an exact
scan; a hit counts when its distance is within the exact 10th (some real texts repeat).
`hnsw.ef_search` 40 is pgvector's default and what the API runs with; other values are given
for comparison.

Rising rates. The API runs as the production command does, `uvicorn --factory
api.main:create_app` in its own process (so the load generator never shares its event loop or
GIL), configured by the environment: no keeper (no LiveKit server here; LiveKit tokens are
signed locally), local embeddings (its worker embeds new posts while posts are being created,
as it would in an offline deployment), rate limits lifted. The generator is open loop: at each
offered rate, request i is due at start + i/rate whatever happened to the others, and its
latency runs from that due time to the last byte of the answer, so a server that falls behind
shows it in its latency instead of slowing the generator down (no coordinated omission). Each
step is `--seconds-per-step` measured (longer at slow rates, up to three times, so a p99
has 100 samples) after a short unrecorded warm-up; stepping stops at the
first rate not held (halving down from it when even the first rate is not held), and one rate
between the highest held and the lowest not held is tried. A rate is held
when p99 < 100 ms, nothing failed and the achieved rate is within 5% of the offered one.
Generator, server, Postgres and Redis share this machine's cores: the highest rate held is
for all of them together on loopback, and whatever else the machine runs meanwhile (each step
records the cores the API process used and how busy the whole machine was, and the JSON the
load average before and after).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import platform
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.request import urlopen

import aiohttp
import numpy as np
import psycopg
from pgvector.psycopg import register_vector
from psycopg_pool import AsyncConnectionPool

from api.passwords import hasher
from db import migrate
from db.memory import DIMENSIONS, LOCAL_MODEL, LocalEmbedder, MemoryStore, queries, vector_literal
from radio24 import rack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "api_load.json"
PRODUCER, PASSWORD = "benchproducer", secrets.token_urlsafe(12)
LISTENERS = 64  # listener tokens the rate steps spread over
AUTHORS = 200  # authors of the seeded posts
EMBED_BATCH = 64
INDEX = "post_embeddings_use"  # the migration's partial HNSW index for the local model
NEAREST_SQL = queries.nearest_posts_use.sql  # what MemoryStore.search runs for it
MAINTENANCE_WORK_MEM = "1GB"  # the whole graph in memory while it is built (pgvector's advice)
SYNTHETIC_NOISE = 0.03  # per dimension, before normalising
P99_LIMIT_MS = 100.0
HELD_SHARE = 0.95  # achieved / offered for a rate to count as held
WARMUP_S = 1.0
REQUEST_TIMEOUT_S = 5.0
MAX_CONNECTIONS = 256
MIN_SAMPLES = 100  # per rate step, when three times the step's time allows

GREETINGS = ["Hello", "Good evening", "Hi everyone", "Greetings", "Morning all", "Hey DJ"]
PLACES = [
    "Osaka", "Sapporo", "Fukuoka", "Kyoto", "Nagoya", "Sendai", "Okinawa", "Hiroshima",
    "Yokohama", "Kobe", "London", "Leeds", "Brighton", "Glasgow", "Cardiff", "Bristol",
]  # fmt: skip
TOPICS = {
    "rain": [
        "it has rained all day and I am stuck indoors",
        "the rain on my window sounds like applause",
        "my umbrella broke in the storm this afternoon",
    ],
    "cats": [
        "my cat is asleep on the keyboard again",
        "our kitten knocked a cup off the table",
        "the neighbour's cat visits our balcony every night",
    ],
    "coffee": [
        "first coffee of the day and the radio on",
        "I brewed far too much coffee this morning",
        "the new cafe near the station roasts its own beans",
    ],
    "night shift": [
        "working the night shift at the hospital tonight",
        "on a night shift at the warehouse, your voice keeps me awake",
        "driving a taxi through empty streets at three in the morning",
    ],
    "trains": [
        "the last train was delayed by an hour",
        "I missed my train and I am waiting on the platform",
        "the bullet train is the best place to listen to the radio",
    ],
    "cooking": [
        "I am making curry for the whole family",
        "my first attempt at baking bread went badly",
        "tonight's dinner is grilled fish and miso soup",
    ],
    "exams": [
        "studying for my university entrance exams",
        "my exam results come out tomorrow and I am nervous",
        "revising maths late into the night",
    ],
    "baseball": [
        "what a game, our team won in the ninth inning",
        "listening to the baseball on the other radio too",
        "my son hit his first home run at practice",
    ],
    "birthday": [
        "it is my mother's birthday today, please say hello",
        "I turned forty today and feel twenty",
        "planning a surprise party for my best friend",
    ],
    "music": [
        "could you play something calm for a quiet evening",
        "please play an old city pop song",
        "any chance of some jazz piano tonight",
    ],
    "garden": [
        "the tomatoes in my garden are finally ripe",
        "planted tulip bulbs all weekend",
        "the cherry blossoms outside are in full bloom",
    ],
    "snow": [
        "snow is piling up outside and the roads are closed",
        "the kids built a snowman in the park",
        "first snow of the winter this morning",
    ],
    "work": [
        "started a new job today and I am exhausted",
        "my boss finally approved my holiday",
        "working from home with the radio for company",
    ],
    "moving": [
        "we moved into a new flat and nothing is unpacked",
        "saying goodbye to the town I grew up in",
        "boxes everywhere, moving house is hard",
    ],
    "fishing": [
        "caught nothing at the harbour but the sunrise was worth it",
        "going fishing with my grandfather at dawn",
        "the river was full of trout this morning",
    ],
}
CLOSINGS = ["Thanks for the show!", "Keep it up.", "Love the station.", "Cheers.", "", "Bye!"]
QUERIES = [
    "rainy days at home", "my pet cat", "morning coffee", "working nights",
    "a delayed train", "cooking dinner for the family", "nervous about exams",
    "a baseball win", "birthday wishes", "a song request", "flowers in the garden",
    "heavy snow", "a new job", "moving to a new home", "going fishing at sunrise",
    "listening while driving", "a quiet evening", "greetings from Osaka",
    "storm damage", "family celebration",
]  # fmt: skip


def post_text(rng: random.Random) -> str:
    phrase = rng.choice(rng.choice(list(TOPICS.values())))
    text = f"{rng.choice(GREETINGS)} from {rng.choice(PLACES)}! {phrase.capitalize()}."
    return f"{text} {rng.choice(CLOSINGS)}".strip()


def query_texts() -> list[str]:
    """Real text to search by: the short queries and every topic phrase (65 in all)."""
    return QUERIES + [phrase for phrases in TOPICS.values() for phrase in phrases]


# --- The parts ----------------------------------------------------------------------------------


@contextmanager
def parts(folder: Path, log: Callable[[str], None]) -> Iterator[tuple[str, str]]:
    """Postgres (migrated database `radio24_bench`) and Redis on free ports; yields their URLs."""
    with ExitStack() as stack:

        def start(part: rack.Part) -> None:
            proc = rack.popen(part, folder / f"{part.name}.log")
            stack.callback(rack.stop, proc)
            rack.wait_port(part.port, 60, proc)

        started = time.perf_counter()
        pgdata = folder / "pgdata"
        rack.prepare_postgres(pgdata)
        pg_port = rack.free_port()
        start(rack.postgres(pgdata, pg_port))
        rack.wait_postgres(pg_port, 30)
        database_url = rack.create_database(pg_port, "radio24_bench")
        migrate.apply(database_url)
        redis_port = rack.free_port()
        start(rack.redis(folder / "redis", redis_port))
        took = time.perf_counter() - started
        log(f"postgres :{pg_port} and redis :{redis_port} up in {took:.1f}s")
        yield database_url, f"redis://127.0.0.1:{redis_port}/0"


# --- The memory: seeding 100k posts and searching them ------------------------------------------


@dataclass
class Seeded:
    posts: int
    real: int
    embed_s: float
    insert_s: float
    index_s: float
    index_notices: list[str]
    parallel_workers: str
    real_ids: set[uuid.UUID]


def synthetic_vectors(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """N unit vectors among the real ones: a real embedding plus half another plus noise."""
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    for start in range(0, n, 10_000):
        size = min(10_000, n - start)
        first = real[rng.integers(0, len(real), size)]
        second = real[rng.integers(0, len(real), size)]
        noise = rng.normal(0.0, SYNTHETIC_NOISE, first.shape)
        v = first + 0.5 * second + noise
        out[start : start + size] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def seed(
    database_url: str, n: int, n_real: int, embedder: LocalEmbedder, rng: random.Random
) -> Seeded:
    """N posts by AUTHORS listeners (80% aired, 18% queued and already handed to the host, 2%
    hidden), the first `n_real` with their local-model embedding and the rest with synthetic
    vectors, plus the producer who searches. The migration's HNSW index is dropped for the
    load and rebuilt from its own definition afterwards, timed."""
    n_real = min(n_real, n)
    authors = [uuid.uuid4() for _ in range(AUTHORS)]
    texts = [post_text(rng) for _ in range(n)]
    started = time.perf_counter()
    real = np.concatenate(
        [
            embedder.embed_sync(texts[i : min(i + EMBED_BATCH, n_real)])
            for i in range(0, n_real, EMBED_BATCH)
        ]
    )
    embed_s = time.perf_counter() - started
    vectors = np.concatenate(
        [real, synthetic_vectors(real, n - n_real, np.random.default_rng(rng.getrandbits(32)))]
    )
    started = time.perf_counter()
    now = datetime.now(UTC)
    with psycopg.connect(database_url, autocommit=True) as conn:
        register_vector(conn)
        row = conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s", (INDEX,)
        ).fetchone()
        if row is None:
            raise RuntimeError(f"the migrations no longer create the index {INDEX}")
        index_definition = row[0]
        conn.execute(f"DROP INDEX {INDEX}")
        conn.execute(
            "INSERT INTO people (nickname, role, password_hash) VALUES (%s, 'producer', %s)",
            (PRODUCER, hasher.hash(PASSWORD)),
        )
        with conn.cursor().copy("COPY people (id, nickname) FROM STDIN") as copy:
            for i, author in enumerate(authors):
                copy.write_row((author, f"Listener {i}"))
        ids = [uuid.uuid4() for _ in range(n)]
        columns = "id, author_id, text, status, created_at, aired_at, enqueued_at"
        with conn.cursor().copy(f"COPY posts ({columns}) FROM STDIN") as copy:
            for i, (post_id, text) in enumerate(zip(ids, texts, strict=True)):
                created = now - timedelta(seconds=30 * (n - i))
                draw = rng.random()
                status = "aired" if draw < 0.8 else "queued" if draw < 0.98 else "hidden"
                aired_at = created + timedelta(minutes=1) if status == "aired" else None
                copy.write_row(
                    (post_id, rng.choice(authors), text, status, created, aired_at, created)
                )
        with conn.cursor().copy(
            "COPY post_embeddings (post_id, model, embedding) FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["uuid", "text", "vector"])
            for post_id, vector in zip(ids, vectors, strict=True):
                copy.write_row((post_id, LOCAL_MODEL, vector))
        insert_s = time.perf_counter() - started

        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(f"{d.message_primary} {d.detail or ''}"))
        conn.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
        workers = conn.execute("SHOW max_parallel_maintenance_workers").fetchone()
        started = time.perf_counter()
        conn.execute(index_definition)
        index_s = time.perf_counter() - started
        conn.execute("VACUUM ANALYZE")
    return Seeded(
        n, n_real, embed_s, insert_s, index_s, [m.strip() for m in notices],
        workers[0] if workers else "?", set(ids[:n_real]),
    )  # fmt: skip


class Embedded:
    """The store's embedder with the queries embedded beforehand, so a search times the SQL."""

    model = LOCAL_MODEL
    dimensions = DIMENSIONS[LOCAL_MODEL]

    def __init__(self, vectors: dict[str, np.ndarray]) -> None:
        self._vectors = vectors

    async def embed(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vectors[t].tolist() for t in texts]


def percentiles(seconds: Sequence[float], *ps: int) -> dict[str, float]:
    ms = np.array(seconds, dtype=float) * 1000 if len(seconds) else np.array([math.nan])
    return {f"p{p}_ms": round(float(np.percentile(ms, p)), 2) for p in ps}


async def plan_uses_index(conn: psycopg.AsyncConnection, params: dict[str, Any]) -> bool:
    cur = await conn.execute(f"EXPLAIN {NEAREST_SQL}", params)
    return any(INDEX in row[0] for row in await cur.fetchall())


async def exact_nearest(
    database_url: str, vectors: dict[str, np.ndarray], k: int
) -> dict[str, Any]:
    """Per query, the exact k nearest (the named query with index scans off) and the time;
    checks that the plan with index scans off is a scan and the plan with them on is not."""
    nearest: dict[str, list[tuple[uuid.UUID, float]]] = {}
    took: list[float] = []
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        for text, vector in vectors.items():
            params = {"query": vector_literal(vector), "k": k, "statuses": ["queued", "aired"]}
            if not nearest:
                async with conn.transaction():
                    await conn.execute("SET LOCAL hnsw.iterative_scan = strict_order")
                    if not await plan_uses_index(conn, params):
                        raise RuntimeError(f"the search's plan does not use {INDEX}")
            async with conn.transaction():
                await conn.execute("SET LOCAL enable_indexscan = off")
                if not nearest and await plan_uses_index(conn, params):
                    raise RuntimeError(f"the exact scan's plan still uses {INDEX}")
                started = time.perf_counter()
                cur = await conn.execute(NEAREST_SQL, params)
                rows = await cur.fetchall()
                took.append(time.perf_counter() - started)
            nearest[text] = [(r[0], float(r[5])) for r in rows]
    return {"nearest": nearest, "took": took}


async def search_memory(
    database_url: str,
    vectors: dict[str, np.ndarray],
    real_ids: set[uuid.UUID],
    ef_values: list[int],
    repeats: int,
    k: int = 10,
) -> list[dict[str, Any]]:
    """p50/p95 of MemoryStore.search and its recall@k against an exact scan, per ef_search."""
    exact = await exact_nearest(database_url, vectors, k)
    rows: list[dict[str, Any]] = []
    synthetic = 0
    for ef in ef_values:
        pool = AsyncConnectionPool(
            database_url, min_size=1, max_size=1, open=False,
            kwargs={"options": f"-c hnsw.ef_search={ef}"},
        )  # fmt: skip
        async with pool:
            store = MemoryStore(pool, Embedded(vectors))
            for text in vectors:  # one unrecorded pass: the index in shared buffers
                await store.search(text, k)
            took: list[float] = []
            found = 0
            for _ in range(repeats):
                for text in vectors:
                    started = time.perf_counter()
                    hits = await store.search(text, k)
                    took.append(time.perf_counter() - started)
            for text in vectors:
                hits = await store.search(text, k)
                tenth = exact["nearest"][text][-1][1]
                found += sum(h.distance <= tenth + 1e-6 for h in hits)
        rows.append(
            {
                "path": "MemoryStore.search (HNSW)",
                "ef_search": ef,
                "searches": len(took),
                **percentiles(took, 50, 95, 99),
                "recall_at_10": round(found / (k * len(vectors)), 4),
            }
        )
    for hits in exact["nearest"].values():
        synthetic += sum(post_id not in real_ids for post_id, _ in hits)
    rows.append(
        {
            "path": "exact scan (enable_indexscan = off)",
            "ef_search": None,
            "searches": len(exact["took"]),
            **percentiles(exact["took"], 50, 95, 99),
            "recall_at_10": 1.0,
            "synthetic_share_of_exact_top10": round(synthetic / (k * len(vectors)), 3),
        }
    )
    return rows


# --- The API in its own process -----------------------------------------------------------------


@contextmanager
def served(
    folder: Path, database_url: str, redis_url: str, embeddings: str
) -> Iterator[tuple[str, int]]:
    """`uvicorn --factory api.main:create_app` as a child process configured by environment
    (no .env: it runs in the temp folder); yields its base URL, once /healthz answers, and pid."""
    port = rack.free_port()
    ours = ("OPENAI_", "API_", "LIVEKIT_", "RADIO_", "DATABASE_URL", "REDIS_URL")
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(ours)}
    env.update(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        LIVEKIT_URL="ws://127.0.0.1:7880",  # tokens are signed locally; nothing connects
        LIVEKIT_API_KEY="bench",
        LIVEKIT_API_SECRET=secrets.token_urlsafe(32),
        API_JWT_SECRET=secrets.token_urlsafe(48),
        API_EMBEDDINGS=embeddings,
        API_KEEPER="false",  # no LiveKit server here: nothing to keep open
        API_POST_RATE_LIMIT=str(10**9),
        API_SESSION_RATE_LIMIT=str(10**9),
        API_LOG_LEVEL="WARNING",
        RADIO_PROMPTS_DIR=str(ROOT / "prompts"),
    )
    argv = [
        sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
        "--host", "127.0.0.1", "--port", str(port),
        "--log-level", "warning", "--no-access-log",
    ]  # fmt: skip
    log_path = folder / "api.log"
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            argv, env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-2000:]
                raise RuntimeError(f"the API did not start:\n{tail}")
            try:
                with urlopen(f"{base}/healthz", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                time.sleep(0.1)
        yield base, proc.pid
    finally:
        rack.stop(proc)


# --- Load ---------------------------------------------------------------------------------------

Request = tuple[str, str, dict[str, Any]]  # method, path, aiohttp keyword arguments


async def send(session: aiohttp.ClientSession, request: Request) -> str | None:
    """One request; None when it succeeded, else what went wrong."""
    method, path, kwargs = request
    try:
        async with session.request(method, path, **kwargs) as resp:
            await resp.read()
            return None if resp.status < 400 else str(resp.status)
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__


async def open_loop(
    session: aiohttp.ClientSession, make: Callable[[], Request], rate: float, seconds: float
) -> dict[str, Any]:
    """Offer `rate` requests a second on a fixed schedule for WARMUP_S (unrecorded) and then
    `seconds` or more (MIN_SAMPLES); latency runs from each request's due time, not from when
    it went out."""
    clock = time.perf_counter
    # p99 of fewer than MIN_SAMPLES is the maximum: slow rates get up to three times longer.
    warm = round(rate * WARMUP_S)
    measured = max(1, round(rate * seconds), min(MIN_SAMPLES, round(3 * rate * seconds)))
    t0 = clock() + 0.05
    latencies: list[float] = []
    late: list[float] = []  # how long after its due time the generator sent it
    finished: list[float] = []
    failures: Counter[str] = Counter()

    async def one(i: int) -> None:
        due = t0 + i / rate
        await asyncio.sleep(due - clock())
        sent = clock()
        failed = await send(session, make())
        done = clock()
        if i >= warm:
            latencies.append(done - due)
            late.append(sent - due)
            finished.append(done)
            if failed:
                failures[failed] += 1

    await asyncio.gather(*(one(i) for i in range(warm + measured)))
    first_due = t0 + warm / rate
    span = max(max(finished) - first_due, measured / rate)
    ok = len(latencies) - sum(failures.values())
    row = {
        "offered_rps": rate,
        "achieved_rps": round(ok / span, 1),
        "requests": len(latencies),
        "errors": sum(failures.values()),
        "error_kinds": dict(failures),
        **percentiles(latencies, 50, 90, 99),
        "max_ms": round(max(latencies) * 1000, 2),
        "late_p99_ms": percentiles(late, 99)["p99_ms"],
    }
    row["held"] = (
        row["p99_ms"] < P99_LIMIT_MS
        and row["errors"] == 0
        and row["achieved_rps"] >= HELD_SHARE * rate
    )
    return row


def verdict(row: dict[str, Any]) -> str:
    if row["held"]:
        return "held"
    reasons = []
    if row["p99_ms"] >= P99_LIMIT_MS:
        reasons.append("p99 over")
    if row["errors"]:
        reasons.append("errors")
    if row["achieved_rps"] < HELD_SHARE * row["offered_rps"]:
        reasons.append("behind")
    return ", ".join(reasons)


def cpu_sample(pid: int) -> tuple[float, float, int, int]:
    """Wall clock, the process's CPU seconds, and the machine's busy and total jiffies."""
    ticks = os.sysconf("SC_CLK_TCK")
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    process = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    cpu = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = cpu[3] + cpu[4]  # idle, iowait
    return time.perf_counter(), process, sum(cpu) - idle, sum(cpu)


async def ramp(
    session: aiohttp.ClientSession,
    route: str,
    make: Callable[[], Request],
    rates: list[float],
    seconds: float,
    server_pid: int,
) -> dict[str, Any]:
    """Step the offered rate up until one is not held (halving down from the first if even
    that one is not), then try once between the highest held rate and the lowest not held;
    the highest held rate is the route's answer."""
    steps: list[dict[str, Any]] = []

    async def step(rate: float) -> bool:
        wall, process, busy, total = cpu_sample(server_pid)
        row = await open_loop(session, make, rate, seconds)
        wall2, process2, busy2, total2 = cpu_sample(server_pid)
        row["server_cores"] = round((process2 - process) / (wall2 - wall), 2)
        row["machine_busy"] = round((busy2 - busy) / max(total2 - total, 1), 2)
        steps.append(row)
        print_step(route, row)
        return bool(row["held"])

    held: float | None = None
    failed: float | None = None
    for rate in rates:
        if not await step(rate):
            failed = rate
            break
        held = rate
    if failed is not None and held is None:
        probe = failed / 2
        while held is None and probe >= 1:
            if await step(probe):
                held = probe
            else:
                failed, probe = probe, probe / 2
    if failed is not None and held is not None:
        between = round(math.sqrt(held * failed))
        if held < between < failed and await step(between):
            held = between
    return {"steps": steps, "highest_held_rps": held}


async def closed_loop(
    session: aiohttp.ClientSession, make: Callable[[], Request], seconds: float
) -> dict[str, Any]:
    """One client, each request when the last has answered (the producer searching)."""
    latencies: list[float] = []
    failures: Counter[str] = Counter()
    end = time.perf_counter() + seconds
    while (sent := time.perf_counter()) < end:
        failed = await send(session, make())
        latencies.append(time.perf_counter() - sent)
        if failed:
            failures[failed] += 1
    return {
        "searches": len(latencies),
        "errors": sum(failures.values()),
        **percentiles(latencies, 50, 95, 99),
    }


async def embedding_backlog(database_url: str) -> int:
    """Posts still waiting for the API's embedding worker."""
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cur = await conn.execute(
            "SELECT count(*) FROM posts p WHERE p.status <> 'rejected' AND NOT EXISTS "
            "(SELECT 1 FROM post_embeddings e WHERE e.post_id = p.id AND e.model = %s)",
            (LOCAL_MODEL,),
        )
        row = await cur.fetchone()
        return int(row[0]) if row else 0


async def run_api(
    base: str, pid: int, database_url: str, args: argparse.Namespace
) -> dict[str, Any]:
    counter = itertools.count()
    # Idle connections are dropped before uvicorn's own 5 s keep-alive timeout closes them, or a
    # request can go out on a connection the server is closing (ServerDisconnectedError).
    connector = aiohttp.TCPConnector(limit=MAX_CONNECTIONS, keepalive_timeout=2)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_S)
    async with aiohttp.ClientSession(base, connector=connector, timeout=timeout) as session:
        async with session.post(
            "/api/auth/login", json={"username": PRODUCER, "password": PASSWORD}
        ) as resp:
            resp.raise_for_status()
            producer = {"Authorization": f"Bearer {(await resp.json())['token']}"}
        listeners = []
        for i in range(LISTENERS):
            async with session.post("/api/session", json={"nickname": f"Bench {i}"}) as resp:
                resp.raise_for_status()
                listeners.append({"Authorization": f"Bearer {(await resp.json())['token']}"})
        texts = query_texts()

        def search() -> Request:
            q = texts[next(counter) % len(texts)]
            return "GET", "/api/posts/search", {"headers": producer, "params": {"q": q, "k": 10}}

        def livekit_token() -> Request:
            return "POST", "/api/livekit/token", {"headers": listeners[next(counter) % LISTENERS]}

        def post() -> Request:
            i = next(counter)
            headers = {**listeners[i % LISTENERS], "Idempotency-Key": f"bench-{i}"}
            text = f"Load test post {i}: {QUERIES[i % len(QUERIES)]}, from the bench."
            return "POST", "/api/posts", {"headers": headers, "json": {"text": text}}

        # Search first, over exactly the seeded posts while the embedding worker idles.
        http_search = None
        if args.api_embeddings != "off":
            for _ in range(5):
                await send(session, search())
            http_search = await closed_loop(session, search, args.seconds_per_step)
        routes = {}
        for route, make in (("POST /api/livekit/token", livekit_token), ("POST /api/posts", post)):
            routes[route] = await ramp(session, route, make, args.rates, args.seconds_per_step, pid)
    return {
        "http_search": http_search,
        "routes": routes,
        "embedding_backlog_after_posts": await embedding_backlog(database_url),
    }


# --- Report -------------------------------------------------------------------------------------

STEP_HEADER = (
    f"{'route':<25}{'offered/s':>10}{'achieved/s':>11}{'requests':>9}{'errors':>7}"
    f"{'p50 ms':>8}{'p99 ms':>8}{'max ms':>8}{'late p99':>9}{'api cpu':>8}{'busy':>6}  verdict"
)


def print_step(route: str, r: dict[str, Any]) -> None:
    print(
        f"{route:<25}{r['offered_rps']:>10g}{r['achieved_rps']:>11.1f}{r['requests']:>9}"
        f"{r['errors']:>7}{r['p50_ms']:>8.1f}{r['p99_ms']:>8.1f}{r['max_ms']:>8.1f}"
        f"{r['late_p99_ms']:>9.1f}{r['server_cores']:>8.2f}{r['machine_busy']:>6.0%}  {verdict(r)}",
        flush=True,
    )


def print_search(rows: list[dict[str, Any]]) -> None:
    print(
        f"{'search path':<40}{'ef_search':>10}{'n':>6}{'p50 ms':>8}{'p95 ms':>8}{'recall@10':>11}"
    )
    for r in rows:
        ef = "-" if r.get("ef_search") is None else str(r["ef_search"])
        recall = r.get("recall_at_10")
        print(
            f"{r['path']:<40}{ef:>10}{r['searches']:>6}{r['p50_ms']:>8.1f}{r['p95_ms']:>8.1f}"
            f"{'-' if recall is None else f'{recall:.3f}':>11}",
            flush=True,
        )


def _interrupt(signum: int, frame: object) -> None:
    signal.raise_signal(signal.SIGINT)  # SIGTERM unwinds like Ctrl-C, through every cleanup


def _numbers(kind: type) -> Callable[[str], list[Any]]:
    return lambda s: [kind(x) for x in s.split(",") if x]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=100_000, help="posts in the memory")
    parser.add_argument(
        "--real-posts", type=int, default=2000, help="of which embedded with the real model"
    )
    parser.add_argument(
        "--ef-search", type=_numbers(int), default=[40, 100], help="hnsw.ef_search values"
    )
    parser.add_argument("--search-repeats", type=int, default=3, help="timed passes per value")
    parser.add_argument(
        "--rates",
        type=_numbers(float),
        default=[10, 20, 40, 80, 160, 320, 640, 1280],
        help="offered requests a second, in rising order",
    )
    parser.add_argument("--seconds-per-step", type=float, default=4.0)
    parser.add_argument(
        "--api-embeddings",
        choices=["local", "off"],
        default="local",
        help="the API's embedding worker during the rate steps (off: posts alone, no HTTP search)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    # Ctrl-C stops the bench even when its shell started it with SIGINT ignored (`cmd &`);
    # inside asyncio.run, asyncio's own handler takes over and cancels the load cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)

    def log(message: str) -> None:
        print(f"· {message}", flush=True)

    began = time.perf_counter()
    load_before = os.getloadavg()
    if load_before[0] > (os.cpu_count() or 1) / 2:
        log(
            f"the machine is already busy (load {load_before[0]:.1f} on {os.cpu_count()} cores): "
            "every number below shares it"
        )
    embedder = LocalEmbedder(threads=os.cpu_count() or 1)
    embedder.embed_sync(["warm-up"])
    texts = query_texts()
    embed_took = []
    for text in texts:  # one at a time, as a search embeds its query
        started = time.perf_counter()
        embedder.embed_sync([text])
        embed_took.append(time.perf_counter() - started)
    vectors = dict(zip(texts, embedder.embed_sync(texts), strict=True))
    folder = Path(tempfile.mkdtemp(prefix="radio24-bench-"))
    folder.chmod(0o755)  # embedded Postgres runs as a system user under root: it must get in
    try:
        with parts(folder, log) as (database_url, redis_url):
            seeded = seed(database_url, args.posts, args.real_posts, embedder, random.Random(24))
            log(
                f"seeded {seeded.posts} posts ({seeded.real} real {LOCAL_MODEL} embeddings in "
                f"{seeded.embed_s:.1f}s, {seeded.posts - seeded.real} synthetic vectors), "
                f"binary COPY in {seeded.insert_s:.1f}s; HNSW index built in "
                f"{seeded.index_s:.1f}s (maintenance_work_mem {MAINTENANCE_WORK_MEM}, "
                f"{seeded.parallel_workers} parallel workers)"
            )
            for notice in seeded.index_notices:
                log(f"postgres: {notice}")
            search = asyncio.run(
                search_memory(
                    database_url, vectors, seeded.real_ids, args.ef_search, args.search_repeats
                )
            )
            search.append(
                {"path": f"{LOCAL_MODEL} embedding of one query", "ef_search": None,
                 "searches": len(embed_took), **percentiles(embed_took, 50, 95, 99)}
            )  # fmt: skip
            with served(folder, database_url, redis_url, args.api_embeddings) as (base, pid):
                log(
                    f"api (uvicorn, own process) on {base}; open loop, {args.seconds_per_step:g}s "
                    f"per rate after {WARMUP_S:g}s unrecorded; late = generator behind schedule, "
                    "api cpu = cores the API process used, busy = the whole machine"
                )
                print(STEP_HEADER)
                measured = asyncio.run(run_api(base, pid, database_url, args))
            http_search = measured.pop("http_search")
            if http_search is not None:
                search.append(
                    {"path": "GET /api/posts/search (HTTP, 1 client)", "ef_search": 40,
                     **http_search}
                )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print()
    synthetic = next(r for r in search if "synthetic_share_of_exact_top10" in r)
    print(
        f"memory search over {seeded.posts} posts: {seeded.real} real {LOCAL_MODEL} embeddings "
        f"({DIMENSIONS[LOCAL_MODEL]}-d), "
        f"{seeded.posts - seeded.real} synthetic unit vectors "
        f"({synthetic['synthetic_share_of_exact_top10']:.0%} of the exact top 10); "
        f"HNSW build {seeded.index_s:.1f}s"
    )
    print_search(search)
    print()
    for route, result in measured["routes"].items():
        held = result["highest_held_rps"]
        print(f"{route}: highest rate held with p99 < {P99_LIMIT_MS:g} ms: {held} req/s")
    backlog = measured["embedding_backlog_after_posts"]
    print(f"posts still waiting for the embedding worker after the post steps: {backlog}")
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_1m_before_and_after": [
                round(load_before[0], 2),
                round(os.getloadavg()[0], 2),
            ],
        },
        "setup": {
            "server": "uvicorn --factory api.main:create_app in its own process, 1 worker; "
            f"keeper off, API_EMBEDDINGS={args.api_embeddings}, rate limits lifted",
            "load": "aiohttp in the bench's process, open loop: fixed schedule, latency from "
            "each request's due time; over loopback HTTP/1.1",
            "p99_limit_ms": P99_LIMIT_MS,
            "held": f"p99 < {P99_LIMIT_MS:g} ms, no errors, achieved >= {HELD_SHARE:.0%} offered",
            "rates": args.rates,
            "seconds_per_step": args.seconds_per_step,
            "warmup_seconds_per_step": WARMUP_S,
            "request_timeout_s": REQUEST_TIMEOUT_S,
            "postgres_fsync": not os.environ.get("RADIO_PG_FAST"),
        },
        "memory": {
            "posts": seeded.posts,
            "real_embeddings": seeded.real,
            "synthetic_vectors": seeded.posts - seeded.real,
            "synthetic": "512-d unit vectors: a random real local embedding + 0.5 x another + "
            f"N(0, {SYNTHETIC_NOISE}) per dimension, normalised; their post texts are generated "
            "and do not match them",
            "queries": f"{len(texts)} real texts embedded with {LOCAL_MODEL}",
            "embed_real_s": round(seeded.embed_s, 2),
            "binary_copy_s": round(seeded.insert_s, 2),
            "hnsw_build_s": round(seeded.index_s, 2),
            "hnsw_build": {
                "maintenance_work_mem": MAINTENANCE_WORK_MEM,
                "max_parallel_maintenance_workers": seeded.parallel_workers,
                "notices": seeded.index_notices,
            },
            "search": search,
        },
        **measured,
        "total_s": round(time.perf_counter() - began, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out} in {report['total_s']}s in all")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: everything the bench started is stopped\n")
        raise SystemExit(130) from None
