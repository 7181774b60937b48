"""`radio24 run`: the whole station on one machine, under supervisord.

Parts: LiveKit, Postgres, Redis (embedded unless DATABASE_URL / REDIS_URL point elsewhere), the
API, two host workers (the second is warm: a dispatch never waits for a process to boot) and a
banner that waits until everything answers and prints the URL. supervisord restarts a part that
dies (at once if it had been up; with growing back-off if it keeps dying while starting), keeps
each part's output in `.run/logs/<part>.log` rotated by size, and on Ctrl-C stops every part.
The console (radio24/console.py) shows the banner, parts coming up, dying or retrying, and the
parts' warnings. Every part runs in the foreground (Postgres too) and dies with supervisord
(PR_SET_PDEATHSIG), so nothing is left behind. A lock file refuses a second `make run`.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import sys
import time
import xmlrpc.client  # nosec B411: only our own supervisord, over a local Unix socket
from dataclasses import dataclass, field
from pathlib import Path

from core.settings import RUN_PORTS, StationSettings, load
from radio24 import rack

# RADIO_RUN_DIR and RADIO_PORT_OFFSET let a test run a whole second station beside `make run`.
RUN_DIR = Path(os.environ.get("RADIO_RUN_DIR", rack.ROOT / ".run"))
PGDATA = RUN_DIR / "pgdata"
LOGS = RUN_DIR / "logs"
CONFIG = RUN_DIR / "supervisord.conf"
SOCKET = RUN_DIR / "supervisor.sock"
_OFFSET = int(os.environ.get("RADIO_PORT_OFFSET", "0"))
PORTS = {name: port + _OFFSET for name, port in RUN_PORTS.items()}
LIVEKIT_TCP_PORT = 7881 + _OFFSET
LIVEKIT_UDP_START = 50000 + _OFFSET
HOST_HEALTH_PORTS = (8081 + _OFFSET, 8082 + _OFFSET)
PARTS = {"livekit", "postgres", "redis", "api", "host", "banner", "console"}
# Each part's log is rotated at this size, keeping this many old files (≈40 MB a part at most).
LOG_MAX_BYTES = "10MB"
LOG_BACKUPS = 3
# A part that exits within START_SECONDS of starting is retried after 1 s, 2 s, 3 s, ... and
# given up only after START_RETRIES quick exits in a row (days of back-off); one that had been
# up longer is restarted at once.
START_SECONDS = 3
START_RETRIES = 1000


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


@dataclass(frozen=True)
class Program:
    """One supervised process: `radio24 part <part>` under a supervisord program name."""

    name: str
    part: str
    priority: int  # lower starts first and stops last
    stopsignal: str = "TERM"
    stopwaitsecs: int = 10
    env: dict[str, str] = field(default_factory=dict)
    on_console: bool = False  # its output goes to the console (the banner), not to a log file


def programs(embedded_pg: bool, embedded_redis: bool) -> list[Program]:
    """The station's processes. SIGINT is a fast, clean stop for LiveKit, Postgres and Redis."""
    found = [Program("livekit", "livekit", 10, "INT")]
    if embedded_pg:
        found.append(Program("postgres", "postgres", 10, "INT", 20))
    if embedded_redis:
        found.append(Program("redis", "redis", 10, "INT"))
    found.append(Program("api", "api", 20))
    # The worker drains its job for HOST_DRAIN_SECONDS (5 s) on SIGTERM, then exits.
    for i, port in enumerate(HOST_HEALTH_PORTS, start=1):
        found.append(Program(f"host-{i}", "host", 30, "TERM", 15, {"HOST_HEALTH_PORT": str(port)}))
    found.append(Program("banner", "banner", 40, on_console=True))
    return found


def supervisor_config(progs: list[Program], run_dir: Path, username: str, password: str) -> str:
    """supervisord's configuration for these programs (written 0600: it holds the RPC password)."""
    logs = run_dir / "logs"
    me = f"{sys.executable} -m radio24.cli part"
    lines = [
        "[supervisord]",
        "nodaemon=true",
        "silent=true",  # its own log goes to the file; the console listener prints what matters
        f"logfile={logs / 'supervisord.log'}",
        f"logfile_maxbytes={LOG_MAX_BYTES}",
        "logfile_backups=2",
        f"pidfile={run_dir / 'supervisord.pid'}",
        f"childlogdir={logs}",
        f"directory={rack.ROOT}",
        "strip_ansi=true",
        *(["user=root"] if os.geteuid() == 0 else []),  # says it means to run as root
        "",
        "[unix_http_server]",
        f"file={run_dir / 'supervisor.sock'}",
        "chmod=0700",
        f"username={username}",
        f"password={password}",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{run_dir / 'supervisor.sock'}",
        f"username={username}",
        f"password={password}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
    ]
    for prog in progs:
        lines += [
            f"[program:{prog.name}]",
            f"command={me} {prog.part}",
            f"priority={prog.priority}",
            f"stopsignal={prog.stopsignal}",
            f"stopwaitsecs={prog.stopwaitsecs}",
            "killasgroup=true",  # a part that will not stop is killed with all its children
            "redirect_stderr=true",
        ]
        if prog.on_console:
            lines += ["autorestart=false", "startsecs=0",
                      "stdout_logfile=/dev/stdout", "stdout_logfile_maxbytes=0"]  # fmt: skip
        else:
            lines += [
                "autorestart=true",
                f"startsecs={START_SECONDS}",
                f"startretries={START_RETRIES}",
                f"stdout_logfile={logs / (prog.name + '.log')}",
                f"stdout_logfile_maxbytes={LOG_MAX_BYTES}",
                f"stdout_logfile_backups={LOG_BACKUPS}",
                "stdout_events_enabled=true",  # the console listener picks out the warnings
            ]
        if prog.env:
            env = ",".join(f'{k}="{v}"' for k, v in prog.env.items())
            lines.append(f"environment={env}")
        lines.append("")
    lines += [
        "[eventlistener:console]",
        f"command={me} console",
        "events=PROCESS_STATE,PROCESS_LOG",
        "buffer_size=1000",
        "priority=1",
        "autorestart=true",
        "stderr_logfile=/dev/stdout",  # stdout is supervisord's event protocol
        "stderr_logfile_maxbytes=0",
        "",
    ]
    return "\n".join(lines)


def control(run_dir: Path = RUN_DIR) -> xmlrpc.client.ServerProxy:
    """supervisord's XML-RPC interface of a running station (operators, the fault tests)."""
    from supervisor.xmlrpc import SupervisorTransport

    conf = dict(
        line.split("=", 1)
        for line in (run_dir / "supervisord.conf").read_text().splitlines()
        if line.startswith(("username=", "password="))
    )
    transport = SupervisorTransport(
        conf["username"], conf["password"], f"unix://{run_dir / 'supervisor.sock'}"
    )
    return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)


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
        # The host's spool files beside this run's other state (a second station, as the
        # fault suite runs, must not take over this one's).
        "HOST_SPOOL_DIR": os.environ.get("HOST_SPOOL_DIR", str(RUN_DIR / "spool")),
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
        **{f"host health {i}": port for i, port in enumerate(HOST_HEALTH_PORTS, start=1)},
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

    LOGS.mkdir(parents=True, exist_ok=True)
    os.environ.update(_child_env(settings))  # supervisord passes its environment to the parts
    text = supervisor_config(programs(pg, rd), RUN_DIR, "radio24", secrets.token_urlsafe(24))
    CONFIG.unlink(missing_ok=True)
    fd = os.open(CONFIG, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as conf:
        conf.write(text)
    _out(f"radio24: starting the station; each part logs to {LOGS}/")
    from supervisor import supervisord

    supervisord.main(["-c", str(CONFIG)])  # returns once Ctrl-C has stopped every part
    return 0


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
    rack.die_with_parent()  # kept across exec: a killed supervisord leaves no part behind
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
                "--host", "127.0.0.1", "--port", str(PORTS["api"]), "--no-access-log",
                # Proxy headers are trusted only from API_TRUSTED_PROXIES, inside the app.
                "--no-proxy-headers"]  # fmt: skip
        os.execv(sys.executable, argv)
    elif name == "host":
        # No wait for Redis: the host must come up (and keep talking) without it.
        _wait("LiveKit", lambda: rack.port_open(PORTS["livekit"]))
        main = str(rack.ROOT / "agent" / "main.py")
        os.execv(sys.executable, [sys.executable, main, "start"])  # HOST_HEALTH_PORT: per worker
    elif name == "banner":
        return _banner(settings)
    elif name == "console":
        from radio24 import console

        console.listen()
    return 0


def _host_registered(since: float, room: str) -> bool:
    import redis

    from contract.keys import Keys

    client = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=2)
    at = client.hget(Keys(room).worker, "at")
    return at is not None and float(at) >= since


def _banner(settings: StationSettings) -> int:
    import httpx

    started = time.time()
    api = f"http://127.0.0.1:{PORTS['api']}"
    _wait("the API", lambda: httpx.get(f"{api}/healthz", timeout=2).status_code == 200, 90)
    _wait("LiveKit", lambda: rack.port_open(PORTS["livekit"]), 30)
    _wait("the host worker", lambda: _host_registered(started, settings.radio_room), 90)
    mode = "OpenAI Realtime" if not settings.offline else "offline mode (no OPENAI_API_KEY)"
    _out("")
    _out(f"  radio24 is on air in {time.time() - started:.1f}s")
    _out(f"  listen:   {api}/")
    _out(f"  studio:   {api}/studio   (producers: radio24 producer add NAME)")
    _out(f"  LiveKit:  {os.environ['LIVEKIT_URL']}   room: {settings.radio_room}")
    _out(f"  host:     {mode}, {len(HOST_HEALTH_PORTS)} workers")
    _out(f"  logs:     {LOGS}/   stop: Ctrl-C")
    _out("")
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
