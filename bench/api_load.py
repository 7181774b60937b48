"""How the companion API holds up under load: sessions, LiveKit tokens, posts and memory search.

One command starts its own Postgres (pgvector) and Redis on free loopback ports in a temp folder,
seeds N posts with their local MiniLM embeddings (inserted directly, as the embedding worker
would store them), serves the real app (lifespan, relay, embedding worker, event hub) under
uvicorn in a thread of this process, and drives each route with closed-loop clients over HTTP:
at each concurrency, for a fixed time after a short warm-up. It prints latency percentiles and
requests per second side by side, the search's recall@10 against an exact scan of the same
vectors, and writes everything to bench/results/api_load.json. Everything it starts is stopped
on the way out, also after Ctrl-C or an error.

    .venv/bin/python bench/api_load.py [--posts 5000] [--seconds 8] [--concurrency 1,8]

The load client shares this process (and its GIL) with the server, so latencies include the
client's own cost and are an upper bound for a server alone on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import random
import secrets
import shutil
import signal
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import uvicorn

from api.auth import hasher
from api.main import create_app
from api.settings import ApiSettings
from db import migrate
from db.memory import MINILM, MiniLMEmbedder, vector_literal
from radio24 import rack

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "api_load.json"
PRODUCER, PASSWORD = "benchproducer", secrets.token_urlsafe(12)
LISTENERS = 64  # listener tokens the token and post phases spread over
AUTHORS = 200  # authors of the seeded posts
WARMUP_S = 1.0
EMBED_BATCH = 64

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


# --- The parts ----------------------------------------------------------------------------------


@contextmanager
def parts(log: Callable[[str], None]) -> Iterator[tuple[str, str]]:
    """Postgres (migrated database `radio24_bench`) and Redis on free ports; yields their URLs."""
    folder = Path(tempfile.mkdtemp(prefix="radio24-bench-"))
    folder.chmod(0o755)  # embedded Postgres runs as a system user under root: it must get in
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, True)

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


@dataclass
class Seeded:
    ids: list[uuid.UUID]
    vectors: np.ndarray  # unit length, one row per id
    embed_s: float
    insert_s: float


def seed(database_url: str, n: int, embedder: MiniLMEmbedder, rng: random.Random) -> Seeded:
    """N posts by AUTHORS listeners, four in five aired, each with its MiniLM embedding, plus the
    producer who searches. Stored as the API and its worker store them (queued ones already
    handed to the host, so the relay stays idle)."""
    authors = [uuid.uuid4() for _ in range(AUTHORS)]
    ids = [uuid.uuid4() for _ in range(n)]
    texts = [post_text(rng) for _ in range(n)]
    started = time.perf_counter()
    vectors = np.concatenate(
        [embedder.embed_sync(texts[i : i + EMBED_BATCH]) for i in range(0, n, EMBED_BATCH)]
    )
    embed_s = time.perf_counter() - started
    started = time.perf_counter()
    now = datetime.now(UTC)
    with psycopg.connect(database_url) as conn:
        conn.execute(
            "INSERT INTO people (nickname, role, password_hash) VALUES (%s, 'producer', %s)",
            (PRODUCER, hasher.hash(PASSWORD)),
        )
        with conn.cursor().copy("COPY people (id, nickname) FROM STDIN") as copy:
            for i, author in enumerate(authors):
                copy.write_row((author, f"Listener {i}"))
        columns = "id, author_id, text, status, created_at, aired_at, enqueued_at"
        with conn.cursor().copy(f"COPY posts ({columns}) FROM STDIN") as copy:
            for i, (post_id, text) in enumerate(zip(ids, texts, strict=True)):
                created = now - timedelta(minutes=2 * (n - i))
                aired = rng.random() < 0.8
                status, aired_at = (
                    ("aired", created + timedelta(minutes=1)) if aired else ("queued", None)
                )
                copy.write_row(
                    (post_id, rng.choice(authors), text, status, created, aired_at, created)
                )
        with conn.cursor().copy(
            "COPY post_embeddings (post_id, model, embedding) FROM STDIN"
        ) as copy:
            for post_id, vector in zip(ids, vectors, strict=True):
                copy.write_row((post_id, MINILM, vector_literal(vector)))
        conn.execute("ANALYZE")
    return Seeded(ids, vectors, embed_s, time.perf_counter() - started)


@contextmanager
def served(settings: ApiSettings) -> Iterator[str]:
    """The app under uvicorn in a thread with its own event loop; yields its base URL."""
    port = rack.free_port()
    config = uvicorn.Config(
        create_app(settings),
        host="127.0.0.1",
        port=port,
        lifespan="on",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the API did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


# --- Load ---------------------------------------------------------------------------------------

Request = tuple[str, str, dict[str, Any]]  # method, path, httpx keyword arguments


async def drive(
    client: httpx.AsyncClient, make: Callable[[], Request], concurrency: int, seconds: float
) -> dict[str, Any]:
    """Closed loop: `concurrency` clients, each sending its next request when the last answers,
    for WARMUP_S (not recorded) and then `seconds`."""
    start = time.perf_counter()
    measure_from, end = start + WARMUP_S, start + WARMUP_S + seconds
    latencies: list[float] = []
    failures: Counter[str] = Counter()

    async def one_client() -> None:
        while (sent := time.perf_counter()) < end:
            method, path, kwargs = make()
            try:
                resp = await client.request(method, path, **kwargs)
                failed = None if resp.status_code < 400 else str(resp.status_code)
            except httpx.HTTPError as exc:
                failed = type(exc).__name__
            took = time.perf_counter() - sent
            if sent >= measure_from:
                latencies.append(took)
                if failed:
                    failures[failed] += 1

    await asyncio.gather(*(one_client() for _ in range(concurrency)))
    elapsed = max(time.perf_counter(), end) - measure_from
    ms = np.array(latencies) * 1000 if latencies else np.array([float("nan")])
    return {
        "concurrency": concurrency,
        "requests": len(latencies),
        "errors": sum(failures.values()),
        "error_kinds": dict(failures),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "max_ms": round(float(ms.max()), 2),
    }


async def recall_at_10(
    client: httpx.AsyncClient, headers: dict[str, str], seeded: Seeded, embedder: MiniLMEmbedder
) -> float:
    """The share of the API's 10 nearest (HNSW) that are among the exact 10 nearest by a scan of
    the same vectors; a tie with the exact 10th counts as found (seeded texts can repeat)."""
    index = {post_id: i for i, post_id in enumerate(seeded.ids)}
    found = 0
    for query, vector in zip(QUERIES, embedder.embed_sync(QUERIES), strict=True):
        resp = await client.get("/api/posts/search", params={"q": query, "k": 10}, headers=headers)
        resp.raise_for_status()
        distances = 1.0 - seeded.vectors @ vector
        tenth = float(np.partition(distances, 9)[9])
        for hit in resp.json():
            row = index.get(uuid.UUID(hit["id"]))
            found += row is not None and distances[row] <= tenth + 1e-5
    return found / (10 * len(QUERIES))


async def embedding_caught_up(database_url: str) -> float:
    """Seconds until the embedding worker has embedded every post (the bench's new ones)."""
    started = time.perf_counter()
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        while True:
            cur = await conn.execute(
                "SELECT count(*) FROM posts p WHERE p.status <> 'rejected' AND NOT EXISTS "
                "(SELECT 1 FROM post_embeddings e WHERE e.post_id = p.id AND e.model = %s)",
                (MINILM,),
            )
            row = await cur.fetchone()
            if row is not None and row[0] == 0:
                return round(time.perf_counter() - started, 2)
            await asyncio.sleep(0.2)


async def run_load(
    base: str, database_url: str, seeded: Seeded, embedder: MiniLMEmbedder, args: argparse.Namespace
) -> dict[str, Any]:
    counter = itertools.count()
    levels = args.concurrency
    limits = httpx.Limits(max_connections=max(levels), max_keepalive_connections=max(levels))
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        login = await client.post(
            "/api/auth/login", json={"username": PRODUCER, "password": PASSWORD}
        )
        login.raise_for_status()
        producer = {"Authorization": f"Bearer {login.json()['token']}"}
        listeners = []
        for i in range(LISTENERS):
            resp = await client.post("/api/session", json={"nickname": f"Bench {i}"})
            resp.raise_for_status()
            listeners.append({"Authorization": f"Bearer {resp.json()['token']}"})

        def session() -> Request:
            return "POST", "/api/session", {"json": {"nickname": f"Guest {next(counter)}"}}

        def livekit_token() -> Request:
            return "POST", "/api/livekit/token", {"headers": listeners[next(counter) % LISTENERS]}

        def post() -> Request:
            i = next(counter)
            headers = {**listeners[i % LISTENERS], "Idempotency-Key": f"bench-{i}"}
            text = f"Load test post {i}: {QUERIES[i % len(QUERIES)]}, from the bench."
            return "POST", "/api/posts", {"headers": headers, "json": {"text": text}}

        def search() -> Request:
            query = QUERIES[next(counter) % len(QUERIES)]
            return (
                "GET",
                "/api/posts/search",
                {"headers": producer, "params": {"q": query, "k": 10}},
            )

        # Search before posts, so it searches exactly the seeded posts while the worker idles.
        routes: dict[str, Callable[[], Request]] = {
            "POST /api/session": session,
            "POST /api/livekit/token": livekit_token,
            "GET /api/posts/search": search,
            "POST /api/posts": post,
        }
        results: dict[str, list[dict[str, Any]]] = {}
        recall = None
        for name, make in routes.items():
            results[name] = []
            for level in levels:
                row = await drive(client, make, level, args.seconds)
                results[name].append(row)
                print_row(name, row)
            if name == "GET /api/posts/search":
                recall = await recall_at_10(client, producer, seeded, embedder)
                n = len(seeded.ids)
                print(f"  search recall@10 against an exact scan of {n} posts: {recall:.3f}")
    caught_up: float | None = None
    try:
        async with asyncio.timeout(60):
            caught_up = await embedding_caught_up(database_url)
    except TimeoutError:
        pass
    return {"routes": results, "search_recall_at_10": recall, "embedded_after_posts_s": caught_up}


HEADER = (
    f"{'route':<26}{'conc':>5}{'requests':>10}{'errors':>8}{'req/s':>9}"
    f"{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
)


def print_row(name: str, r: dict[str, Any]) -> None:
    print(
        f"{name:<26}{r['concurrency']:>5}{r['requests']:>10}{r['errors']:>8}{r['rps']:>9.1f}"
        f"{r['p50_ms']:>9.1f}{r['p95_ms']:>9.1f}{r['p99_ms']:>9.1f}",
        flush=True,
    )


def _interrupt(signum: int, frame: object) -> None:
    signal.raise_signal(signal.SIGINT)  # SIGTERM unwinds like Ctrl-C, through every cleanup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--posts", type=int, default=5000, help="posts to seed and search over")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured time per run")
    parser.add_argument(
        "--concurrency",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 8],
        help="clients in flight, comma-separated levels (default 1,8)",
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
    embedder = MiniLMEmbedder(threads=os.cpu_count() or 1)
    embedder.embed_sync(["warm-up"])
    with parts(log) as (database_url, redis_url):
        seeded = seed(database_url, args.posts, embedder, random.Random(24))
        log(
            f"seeded {args.posts} posts: MiniLM embeddings in {seeded.embed_s:.1f}s, "
            f"stored in {seeded.insert_s:.1f}s"
        )
        settings = ApiSettings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=database_url,
            redis_url=redis_url,
            livekit_url="ws://127.0.0.1:7880",  # tokens are signed locally; nothing connects
            livekit_api_key="bench",
            livekit_api_secret=secrets.token_urlsafe(32),
            api_jwt_secret=secrets.token_urlsafe(48),
            openai_api_key=None,
            api_embeddings="local",
            api_keeper=False,  # no LiveKit server here: nothing to keep open
            api_post_rate_limit=10**9,
            api_session_rate_limit=10**9,
            api_log_level="WARNING",
        )
        with served(settings) as base:
            log(f"api on {base}; {args.seconds:g}s per run after {WARMUP_S:g}s warm-up")
            print(HEADER)
            measured = asyncio.run(run_load(base, database_url, seeded, embedder, args))
    caught_up = measured["embedded_after_posts_s"]
    log(
        f"embedding worker caught up with the new posts {caught_up}s after the last"
        if caught_up is not None
        else "embedding worker still behind 60s after the last post"
    )
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
        "setup": {
            "posts": args.posts,
            "seconds_per_run": args.seconds,
            "warmup_seconds": WARMUP_S,
            "concurrency": args.concurrency,
            "client": "httpx over loopback HTTP/1.1, closed loop, in the server's process",
            "server": "uvicorn (1 worker) in a thread; Postgres pool max 10",
            "postgres_fsync": not os.environ.get("RADIO_PG_FAST"),
            "embeddings": MINILM,
        },
        "seed": {"embed_s": round(seeded.embed_s, 2), "insert_s": round(seeded.insert_s, 2)},
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
