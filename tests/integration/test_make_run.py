"""`make run` brings the whole station up, restarts a part that dies (saying so on a console
that otherwise shows only the banner, state changes and warnings), refuses a second copy, and
leaves no process behind on Ctrl-C — run beside `make run` with a port offset."""

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

from radio24 import rack, station
from tests.conftest import world_traversable_dir

pytestmark = pytest.mark.integration

BASE_PORTS = [7880, 7881, 55432, 56379, 8000, 8081, 8082]


def _free_offset() -> int:
    for _ in range(50):
        offset = 1000 + secrets.randbelow(80) * 100
        if not any(rack.port_open(p + offset) for p in BASE_PORTS):
            return offset
    raise RuntimeError("no free port offset")


async def _hear_the_host(api: str, within: float) -> float:
    """Join as a listener through the API, as the page does; return the loudest RMS heard."""
    import asyncio

    import numpy as np
    from livekit import rtc

    async with httpx.AsyncClient(base_url=api, timeout=10) as client:
        session = (await client.post("/api/session", json={"nickname": "tester"})).json()
        auth = {"Authorization": f"Bearer {session['token']}"}
        grant = (await client.post("/api/livekit/token", headers=auth)).json()
    room = rtc.Room()
    loudest = 0.0
    heard = asyncio.Event()

    async def listen(track: rtc.Track) -> None:
        nonlocal loudest
        async for event in rtc.AudioStream(track, sample_rate=48000, num_channels=1):
            pcm = np.frombuffer(event.frame.data, dtype=np.int16).astype(np.float64)
            loudest = max(loudest, float(np.sqrt(np.mean(pcm**2))) if pcm.size else 0.0)
            if loudest > 300:
                heard.set()

    tasks: list[asyncio.Task[None]] = []
    room.on("track_subscribed", lambda track, *_: tasks.append(asyncio.create_task(listen(track))))
    await room.connect(grant["url"], grant["token"])
    try:
        await asyncio.wait_for(heard.wait(), within)
    except TimeoutError:
        pass
    finally:
        for task in tasks:
            task.cancel()
        await room.disconnect()
    return loudest


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    # Its own process group with SIGINT restored, as a terminal runs `make run`.
    return subprocess.Popen(
        ["make", "--no-print-directory", "run"],
        cwd=rack.ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip


def _ours(run_dir: Path) -> list[str]:
    """Processes of this run: every part inherits RADIO_RUN_DIR, even daemons that left the
    process group (other test sessions on the machine run their own workers)."""
    left = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            mine = proc.environ().get("RADIO_RUN_DIR") == str(run_dir)
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        if mine:
            left.append(f"{proc.info['pid']}: {' '.join(proc.info['cmdline'] or [])[:120]}")
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
        # The keeper dispatches the host; a listener who joins hears it speak (offline voice).
        import asyncio

        loudest = asyncio.run(_hear_the_host(f"http://127.0.0.1:{8000 + offset}", 30))
        assert loudest > 300, f"a listener heard only silence (RMS {loudest:.0f})"

        # The console: no LiveKit INFO line (one per API call), no SDP, no host DEBUG.
        console = log.read_text(errors="replace")
        for noise in ("\tINFO\t", "a=rtpmap", "v=0\r", '"level": "DEBUG"', '"level": "INFO"'):
            assert noise not in console, f"console shows {noise!r}:\n{console[-2000:]}"
        logs = run_dir / "logs"
        for part in ("livekit", "postgres", "redis", "api", "host-1", "host-2"):
            assert (logs / f"{part}.log").stat().st_size > 0, f"no log for {part}"

        # A part that dies is restarted, and the console says so.
        supervisor = station.control(run_dir).supervisor
        worker = supervisor.getProcessInfo("host-2")["pid"]
        os.kill(worker, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while "host-2 is up again" not in log.read_text(errors="replace"):
            assert time.monotonic() < deadline, f"host-2 not restarted:\n{log.read_text()[-2000:]}"
            time.sleep(0.5)
        assert f"host-2 died (pid {worker}); restarting it" in log.read_text()

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
    while (left := _ours(run_dir)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert left == [], f"processes left behind after Ctrl-C: {left}"
    assert not any(rack.port_open(p + offset) for p in BASE_PORTS)
    assert not (run_dir / "pgdata" / "postmaster.pid").exists()
    shutil.rmtree(run_dir.parent, ignore_errors=True)
