"""`radio24 run`: the whole station on one machine, supervised by honcho.

Parts: LiveKit, Postgres, Redis (embedded unless DATABASE_URL / REDIS_URL point elsewhere), the
API and the host worker, plus a banner that waits until everything answers and prints the URL.
Honcho stops every part's process group on Ctrl-C or when any part exits; each part runs in the
foreground (Postgres too), so nothing is left behind. A lock file refuses a second `make run`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import sys
import time
from pathlib import Path
from typing import IO

import honcho.manager
import honcho.printer

from radio24 import rack
from radio24.settings import RUN_PORTS, StationSettings, load

# RADIO_RUN_DIR and RADIO_PORT_OFFSET let a test run a whole second station beside `make run`.
RUN_DIR = Path(os.environ.get("RADIO_RUN_DIR", rack.ROOT / ".run"))
PGDATA = RUN_DIR / "pgdata"
LOGS = RUN_DIR / "logs"
_OFFSET = int(os.environ.get("RADIO_PORT_OFFSET", "0"))
PORTS = {name: port + _OFFSET for name, port in RUN_PORTS.items()}
LIVEKIT_TCP_PORT = 7881 + _OFFSET
LIVEKIT_UDP_START = 50000 + _OFFSET
HOST_HEALTH_PORT = 8081 + _OFFSET
PARTS = {"livekit", "postgres", "redis", "api", "host", "banner"}


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class _TeePrinter(honcho.printer.Printer):
    """Honcho's console printer that also keeps one log file per part under .run/logs."""

    def __init__(self, output: IO[str]) -> None:
        super().__init__(output)
        LOGS.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, IO[str]] = {}

    def write(self, message: honcho.printer.Message) -> None:
        super().write(message)
        if message.type != "line":
            return
        if message.name not in self._files:
            self._files[message.name] = (LOGS / f"{message.name}.log").open("a")
        data = message.data
        text = data.decode(errors="replace") if isinstance(data, bytes) else str(data)
        self._files[message.name].write(text)
        self._files[message.name].flush()


def _embedded(settings: StationSettings) -> tuple[bool, bool]:
    """Which of Postgres and Redis run embedded (no URL given in the environment)."""
    return "DATABASE_URL" not in os.environ, "REDIS_URL" not in os.environ


def _child_env(settings: StationSettings) -> dict[str, str]:
    pg, rd = _embedded(settings)
    env = {
        "LIVEKIT_URL": os.environ.get("LIVEKIT_URL", f"ws://127.0.0.1:{PORTS['livekit']}"),
        "LIVEKIT_API_KEY": settings.livekit_api_key,
        "LIVEKIT_API_SECRET": settings.livekit_api_secret.get_secret_value(),
        "PYTHONUNBUFFERED": "1",
    }
    if pg:
        env["DATABASE_URL"] = f"postgresql://postgres@127.0.0.1:{PORTS['postgres']}/radio24"
        env["RADIO_EMBEDDED_PG"] = "1"
    if rd:
        env["REDIS_URL"] = f"redis://127.0.0.1:{PORTS['redis']}/0"
    return env


def _busy_ports(settings: StationSettings) -> list[str]:
    pg, rd = _embedded(settings)
    wanted = {
        "LiveKit": PORTS["livekit"],
        "LiveKit TCP": LIVEKIT_TCP_PORT,
        "API": PORTS["api"],
        "host health": HOST_HEALTH_PORT,
    }
    if pg:
        wanted["Postgres"] = PORTS["postgres"]
    if rd:
        wanted["Redis"] = PORTS["redis"]
    return [f"{name} ({port})" for name, port in wanted.items() if rack.port_open(port)]


def run() -> int:
    RUN_DIR.mkdir(exist_ok=True)
    lock = (RUN_DIR / "run.lock").open("a+")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        lock.seek(0)
        _out(f"radio24: the station is already running (pid {lock.read().strip() or '?'}); "
             "stop it with Ctrl-C in its terminal first.")  # fmt: skip
        return 1
    lock.truncate(0)
    lock.write(str(os.getpid()))
    lock.flush()

    settings = load(StationSettings)
    busy = _busy_ports(settings)
    if busy:
        _out(f"radio24: ports in use by another program: {', '.join(busy)}. Stop it and retry.")
        return 1
    pg, rd = _embedded(settings)
    if pg:
        _out("radio24: preparing the embedded Postgres data folder (.run/pgdata)")
        rack.prepare_postgres(PGDATA)

    env = {**os.environ, **_child_env(settings)}
    manager = honcho.manager.Manager(printer=_TeePrinter(sys.stdout))
    me = [sys.executable, "-m", "radio24.cli", "part"]
    parts = ["livekit", *(["postgres"] if pg else []), *(["redis"] if rd else []),
             "api", "host", "banner"]  # fmt: skip
    for name in parts:
        manager.add_process(name, " ".join([*me, name]), env=env, cwd=str(rack.ROOT))
    manager.loop()
    return 0 if manager.returncode in (0, 130, 143, None) else int(manager.returncode)


def _wait(what: str, ready: object, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if ready():  # type: ignore[operator]
                return
        time.sleep(0.2)
    raise SystemExit(f"radio24: {what} did not become ready within {timeout:.0f}s")


def _pg_ready() -> bool:
    import psycopg

    url = os.environ["DATABASE_URL"]
    if os.environ.get("RADIO_EMBEDDED_PG") == "1":
        rack.create_database(PORTS["postgres"], "radio24")
    with psycopg.connect(url, connect_timeout=2) as conn:
        conn.execute("SELECT 1")
    return True


def _redis_ready() -> bool:
    import redis

    return bool(redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2).ping())


def run_part(name: str) -> int:
    """Run one part in the foreground; `exec` where possible so signals reach it directly."""
    settings = load(StationSettings)
    if name == "livekit":
        key, secret = settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
        rack.exec_part(rack.livekit(PORTS["livekit"], LIVEKIT_TCP_PORT, LIVEKIT_UDP_START,
                                    key, secret))  # fmt: skip
    elif name == "postgres":
        rack.exec_part(rack.postgres(PGDATA, PORTS["postgres"]))
    elif name == "redis":
        rack.exec_part(rack.redis(RUN_DIR / "redis", PORTS["redis"]))
    elif name == "api":
        from db import migrate

        _wait("Postgres", _pg_ready)
        _wait("Redis", _redis_ready)
        applied = migrate.apply(os.environ["DATABASE_URL"])
        _out(f"migrations applied: {applied or 'none (up to date)'}")
        argv = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
                "--host", "127.0.0.1", "--port", str(PORTS["api"]), "--no-access-log"]  # fmt: skip
        os.execv(sys.executable, argv)
    elif name == "host":
        _wait("LiveKit", lambda: rack.port_open(PORTS["livekit"]))
        _wait("Redis", _redis_ready)
        os.environ["HOST_HEALTH_PORT"] = str(HOST_HEALTH_PORT)
        main = str(rack.ROOT / "agent" / "main.py")
        os.execv(sys.executable, [sys.executable, main, "dev"])
    elif name == "banner":
        return _banner(settings)
    return 0


def _host_registered(since: float) -> bool:
    import redis

    from agent.job import WORKER_KEY

    at = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2).hget(WORKER_KEY, "at")
    return at is not None and float(at) >= since


def _banner(settings: StationSettings) -> int:
    import httpx

    started = time.time()
    api = f"http://127.0.0.1:{PORTS['api']}"
    _wait("the API", lambda: httpx.get(f"{api}/healthz", timeout=2).status_code == 200, 90)
    _wait("LiveKit", lambda: rack.port_open(PORTS["livekit"]), 30)
    _wait("the host worker", lambda: _host_registered(started), 90)
    mode = "OpenAI Realtime" if not settings.offline else "offline mode (no OPENAI_API_KEY)"
    _out("")
    _out(f"  radio24 is on air in {time.time() - started:.1f}s")
    _out(f"  listen:   {api}/")
    _out(f"  studio:   {api}/studio   (producers: radio24 producer add NAME)")
    _out(f"  LiveKit:  {os.environ['LIVEKIT_URL']}   room: {settings.radio_room}")
    _out(f"  host:     {mode}")
    _out(f"  logs:     {LOGS}/   stop: Ctrl-C")
    _out("")
    stop = False

    def _stop(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop:
        time.sleep(0.5)
    return 0


def migrate() -> int:
    """`make migrate`: apply migrations; starts the embedded Postgres for the moment if needed."""
    from db import migrate as db_migrate

    settings = load(StationSettings)
    if not _embedded(settings)[0]:
        _out(f"applied: {db_migrate.apply(settings.database_url.get_secret_value()) or 'none'}")
        return 0
    port = PORTS["postgres"]
    proc = None
    if not rack.port_open(port):
        rack.prepare_postgres(PGDATA)
        proc = rack.popen(rack.postgres(PGDATA, port), LOGS / "postgres.log")
        rack.wait_port(port, 30, proc)
        rack.wait_postgres(port, 30)
    try:
        url = rack.create_database(port, "radio24")
        _out(f"applied: {db_migrate.apply(url) or 'none (up to date)'}")
    finally:
        if proc is not None:
            rack.stop(proc)
    return 0
