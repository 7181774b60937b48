"""`make run` brings the whole station up, refuses a second
copy, and leaves no process behind on Ctrl-C — run beside `make run` with a port offset."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest

from radio24 import rack
from tests.conftest import world_traversable_dir

pytestmark = pytest.mark.integration

BASE_PORTS = [7880, 7881, 55432, 56379, 8000, 8081]


def _free_offset() -> int:
    for _ in range(50):
        offset = 1000 + secrets.randbelow(80) * 100
        if not any(rack.port_open(p + offset) for p in BASE_PORTS):
            return offset
    raise RuntimeError("no free port offset")


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # Its own process group with SIGINT restored, as a terminal runs `make run`.
    return subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=rack.ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def _ours(run_dir: Path, pids_before: set[int]) -> list[str]:
    """Processes started by the run: new since the start and tied to its folder or ports."""
    left = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.info["pid"] in pids_before or proc.info["pid"] == os.getpid():
            continue
        cmd = " ".join(proc.info["cmdline"] or [])
        if str(run_dir) in cmd or "radio24" in cmd or "agent/main.py" in cmd:
            left.append(f"{proc.info['pid']}: {cmd[:120]}")
    return left


def test_run_starts_the_station_refuses_a_second_and_stops_clean_on_ctrl_c(
    tmp_path: Path,
) -> None:
    offset = _free_offset()
    run_dir = world_traversable_dir("radio24-run-") / "run"
    env = {
        k: v for k, v in os.environ.items()
        if k not in {"DATABASE_URL", "REDIS_URL", "LIVEKIT_URL", "OPENAI_API_KEY"}
    }  # fmt: skip
    env |= {"RADIO_RUN_DIR": str(run_dir), "RADIO_PORT_OFFSET": str(offset)}
    pids_before = {p.pid for p in psutil.process_iter()}
    log = tmp_path / "run.log"
    proc = _start(env, log)
    try:
        deadline = time.monotonic() + 120
        while "is on air" not in log.read_text(errors="replace"):
            assert proc.poll() is None, f"run exited early:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no banner in 120 s:\n{log.read_text()[-3000:]}"
            time.sleep(0.5)
        text = log.read_text()
        assert "offline mode" in text
        assert f"http://127.0.0.1:{8000 + offset}/" in text
        assert httpx.get(f"http://127.0.0.1:{8000 + offset}/healthz").json() == {"status": "ok"}
        assert rack.port_open(7880 + offset)

        second = subprocess.run(
            [sys.executable, "-m", "radio24.cli", "run"], cwd=rack.ROOT, env=env,
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert second.returncode == 1
        assert "already running" in second.stdout

        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    deadline = time.monotonic() + 10
    while (left := _ours(run_dir, pids_before)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], f"processes left behind after Ctrl-C: {left}"
    assert not any(rack.port_open(p + offset) for p in BASE_PORTS)
    assert not (run_dir / "pgdata" / "postmaster.pid").exists()
    shutil.rmtree(run_dir.parent, ignore_errors=True)
