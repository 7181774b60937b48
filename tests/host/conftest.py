"""Helpers for the host's integration tests: the worker as a real subprocess, the keeper that
dispatches it, and listeners as real LiveKit participants that hear, call and publish.

Each test gets its own room and agent name, so a worker from another test can never take its
dispatch; the worker runs `python agent/main.py start` with the environment pointing at the
session's LiveKit, Postgres and Redis (and at the fake Realtime server in realtime mode), logs to
`test-artifacts/<test>/worker.log`, and is stopped (and checked gone) when the test ends.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import redis.asyncio as aioredis
from livekit import api as lkapi
from livekit import rtc
from pydantic import SecretStr

from api.keeper import run_keeper
from radio24 import rack
from tests.conftest import LiveKit
from tests.fakes.realtime_server import FakeRealtimeServer

ROOT = rack.ROOT
RATE = 48000
FRAME = RATE // 100  # 10 ms


def rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0


# --- the worker ------------------------------------------------------------------------------


def _group_members(pgid: int) -> list[int]:
    """Live processes in a process group (zombies excluded)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            found.append(int(entry.name))
    return found


@dataclass
class Worker:
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    history: list[int] = field(default_factory=list)

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "agent" / "main.py"), "start"],
                env=self.env,
                cwd=str(ROOT),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.history.append(self.proc.pid)

    def kill(self) -> None:
        """SIGKILL the worker and every process of its group, as a crash or OOM would."""
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 40) -> None:
        """SIGTERM, as an orchestrator stops it; SIGKILL the group only if it hangs."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            raise AssertionError("the worker did not stop on SIGTERM") from None

    def leftovers(self, wait: float = 10) -> list[int]:
        """Processes of the worker's groups still alive after it exited (waits a little)."""
        deadline = time.monotonic() + wait
        while True:
            alive = [pid for pgid in self.history for pid in _group_members(pgid)]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.2)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Station:
    livekit: LiveKit
    database_url: str
    redis_url: str
    room: str
    agent_name: str
    prompts: Path
    artifacts: Path
    fake: FakeRealtimeServer | None
    workers: list[Worker] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)  # host settings a test sets
    _keeper: asyncio.Task[None] | None = None
    _keeper_stop: asyncio.Event | None = None

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "LIVEKIT_", "RADIO_", "DATABASE_", "REDIS_"))
        }
        env.update(
            LIVEKIT_URL=self.livekit.url,
            LIVEKIT_API_KEY=self.livekit.api_key,
            LIVEKIT_API_SECRET=self.livekit.api_secret,
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            RADIO_ROOM=self.room,
            RADIO_PROMPTS_DIR=str(self.prompts),
            AGENT_NAME=self.agent_name,
            HOST_HEALTH_PORT=str(rack.free_port()),
            PYTHONUNBUFFERED="1",
            OPENAI_API_KEY="",
        )
        if self.fake is not None:
            env.update(OPENAI_API_KEY="sk-fake", OPENAI_BASE_URL=self.fake.base_url)
        env.update(self.extra_env)
        return env

    def start_worker(self) -> Worker:
        worker = Worker(self.env(), self.artifacts / f"worker{len(self.workers)}.log")
        worker.start()
        self.workers.append(worker)
        return worker

    async def start_keeper(self) -> None:
        settings = SimpleNamespace(
            livekit_url=self.livekit.url,
            livekit_api_key=self.livekit.api_key,
            livekit_api_secret=SecretStr(self.livekit.api_secret),
            radio_room=self.room,
            agent_name=self.agent_name,
            host_identity="host",
        )
        self._keeper_stop = asyncio.Event()
        redis = aioredis.from_url(self.redis_url)

        async def keep() -> None:
            try:
                await run_keeper(settings, redis, self._keeper_stop)
            finally:
                await redis.aclose()

        self._keeper = asyncio.create_task(keep())

    async def stop_keeper(self) -> None:
        if self._keeper is not None and self._keeper_stop is not None:
            self._keeper_stop.set()
            await asyncio.wait_for(self._keeper, 15)
            self._keeper = None

    def token(self, identity: str, *, publish: bool = False) -> str:
        grants = lkapi.VideoGrants(
            room_join=True,
            room=self.room,
            can_subscribe=True,
            can_publish=publish,
            can_publish_data=True,
        )
        return (
            lkapi.AccessToken(self.livekit.api_key, self.livekit.api_secret)
            .with_identity(identity)
            .with_name(f"Nick {identity}")  # differs from the identity: pages show the name
            .with_grants(grants)
            .to_jwt()
        )

    async def listener(self, identity: str | None = None) -> Listener:
        listener = Listener(self, identity or f"listener-{secrets.token_hex(3)}")
        await listener.join()
        return listener

    def api(self) -> lkapi.LiveKitAPI:
        return lkapi.LiveKitAPI(
            self.livekit.http_url, self.livekit.api_key, self.livekit.api_secret
        )


# --- listeners -------------------------------------------------------------------------------


class Listener:
    """A LiveKit participant that hears the host (every 10 ms frame's level, timestamped)."""

    def __init__(self, station: Station, identity: str) -> None:
        self.station = station
        self.identity = identity
        self.room = rtc.Room()
        self.levels: list[tuple[float, float]] = []  # (monotonic time, rms)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._source: rtc.AudioSource | None = None
        self.publication: rtc.LocalTrackPublication | None = None
        self.captions: list[str] = []

    async def join(self) -> None:
        @self.room.on("track_subscribed")
        def _on_track(track: rtc.Track, _pub: Any, participant: rtc.RemoteParticipant) -> None:
            if participant.identity == "host" and track.kind == rtc.TrackKind.KIND_AUDIO:
                task = asyncio.ensure_future(self._listen(track))
                self._tasks.add(task)

        def _on_caption(reader: rtc.TextStreamReader, _who: str) -> None:
            async def read() -> None:
                self.captions.append(await reader.read_all())

            task = asyncio.ensure_future(read())
            self._tasks.add(task)

        self.room.register_text_stream_handler("lk.transcription", _on_caption)
        await self.room.connect(self.station.livekit.url, self.station.token(self.identity))

    async def _listen(self, track: rtc.Track) -> None:
        async for ev in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
            pcm = np.frombuffer(ev.frame.data, dtype=np.int16)
            self.levels.append((time.monotonic(), rms(pcm)))

    async def hears_host(self, within: float, *, since: float | None = None, level: float = 300):
        """The first moment after `since` the host's audio was louder than `level`."""
        since = time.monotonic() if since is None else since
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            for at, value in self.levels:
                if at >= since and value > level:
                    return at
            await asyncio.sleep(0.05)
        return None

    def host_attribute(self, name: str) -> str | None:
        host = self.room.remote_participants.get("host")
        return host.attributes.get(name) if host else None

    async def wait_for_host(self, within: float) -> None:
        deadline = time.monotonic() + within
        while "host" not in self.room.remote_participants:
            if time.monotonic() > deadline:
                raise TimeoutError("the host never joined")
            await asyncio.sleep(0.1)

    async def rpc(self, method: str, payload: str = "") -> str:
        return await self.room.local_participant.perform_rpc(
            destination_identity="host", method=method, payload=payload, response_timeout=15
        )

    async def publish_microphone(self) -> rtc.LocalTrackPublication:
        self._source = rtc.AudioSource(RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", self._source)
        self.publication = await self.room.local_participant.publish_track(
            track, rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        )
        return self.publication

    async def speak(self, pcm: np.ndarray) -> None:
        """Send 48 kHz mono PCM16 into the published microphone, in real time."""
        assert self._source is not None
        for i in range(0, len(pcm) - FRAME + 1, FRAME):
            chunk = pcm[i : i + FRAME]
            await self._source.capture_frame(rtc.AudioFrame(chunk.tobytes(), RATE, 1, FRAME))

    async def unpublish(self) -> None:
        if self.publication is not None:
            with contextlib.suppress(Exception):
                await self.room.local_participant.unpublish_track(self.publication.sid)
            self.publication = None

    async def leave(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.room.disconnect()


def speech_pcm(text: str = "Hello radio twenty four. I would like to talk about the weather "
               "this morning, it was lovely.") -> np.ndarray:  # fmt: skip
    """Real speech (espeak-ng) at 48 kHz, with half a second of silence either side."""
    from agent.voice.offline_engines import synthesize_pcm

    pcm, rate = synthesize_pcm(text, "en")
    t_out = np.arange(round(len(pcm) * RATE / rate)) * rate / RATE
    voice = np.interp(t_out, np.arange(len(pcm)), pcm.astype(np.float64)).astype(np.int16)
    pad = np.zeros(RATE // 2, dtype=np.int16)
    return np.concatenate([pad, voice, pad])


def silence_pcm(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE), dtype=np.int16)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    """A copy of the station's prompts, so a test may edit it: a talk-only station (these
    tests tell the host's voice by its level, which music and a bed would hide); the station
    with its music is tests/host/test_sound.py's."""
    folder = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", folder, ignore=shutil.ignore_patterns("media"))
    station = folder / "station.yaml"
    station.write_text(re.sub(r"(?m)^media:.*$", "", station.read_text()))
    return folder


@pytest.fixture
def fake_realtime() -> Iterator[FakeRealtimeServer]:
    with FakeRealtimeServer(pace=1.0, reply_seconds=1.5) as fake:
        yield fake


def _forget_old_logs(artifacts: Path) -> None:
    for old in artifacts.glob("worker*.log"):
        old.unlink()


async def _station(
    livekit_server: LiveKit,
    database_url: str,
    redis_url: str,
    prompts_dir: Path,
    artifacts: Path,
    fake: FakeRealtimeServer | None,
) -> AsyncIterator[Station]:
    tag = secrets.token_hex(4)
    _forget_old_logs(artifacts)
    station = Station(
        livekit=livekit_server,
        database_url=database_url,
        redis_url=redis_url,
        room=f"radio-{tag}",
        agent_name=f"radio-host-{tag}",
        prompts=prompts_dir,
        artifacts=artifacts,
        fake=fake,
    )
    try:
        yield station
    finally:
        await station.stop_keeper()
        for worker in station.workers:
            with contextlib.suppress(AssertionError):
                worker.stop()
            for pid in worker.leftovers(wait=2):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        api = station.api()
        try:
            with contextlib.suppress(Exception):
                await api.room.delete_room(lkapi.DeleteRoomRequest(room=station.room))
        finally:
            await api.aclose()


@pytest.fixture
async def offline_station(
    livekit_server: LiveKit, database_url: str, redis_url: str, prompts_dir: Path, artifacts: Path
) -> AsyncIterator[Station]:
    async for station in _station(
        livekit_server, database_url, redis_url, prompts_dir, artifacts, None
    ):
        yield station


@pytest.fixture
async def realtime_station(
    livekit_server: LiveKit,
    database_url: str,
    redis_url: str,
    prompts_dir: Path,
    artifacts: Path,
    fake_realtime: FakeRealtimeServer,
) -> AsyncIterator[Station]:
    async for station in _station(
        livekit_server, database_url, redis_url, prompts_dir, artifacts, fake_realtime
    ):
        yield station
