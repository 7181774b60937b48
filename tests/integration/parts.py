"""Real parts a test may stop, restart, flush or freeze: a Redis and a Postgres of its own.

The session's shared parts (tests/conftest.py) must stay up for every other test; a test that
takes a part down uses one of these instead. Each runs the same binaries the station runs.
`pause()` sends SIGSTOP to the part's process and its children (a server that accepts
connections and never answers); `resume()` sends SIGCONT.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
from pathlib import Path

import psycopg

from radio24 import rack


def _family(pid: int) -> list[int]:
    """A process and its children (Postgres backends call setsid: no shared process group)."""
    found = [pid]
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


class _Part:
    proc: subprocess.Popen[bytes] | None = None
    paused = False

    def pause(self) -> None:
        assert self.proc is not None
        for pid in _family(self.proc.pid):
            os.kill(pid, signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        if self.proc is not None and self.paused:
            for pid in _family(self.proc.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        self.resume()
        if self.proc is not None:
            rack.stop(self.proc)
            self.proc = None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class RedisBox(_Part):
    """A Redis of our own on a fixed port (with its AOF, as `make run` runs it)."""

    def __init__(self, data_dir: Path, log: Path) -> None:
        self.port = rack.free_port()
        self.data_dir = data_dir
        self.part = rack.redis(data_dir, self.port)
        self.log = log

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.proc = rack.popen(self.part, self.log)
        rack.wait_port(self.port, 20, self.proc)

    def restart_empty(self) -> None:
        """Stop, lose every byte (a failover to an empty replica, no AOF), start again."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)
        self.data_dir.mkdir(parents=True)
        self.start()


class PostgresBox(_Part):
    """A Postgres of our own (pgvector included), with a migrated template to clone from."""

    TEMPLATE = "radio24_template"

    def __init__(self, pgdata: Path, log: Path) -> None:
        self.pgdata = pgdata
        self.log = log
        self.port = rack.free_port()
        self.part = rack.postgres(pgdata, self.port)

    def url(self, name: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"

    def start(self) -> None:
        self.proc = rack.popen(self.part, self.log)
        rack.wait_port(self.port, 30, self.proc)
        rack.wait_postgres(self.port, 30)

    def prepare(self) -> None:
        from db import migrate

        rack.prepare_postgres(self.pgdata)
        self.start()
        migrate.apply(rack.create_database(self.port, self.TEMPLATE))

    def new_database(self) -> str:
        name = f"t_{secrets.token_hex(6)}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.TEMPLATE}"')
        return self.url(name)
