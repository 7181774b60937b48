"""The fault suite's station: one whole station started as `make run` starts it (`radio24 run`,
under supervisord, on ports offset away from `make run`'s and from the other tests'), offline
voice, and a listener that joins through the API and records when the host was heard, per track.

Faults are applied to that one station in sequence (tests/faults/test_faults.py); the station is
stopped with Ctrl-C at the end and checked to leave nothing behind.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import itertools
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import psycopg
import pytest
from livekit import rtc

from radio24 import rack, station
from tests.conftest import world_traversable_dir

RATE = 48000
LOUD = 150.0  # RMS of a 10 ms frame (int16) above which the host is heard
BASE_PORTS = [7880, 7881, 55432, 56379, 8000, 8081, 8082]
# Log messages that mark a takeover's steps, from the keeper's removal to the new host's first cue.
TAKEOVER_STEPS = ("host without a heartbeat removed", "host dispatched", "received job request",
                  "no warmed process", "registered worker", "host joined",
                  "host session started", '"on air"')  # fmt: skip
# What each fault did to the listener, printed at the end of the run (and kept as JSON).
RESULTS: list[dict[str, object]] = []


def pytest_terminal_summary(terminalreporter: Any) -> None:
    rows = [r for r in RESULTS if "target_s" in r]
    if not rows:
        return
    terminalreporter.section("faults: the longest silence a listener heard")
    for r in rows:
        verdict = "ok" if r["ok"] else "OVER TARGET"
        terminalreporter.write_line(
            f"{r['fault']:<38} {r['longest_silence_s']!s:>6} s  (target {r['target_s']} s)"
            f"  {verdict}  {r['note']}"
        )


def _free_offset() -> int:
    """Negative offsets: away from `make run` (0) and from test_make_run's (+1000..+8900)."""
    for _ in range(50):
        offset = -1000 - secrets.randbelow(40) * 100
        if not any(rack.port_open(p + offset) for p in BASE_PORTS):
            return offset
    raise RuntimeError("no free port offset")


@dataclass
class FaultStation:
    run_dir: Path
    offset: int
    prompts: Path
    console_log: Path
    proc: subprocess.Popen[bytes] | None = None

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{8000 + self.offset}"

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{55432 + self.offset}/radio24"

    @property
    def livekit_port(self) -> int:
        return 7880 + self.offset

    def env(self) -> dict[str, str]:
        env = {
            k: v for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "REDIS_URL", "LIVEKIT_URL", "OPENAI_API_KEY",
                         "OPENAI_BASE_URL", "RADIO_PG_FAST"}
        }  # fmt: skip
        return env | {
            "RADIO_RUN_DIR": str(self.run_dir),
            "RADIO_PORT_OFFSET": str(self.offset),
            "RADIO_PROMPTS_DIR": str(self.prompts),
            # One listener sends a post per fault; the limits are not what is tested here.
            "API_POST_RATE_LIMIT": "100",
            "API_SESSION_RATE_LIMIT": "100",
        }

    def start(self) -> None:
        # `make run` is `make setup` (done: this test runs inside it) and then `radio24 run`;
        # its own process group with SIGINT restored, as a terminal runs it.
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "radio24.cli", "run"],
            cwd=rack.ROOT, env=self.env(), stdout=self.console_log.open("wb"),
            stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )  # fmt: skip

    def console(self) -> str:
        return self.console_log.read_text(errors="replace")

    def wait_on_air(self, within: float = 150) -> None:
        deadline = time.monotonic() + within
        while "is on air" not in self.console():
            assert self.proc is not None and self.proc.poll() is None, self.console()[-3000:]
            assert time.monotonic() < deadline, (
                f"no banner in {within} s:\n{self.console()[-3000:]}"
            )
            time.sleep(0.5)

    def supervisor(self) -> Any:
        return station.control(self.run_dir).supervisor

    def pid(self, program: str, within: float = 30) -> int:
        """The pid of a program once supervisord has it RUNNING (up for its startsecs)."""
        deadline = time.monotonic() + within
        while (info := self.supervisor().getProcessInfo(program))["statename"] != "RUNNING":
            assert time.monotonic() < deadline, f"{program} is not running: {info}"
            time.sleep(0.2)
        return int(info["pid"])

    def wait_running(self, program: str, within: float = 30, *, not_pid: int | None = None) -> int:
        deadline = time.monotonic() + within
        while True:
            info = self.supervisor().getProcessInfo(program)
            if info["statename"] in ("RUNNING", "STARTING") and info["pid"] not in (0, not_pid):
                return int(info["pid"])
            assert time.monotonic() < deadline, f"{program} not restarted: {info}"
            time.sleep(0.1)

    def host_job(self) -> tuple[str, int]:
        """(worker program, pid) of the process running the host's job: the worker's descendant
        connected to LiveKit (the warm idle process is not)."""
        found: list[tuple[float, str, int]] = []
        for program in ("host-1", "host-2"):
            worker = psutil.Process(self.pid(program))
            for child in worker.children(recursive=True):
                with contextlib.suppress(psutil.Error):
                    if any(c.raddr and c.raddr.port == self.livekit_port
                           and c.status == psutil.CONN_ESTABLISHED
                           for c in child.net_connections("tcp")):  # fmt: skip
                        found.append((child.create_time(), program, child.pid))
        assert found, "no host job process found"
        _, program, pid = max(found)
        return program, pid

    def timeline(self, since: float) -> str:
        """The takeover's steps in the run's logs (keeper, workers, jobs), in seconds after
        `since` (wall clock), for 30 s: printed with a failed silence check (CI keeps no logs)."""
        steps = []
        for log in sorted((self.run_dir / "logs").glob("*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if not any(m in line for m in TAKEOVER_STEPS):
                    continue
                with contextlib.suppress(ValueError, KeyError, TypeError):
                    entry = json.loads(line)
                    stamp = entry.get("timestamp") or entry["time"].replace(",", ".") + "+00:00"
                    at = datetime.fromisoformat(stamp).timestamp() - since
                    if -1 <= at <= 30:
                        steps.append((at, f"{at:+7.2f} s  {log.stem}: {entry['message']}"))
        return "\n".join(text for _, text in sorted(steps)) or "(no takeover steps logged)"

    def stop(self) -> None:
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=45)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise AssertionError("the station did not stop on Ctrl-C") from None

    def leftovers(self) -> list[str]:
        left = []
        for proc in psutil.process_iter(["pid", "cmdline"]):
            try:
                mine = proc.environ().get("RADIO_RUN_DIR") == str(self.run_dir)
            except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
                continue
            if mine:
                left.append(f"{proc.info['pid']}: {' '.join(proc.info['cmdline'] or [])[:120]}")
        return left


# --- the listener ----------------------------------------------------------------------------


@dataclass
class Heard:
    """When the host was heard: loud 10 ms frames, by the host track that carried them."""

    loud: list[tuple[float, str, float]] = field(default_factory=list)  # (time, track sid, rms)
    marks: list[tuple[float, str]] = field(default_factory=list)  # (when, fault applied)

    def during(self, at: float) -> str:
        """The fault last applied before `at`."""
        return next((label for t, label in reversed(self.marks) if t <= at), "before any fault")

    def longest_silence(self, start: float, end: float) -> tuple[float, float]:
        """(longest gap between loud frames that ends after `start`, when it began)."""
        times = [t for t, _, _ in self.loud if t <= end]
        before = [t for t in times if t < start]
        marks = ([before[-1]] if before else [start]) + [t for t in times if t >= start] + [end]
        gaps = [(b - a, a) for a, b in itertools.pairwise(marks)]
        return max(gaps) if gaps else (end - start, start)

    def spans(self) -> dict[str, tuple[str, float, float]]:
        """For each host track heard: (the fault before it was first heard, seconds after that
        fault it was first and last heard)."""
        found: dict[str, list[float]] = {}
        for t, track, _ in self.loud:
            found.setdefault(track, [t, t])[1] = t
        out = {}
        for track, (first, last) in found.items():
            mark = next((m for m in reversed(self.marks) if m[0] <= first), (first, "start"))
            out[track] = (mark[1], round(first - mark[0], 2), round(last - mark[0], 2))
        return out

    def first_loud_after(self, start: float) -> float | None:
        return next((t for t, _, _ in self.loud if t >= start), None)

    def overlaps(self, window: float = 0.25) -> list[tuple[float, str, str]]:
        """Moments two host tracks carried different sound within `window` s of each other.

        The rtc SDK can go on feeding a replaced participant's old stream with the new host's
        frames (the same samples, so the same level): a frame whose exact level another track
        also carried within half a second is that one voice twice, not a second host."""
        by_track: dict[str, list[tuple[float, float]]] = {}
        for t, track, level in self.loud:
            by_track.setdefault(track, []).append((t, level))
        found = []
        for t, track, level in self.loud:
            for other, frames in by_track.items():
                if other == track:
                    continue
                times = [ft for ft, _ in frames]
                i = bisect.bisect_left(times, t - 0.5)
                near = frames[i : bisect.bisect_right(times, t + 0.5)]
                if not any(abs(ft - t) < window for ft, _ in near):
                    continue
                if any(fl == level for _, fl in near):
                    continue  # the same frame on both: one voice
                found.append((t, track, other))
        return found


class Ear:
    """A listener as the page is one: a session and a LiveKit token from the API, then a real
    rtc participant that subscribes to the host and records every loud frame."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.heard = Heard()
        self.room: rtc.Room | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.token: str | None = None

    async def session(self, client: httpx.AsyncClient) -> dict[str, str]:
        if self.token is None:
            made = await client.post("/api/session", json={"nickname": "fault-ear"})
            made.raise_for_status()
            self.token = made.json()["token"]
        return {"Authorization": f"Bearer {self.token}"}

    async def join(self) -> None:
        async with httpx.AsyncClient(base_url=self.api, timeout=10) as client:
            auth = await self.session(client)
            grant = (await client.post("/api/livekit/token", headers=auth)).json()
        room = rtc.Room()

        @room.on("track_subscribed")
        def _on_track(track: rtc.Track, _pub: Any, who: rtc.RemoteParticipant) -> None:
            if who.identity == "host" and track.kind == rtc.TrackKind.KIND_AUDIO:
                task = asyncio.ensure_future(self._record(track, track.sid))
                self._tasks.add(task)

        await room.connect(grant["url"], grant["token"])
        self.room = room

    async def _record(self, track: rtc.Track, sid: str) -> None:
        async for ev in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
            pcm = np.frombuffer(ev.frame.data, dtype=np.int16).astype(np.float64)
            level = float(np.sqrt(np.mean(pcm**2))) if pcm.size else 0.0
            if level > LOUD:
                self.heard.loud.append((time.monotonic(), sid, level))

    def connected(self) -> bool:
        return self.room is not None and self.room.isconnected()

    async def rejoin(self, within: float) -> None:
        """Join again (a fresh token from the API), retrying until LiveKit takes us."""
        await self.leave()
        deadline = time.monotonic() + within
        while True:
            try:
                await self.join()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.5)

    async def hears_host(self, within: float, since: float | None = None) -> float | None:
        since = time.monotonic() if since is None else since
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            at = self.heard.first_loud_after(since)
            if at is not None:
                return at
            await asyncio.sleep(0.05)
        return None

    async def leave(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self.room is not None:
            with contextlib.suppress(Exception):
                await self.room.disconnect()
            self.room = None


# --- posts -----------------------------------------------------------------------------------


async def send_post(ear: Ear, text: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=ear.api, timeout=10) as client:
        auth = await ear.session(client)
        return await client.post("/api/posts", json={"text": text}, headers=auth)


def aired_count(database_url: str, text: str) -> tuple[str | None, int]:
    """(the post's status, how many host utterances carry its text)."""
    with psycopg.connect(database_url, connect_timeout=3) as conn:
        row = conn.execute("SELECT status FROM posts WHERE text = %s", (text,)).fetchone()
        (count,) = conn.execute(
            "SELECT count(*) FROM utterances WHERE kind = 'host' AND position(%s in text) > 0",
            (text,),
        ).fetchone()  # type: ignore[misc]
    return (row[0] if row else None), int(count)


# --- fixtures --------------------------------------------------------------------------------


def _posts_first(folder: Path) -> None:
    """Every segment reads posts first, so a post airs within a segment or two."""
    for segment in (folder / "segments").glob("*.md"):
        text = segment.read_text()
        segment.write_text(re.sub(r"(?m)^posts: \w+$", "posts: first", text))


@pytest.fixture(scope="module")
def fault_station() -> Iterator[FaultStation]:
    base = world_traversable_dir("radio24-faults-")
    prompts = base / "prompts"
    shutil.copytree(rack.ROOT / "prompts", prompts)
    _posts_first(prompts)
    logs = rack.ROOT / "test-artifacts" / "faults"
    logs.mkdir(parents=True, exist_ok=True)
    st = FaultStation(base / "run", _free_offset(), prompts, logs / "console.log")
    st.start()
    try:
        st.wait_on_air()
        yield st
    finally:
        try:
            st.stop()
        finally:
            deadline = time.monotonic() + 10
            while (left := st.leftovers()) and time.monotonic() < deadline:
                time.sleep(0.2)
            if (st.run_dir / "logs").exists():
                shutil.copytree(st.run_dir / "logs", logs / "run-logs", dirs_exist_ok=True)
            shutil.rmtree(base, ignore_errors=True)
        assert left == [], f"processes left behind after Ctrl-C: {left}"


@pytest.fixture(scope="module")
async def ear(fault_station: FaultStation) -> AsyncIterator[Ear]:
    listener = Ear(fault_station.api)
    await listener.join()
    try:
        yield listener
    finally:
        await listener.leave()
