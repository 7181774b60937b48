"""A broadcast day in twenty minutes: the whole station, soaked, measured from outside.

`python -m bench.day` (`make soak`) starts LiveKit, Postgres and Redis (radio24.rack), the API
(uvicorn, with its keeper) and the host worker as real processes, and the fake Realtime server
(tests/fakes) in this process. The station clock runs `--speed` times fast (RADIO_CLOCK_SPEED,
default 72: a day in 20 minutes) while audio runs in real time. The running sheet
(bench/day_script.py) brings listeners in and out (nobody at all for a tenth of the day), posts
through the API, calls in with push-to-talk (speech, silent presses, presses held past the
maximum), edits a segment file twice (once broken) and breaks the model three times (an outage,
a stall, a fatal error).

Measured from outside: every process's RSS, open fds and threads from /proc; what the listener
"ears" heard (10 ms levels of the host's track, and of a caller's microphone while on the floor;
the host track's receive counters); the as-aired log, posts and model usage from Postgres;
every reply the fake model gave. Writes bench/results/day.json and day.png and prints
a table (bench/day_report.py judges the figures against the issue's targets).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import pickle
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psycopg
import redis.asyncio as aioredis
from livekit import rtc

from bench import day_report
from bench.day_script import DayPlan, Event, build
from contract.keys import Keys
from radio24 import rack
from tests.fakes.realtime_server import FakeRealtimeServer, ReplyContext

ROOT = rack.ROOT
RESULTS = ROOT / "bench" / "results"
RATE = 48000
FRAME = RATE // 100
LOUD = 300.0  # int16 RMS above which a 10 ms frame counts as heard (tests/host use the same)
SAMPLE_SECONDS = 1.0
LOOP_LAG = 0.05
HOST = "host"  # the host's identity in the room (HOST_IDENTITY's default)
# The station clock reads the day's start this long after the worker starts (the host is on
# air after ~25-35 s on a loaded machine here); the script starts then, or when it is on air.
CLOCK_LEAD_SECONDS = 40.0
EDIT_MARK = "SOAK-EDIT"
UTTERANCE_FIELDS = ("id", "kind", "speaker", "text", "segment", "mode", "started_at", "ended_at",
                    "interrupted", "file")  # fmt: skip
USAGE_FIELDS = ("hour", "model", "audio_in", "audio_out", "text_in", "text_out")

log = logging.getLogger("bench.day")


def _say(msg: str) -> None:
    print(f"[day {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- processes, measured through /proc -------------------------------------------------------


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _proc(pid: int) -> dict[str, float] | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        fds = len(os.listdir(f"/proc/{pid}/fd"))
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    if fields.get("State", "").strip().startswith("Z"):
        return None
    try:  # utime + stime (fields 14, 15; the name in field 2 may hold spaces)
        ticks = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = (int(ticks[11]) + int(ticks[12])) / CLOCK_TICKS
    except (OSError, IndexError, ValueError):
        cpu = 0.0
    return {
        "cpu_s": cpu,
        "rss_kb": int(fields["VmRSS"].split()[0]) if "VmRSS" in fields else 0,
        "fds": fds,
        "threads": int(fields.get("Threads", "0")),
    }


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        with contextlib.suppress(OSError):
            found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _cmdline(pid: int) -> str:
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    return ""


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in _children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def _pool(worker: int) -> list[int]:
    """The worker's job processes, busy or warm. livekit-agents starts them through a
    multiprocessing forkserver (a child of the worker), so they are the forkserver's children:
    the worker's grandchildren, with the forkserver's command line."""
    forkservers = [c for c in _children(worker) if "multiprocessing.forkserver" in _cmdline(c)]
    return [p for f in forkservers for p in _children(f) if _proc(p) is not None]


class JobLog:
    """Which pool process runs the host's job, from the worker log read as it grows: the host
    logs "host joined" (and livekit-agents every line) with the process's "pid"."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._rest = b""
        self.joined: list[tuple[float, int, str]] = []  # (wall time, pid, job_id)
        self.left: set[int] = set()

    def read(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        self._offset += len(chunk)
        lines = (self._rest + chunk).split(b"\n")
        self._rest = lines.pop()
        for raw in lines:
            if b'"host joined"' not in raw and b'"process exiting"' not in raw:
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                continue
            pid = int(line.get("pid", 0))
            if line.get("message") == "host joined":
                at = datetime.fromisoformat(line["timestamp"]).timestamp()
                self.joined.append((at, pid, str(line.get("job_id", ""))))
            elif line.get("message") == "process exiting":
                self.left.add(pid)

    def job_pid(self, alive: list[int]) -> int | None:
        """The newest process that joined as host and still runs."""
        for _, pid, _job in reversed(self.joined):
            if pid in alive and pid not in self.left:
                return pid
        return None


# --- the listener ----------------------------------------------------------------------------


async def _bounded(aw: Any, seconds: float) -> bool:
    """Await `aw` for at most `seconds`; False if it did not finish (it is then cancelled and
    left behind, never waited for: a hung LiveKit call must not hang the day's end)."""
    task = asyncio.ensure_future(aw)
    done, _ = await asyncio.wait({task}, timeout=seconds)
    if not done:
        task.cancel()
        log.warning("gave up waiting", extra={"seconds": seconds})
        return False
    if not task.cancelled() and task.exception() is not None:
        log.warning("failed while bounded", exc_info=task.exception())
    return True


def _rms(pcm: np.ndarray) -> float:
    return float(np.sqrt(np.mean(pcm.astype(np.float64) ** 2))) if pcm.size else 0.0


class Ear:
    """A listener in the room, joined with a token from the API.

    It subscribes to nothing by itself (auto_subscribe off): a real page decodes the host's one
    track, and this process must not decode every caller's microphone at 100 frames/s per track
    (a full day's soak saturated the machine that way and starved its own listener). The
    recording ear subscribes to the host's track, and to a caller's microphone only while the
    day has that caller on the floor (`follow`): what a listener of the station hears. The
    other ears are presence only (listeners in the room, callers who publish)."""

    def __init__(self, name: str, url: str, token: str, *, record: bool) -> None:
        self.name, self.url, self.token = name, url, token
        self.record = record
        self.room: rtc.Room | None = None
        self.joining = False
        self.levels: list[tuple[float, float]] = []  # the host's track
        self.caller_levels: list[tuple[float, float]] = []  # a followed caller's microphone
        # The host track's receive counters, once a second: were packets arriving in a silence?
        self.host_stats: list[tuple[float, dict[str, float]]] = []
        self.present: list[list[float]] = []  # [joined, left] in monotonic time
        self.following: set[str] = set()
        self._host_track: rtc.RemoteAudioTrack | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._streams: dict[str, rtc.AudioStream] = {}
        self._source: rtc.AudioSource | None = None
        self._pub: rtc.LocalTrackPublication | None = None

    def _wanted(self, pub: rtc.RemoteTrackPublication, who: rtc.RemoteParticipant) -> bool:
        return (
            self.record
            and pub.kind == rtc.TrackKind.KIND_AUDIO
            and (who.identity == HOST or who.identity in self.following)
        )

    async def join(self) -> None:
        room = self.room = rtc.Room()

        @room.on("track_published")
        def _published(pub: rtc.RemoteTrackPublication, who: rtc.RemoteParticipant) -> None:
            if self._wanted(pub, who):
                pub.set_subscribed(True)

        @room.on("track_subscribed")
        def _track(track: rtc.Track, _pub: Any, who: rtc.RemoteParticipant) -> None:
            if not self.record or track.kind != rtc.TrackKind.KIND_AUDIO:
                return
            host = who.identity == HOST
            if host and isinstance(track, rtc.RemoteAudioTrack):
                self._host_track = track
            stream = rtc.AudioStream(track, sample_rate=RATE, num_channels=1)
            self._streams[track.sid] = stream
            task = asyncio.ensure_future(
                self._listen(stream, self.levels if host else self.caller_levels)
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        @room.on("track_unsubscribed")
        def _gone(track: rtc.Track, _pub: Any, _who: rtc.RemoteParticipant) -> None:
            # The stream must be closed, not left to end by itself: it does not end when its
            # track goes, and the SFU reuses the transceiver for the caller's next track, so a
            # stale stream hears every later caller too (after 20 turns this process resampled
            # and measured 20 copies of each call, 2,000 frames/s, and starved its own ear).
            stream = self._streams.pop(track.sid, None)
            if stream is not None:
                task = asyncio.ensure_future(stream.aclose())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

        # Not bounded: cancelling a connect makes the rtc FFI panic (it waits for the Python side
        # after its connect callback) and that ends the process; the SDK retries and times out.
        try:
            await room.connect(self.url, self.token, rtc.RoomOptions(auto_subscribe=False))
        except Exception:
            self.room = None
            raise
        self.present.append([time.monotonic(), float("nan")])
        for who in room.remote_participants.values():  # already there: no track_published
            for pub in who.track_publications.values():
                if isinstance(pub, rtc.RemoteTrackPublication) and self._wanted(pub, who):
                    pub.set_subscribed(True)

    def follow(self, identity: str, on: bool) -> None:
        """Hear (or stop hearing) a caller's microphone: only while the caller has the floor."""
        if on:
            self.following.add(identity)
        else:
            self.following.discard(identity)
        who = self.room.remote_participants.get(identity) if self.room is not None else None
        if who is None:
            return
        for pub in who.track_publications.values():
            if isinstance(pub, rtc.RemoteTrackPublication) and pub.kind == rtc.TrackKind.KIND_AUDIO:
                with contextlib.suppress(Exception):
                    pub.set_subscribed(on)

    def audio_tracks(self) -> tuple[int, int]:
        """(audio tracks published in the room, of them subscribed by this ear)."""
        if self.room is None:
            return 0, 0
        pubs = [
            p
            for who in self.room.remote_participants.values()
            for p in who.track_publications.values()
            if p.kind == rtc.TrackKind.KIND_AUDIO
        ]
        return len(pubs), sum(1 for p in pubs if p.subscribed)

    async def sample_host_stats(self) -> None:
        track = self._host_track
        if track is None or self.room is None:
            return
        try:
            stats = await asyncio.wait_for(track.get_stats(), 0.5)
        except Exception:
            return
        for s in stats:
            if s.WhichOneof("stats") != "inbound_rtp":
                continue
            inbound, received = s.inbound_rtp.inbound, s.inbound_rtp.received
            self.host_stats.append((time.monotonic(), {
                "packets": received.packets_received,
                "lost": received.packets_lost,
                "bytes": inbound.bytes_received,
                "samples": inbound.total_samples_received,
                "concealed": inbound.concealed_samples,
                "silent_concealed": inbound.silent_concealed_samples,
                "energy": inbound.total_audio_energy,
                "last_packet_ms": inbound.last_packet_received_timestamp,
            }))  # fmt: skip
            return

    async def _listen(self, stream: rtc.AudioStream, into: list[tuple[float, float]]) -> None:
        async for ev in stream:
            into.append((time.monotonic(), _rms(np.frombuffer(ev.frame.data, np.int16))))

    async def leave(self) -> None:
        if self.room is None:
            return
        for task in list(self._tasks):
            task.cancel()
        await _bounded(asyncio.gather(*self._tasks, return_exceptions=True), 5.0)
        for stream in self._streams.values():
            await _bounded(stream.aclose(), 2.0)
        self._streams.clear()
        await _bounded(self.room.disconnect(), 10.0)
        self.room = None
        self._host_track = None
        if self.present:  # else its connect never completed (the SDK gave up)
            self.present[-1][1] = time.monotonic()

    @property
    def here(self) -> bool:
        return self.room is not None and not self.joining

    async def rpc(self, method: str) -> str:
        assert self.room is not None
        return await self.room.local_participant.perform_rpc(
            destination_identity=HOST, method=method, payload="", response_timeout=10
        )

    async def publish(self) -> None:
        assert self.room is not None
        self._source = rtc.AudioSource(RATE, 1)
        track = rtc.LocalAudioTrack.create_audio_track("mic", self._source)
        opts = rtc.TrackPublishOptions(source=rtc.TrackSource.SOURCE_MICROPHONE)
        for _ in range(20):  # the grant reaches us a moment after start_turn answers
            try:
                self._pub = await self.room.local_participant.publish_track(track, opts)
                return
            except Exception:
                await asyncio.sleep(0.1)
        raise RuntimeError("microphone never granted")

    async def speak(self, pcm: np.ndarray) -> None:
        assert self._source is not None
        for i in range(0, len(pcm) - FRAME + 1, FRAME):
            frame = rtc.AudioFrame(pcm[i : i + FRAME].tobytes(), RATE, 1, FRAME)
            await self._source.capture_frame(frame)

    async def unpublish(self) -> None:
        if self.room is not None and self._pub is not None:
            await _bounded(self.room.local_participant.unpublish_track(self._pub.sid), 5.0)
        self._pub = None
        if self._source is not None:  # one native source per turn: close it, not pile it up
            await _bounded(self._source.aclose(), 5.0)
        self._source = None


def _speech() -> np.ndarray:
    """A caller's sentence (espeak-ng) at 48 kHz with a little silence either side."""
    from agent.voice.offline_engines import synthesize_pcm

    pcm, rate = synthesize_pcm("Hello radio twenty four, lovely morning here.", "en")
    t = np.arange(round(len(pcm) * RATE / rate)) * rate / RATE
    voice = np.interp(t, np.arange(len(pcm)), pcm.astype(np.float64)).astype(np.int16)
    pad = np.zeros(RATE // 5, dtype=np.int16)
    return np.concatenate([pad, voice, pad])


# --- the station -----------------------------------------------------------------------------


@dataclass
class Parts:
    workdir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    livekit_url: str = ""
    api_url: str = ""
    database_url: str = ""
    key: str = "soakkey"
    secret: str = field(default_factory=lambda: secrets.token_hex(24))
    room: str = field(default_factory=lambda: f"soak-{secrets.token_hex(3)}")
    prompts: Path = Path()
    health_port: int = 0  # the worker's own HTTP server (livekit-agents: / and /worker)

    def start_rack(self) -> None:
        logs = self.workdir / "logs"
        port, tcp = rack.free_port(), rack.free_port()
        udp = 41000 + secrets.randbelow(150) * 60
        part = rack.livekit(port, tcp, udp, self.key, self.secret)
        self.procs["livekit"] = rack.popen(part, logs / "livekit.log")
        self.livekit_url = f"ws://127.0.0.1:{port}"
        os.environ["RADIO_PG_FAST"] = "1"
        pgdata = self.workdir / "pgdata"
        rack.prepare_postgres(pgdata)
        pg_port = rack.free_port()
        self.procs["postgres"] = rack.popen(rack.postgres(pgdata, pg_port), logs / "postgres.log")
        redis_port = rack.free_port()
        self.redis_url = f"redis://127.0.0.1:{redis_port}/0"
        self.procs["redis"] = rack.popen(
            rack.redis(self.workdir / "redis", redis_port), logs / "redis.log"
        )
        rack.wait_port(port, 60, self.procs["livekit"])
        rack.wait_port(redis_port, 30, self.procs["redis"])
        rack.wait_postgres(pg_port, 30)
        from db import migrate

        self.database_url = rack.create_database(pg_port, "radio24")
        migrate.apply(self.database_url)

    def env(self) -> dict[str, str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("OPENAI_", "LIVEKIT_", "RADIO_", "DATABASE_", "REDIS_", "API_"))
        }
        env.update(
            LIVEKIT_URL=self.livekit_url,
            LIVEKIT_API_KEY=self.key,
            LIVEKIT_API_SECRET=self.secret,
            DATABASE_URL=self.database_url,
            REDIS_URL=self.redis_url,
            RADIO_ROOM=self.room,
            RADIO_PROMPTS_DIR=str(self.prompts),
            AGENT_NAME=f"soak-host-{self.room}",
            PYTHONUNBUFFERED="1",
        )
        return env

    def start_api(self) -> None:
        port = rack.free_port()
        env = self.env() | {
            "API_JWT_SECRET": secrets.token_hex(32),
            "API_EMBEDDINGS": "off",  # the embedding model is the memory bench's business
            "API_OPENAI_MODERATION": "false",
            "API_SESSION_RATE_LIMIT": "1000",
            "API_LOG_FORMAT": "json",
            "API_RELAY_INTERVAL_SECONDS": "0.5",
        }
        argv = [sys.executable, "-m", "uvicorn", "--factory", "api.main:create_app",
                "--host", "127.0.0.1", "--port", str(port), "--no-access-log"]  # fmt: skip
        with (self.workdir / "logs" / "api.log").open("ab") as out:
            self.procs["api"] = subprocess.Popen(
                argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        rack.wait_port(port, 60, self.procs["api"])
        self.api_url = f"http://127.0.0.1:{port}"

    def start_host(self, plan: DayPlan, fake: FakeRealtimeServer) -> float:
        """Start the host worker; returns the monotonic time its station clock reads
        plan.start (the epoch every job of the day shares)."""
        self.health_port = rack.free_port()
        # The clock reads plan.start a little after the host is likely on air, so the day's
        # first simulated hour is not spent starting up; the script waits for that moment.
        origin = time.monotonic() + CLOCK_LEAD_SECONDS
        env = self.env() | {
            "OPENAI_API_KEY": "sk-fake",
            "OPENAI_BASE_URL": fake.base_url,
            "HOST_HEALTH_PORT": str(self.health_port),
            "RADIO_CLOCK_SPEED": str(plan.speed),
            "RADIO_CLOCK_START": plan.start.isoformat(),
            # One epoch for every job: a takeover does not rewind the simulated day.
            "RADIO_CLOCK_EPOCH": (
                datetime.now(UTC) + timedelta(seconds=CLOCK_LEAD_SECONDS)
            ).isoformat(),
            "MAX_TURN_SECONDS": str(plan.max_turn_seconds),
            "SESSION_MAX_MINUTES": str(plan.session_minutes),
            "REALTIME_SOCKET_MINUTES": str(plan.session_minutes / 2),
        }
        with (self.workdir / "logs" / "worker.log").open("ab") as out:
            self.procs["worker"] = subprocess.Popen(
                [sys.executable, str(ROOT / "agent" / "main.py"), "start"],
                env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        return origin

    def stop(self) -> None:
        for name in ("worker", "api", "livekit", "redis", "postgres"):
            proc = self.procs.get(name)
            if proc is None:
                continue
            if name in ("worker", "api") and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(proc.pid, 9)
                    proc.wait(10)
            else:
                rack.stop(proc)
        rack.stop_postgres(self.workdir / "pgdata")


# --- the day ---------------------------------------------------------------------------------


@dataclass
class Record:
    """Everything seen from outside during the day (real times are monotonic seconds)."""

    t0: float = 0.0
    samples: list[dict[str, Any]] = field(default_factory=list)
    replies: list[tuple[float, str]] = field(default_factory=list)  # fake model replies
    posts: list[dict[str, Any]] = field(default_factory=list)
    turns: list[dict[str, Any]] = field(default_factory=list)
    actions: list[dict[str, Any]] = field(default_factory=list)
    # (t, id, starts, seconds since the host was last seen before this sample)
    segment_seen: list[tuple[float, str, str, float]] = field(default_factory=list)
    host_joined: float | None = None
    clock_origin: float | None = None  # when the station clock read plan.start (its epoch)
    jobs_joined: list[tuple[float, int, str]] = field(default_factory=list)  # (wall, pid, job)
    # (t, s) whenever this process's event loop woke LOOP_LAG s or more late: a starved
    # listener harness, not the station, if it lines up with a silence.
    loop_lag: list[tuple[float, float]] = field(default_factory=list)


def _reply_for(record: Record) -> Any:
    """The fake model's reply names the cue it was given, so the as-aired log shows it."""

    def reply(ctx: ReplyContext) -> str:
        asked = ctx.response_instructions or ""
        if "station ID" in asked:
            kind, text = "id", "STATION-ID radio24: an AI is hosting."
        elif "A new segment starts now" in asked:
            kind, text = "intro", "INTRO " + asked.split("A new segment starts now:")[1][:40]
        elif "listener post" in asked:
            quoted = ctx.last_user_text or ""
            tag = quoted.split("soak#", 1)[1][:6] if "soak#" in quoted else "?"
            kind, text = "post", f"POST soak#{tag} read on air."
        elif any(_is_audio(item) for item in ctx.new_items):
            kind, text = "answer", "ANSWER thanks for calling."
        else:
            kind, text = "talk", "TALK more from the studio."
        record.replies.append((time.monotonic(), kind))
        return text

    return reply


def _is_audio(item: dict[str, Any]) -> bool:
    """A caller's committed turn among the items a response was asked after."""
    parts = item.get("content") or []
    return item.get("type") == "input_audio_buffer.committed" or any(
        p.get("type") == "input_audio" for p in parts
    )


class Day:
    def __init__(self, plan: DayPlan, workdir: Path) -> None:
        self.plan = plan
        self.parts = Parts(workdir)
        self.record = Record()
        self.ears: dict[str, Ear] = {}
        self.people: list[dict[str, str]] = []
        self.http: httpx.AsyncClient | None = None
        self.fake: FakeRealtimeServer | None = None
        self.speech = _speech()
        self._turn_task: asyncio.Task[None] | None = None
        self._bg: set[asyncio.Task[Any]] = set()
        self.jobs = JobLog(workdir / "logs" / "worker.log")
        self._host_seen = 0.0
        self._redis: aioredis.Redis | None = None

    async def run(self) -> dict[str, Any]:
        plan, parts = self.plan, self.parts
        parts.prompts = parts.workdir / "prompts"
        shutil.copytree(ROOT / "prompts", parts.prompts, dirs_exist_ok=True)
        _say("starting LiveKit, Postgres, Redis")
        await asyncio.to_thread(parts.start_rack)
        self.fake = FakeRealtimeServer(pace=1.0, reply_seconds=2.0, reply=_reply_for(self.record))
        self.fake.start()
        try:
            _say("starting the API and the host worker")
            await asyncio.to_thread(parts.start_api)
            self.record.clock_origin = parts.start_host(plan, self.fake)
            async with httpx.AsyncClient(base_url=parts.api_url, timeout=10) as http:
                self.http = http
                # 24 listeners and callers, plus enough posters to stay inside the API's limit
                # of 5 posts a minute per listener (posts come at random, so with room to spare).
                per_minute = plan.posts_per_day * plan.hours / 24 / (plan.real_seconds / 60)
                await self._people(24 + max(4, round(per_minute / 5 * 3)))
                await self._play()
            return await self._collect()
        finally:
            for ear in self.ears.values():
                await ear.leave()
            await asyncio.to_thread(parts.stop)
            self.fake.stop()

    async def _people(self, n: int) -> None:
        assert self.http is not None
        for i in range(n):
            resp = await self.http.post("/api/session", json={"nickname": f"Soak {i}"})
            resp.raise_for_status()
            body = resp.json()
            self.people.append({"id": body["person"]["id"], "token": body["token"]})

    async def _token(self, person: dict[str, str]) -> str:
        assert self.http is not None
        resp = await self.http.post(
            "/api/livekit/token", headers={"Authorization": f"Bearer {person['token']}"}
        )
        resp.raise_for_status()
        return str(resp.json()["token"])

    async def _play(self) -> None:
        plan = self.plan
        events = build(plan)
        # Every named listener is one API person for the day (the callers' ids are theirs).
        names = sorted({e.who for e in events if e.kind == "join"})
        self._who = {name: self.people[i % 24] for i, name in enumerate(names)}
        self._posters = self.people[24:]
        _say(f"waiting for the host to go on air (day: {plan.real_seconds:.0f} s real)")
        await self._wait_on_air()
        assert self.record.clock_origin is not None
        lead = self.record.clock_origin - time.monotonic()
        if lead > 0:
            await asyncio.sleep(lead)  # the day starts when the station clock reads plan.start
        self.record.t0 = t0 = time.monotonic()
        sampler = asyncio.create_task(self._sample())
        lag = asyncio.create_task(self._loop_lag())
        for event in events:
            delay = t0 + event.at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                await self._act(event)
            except Exception as e:  # one listener's trouble must not end the day
                self._note("failed", what=event.kind, who=event.who, error=repr(e)[:200])
        rest = t0 + plan.real_seconds - time.monotonic()
        if rest > 0:
            await asyncio.sleep(rest)
        if self._turn_task is not None:
            await _bounded(self._turn_task, 30.0)
        await asyncio.sleep(3)  # the last as-aired writes
        self.jobs.read()
        self.record.jobs_joined = list(self.jobs.joined)
        for task in (sampler, lag):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop_lag(self) -> None:
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.1)
            late = time.monotonic() - before - 0.1
            if late >= LOOP_LAG:
                self.record.loop_lag.append((time.monotonic(), round(late, 3)))

    async def _wait_on_air(self) -> None:
        """Ears join and wait until the host is in the room and heard: the day starts then."""
        ears = self._ear("ears")
        ears.token = await self._token(ears.person)  # type: ignore[attr-defined]
        await ears.join()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            room = ears.room
            if room is not None and "host" in room.remote_participants:
                if self.record.host_joined is None:
                    self.record.host_joined = time.monotonic()
                if any(v > LOUD for _, v in ears.levels[-50:]):
                    return
            await asyncio.sleep(0.1)
        api_log = (self.parts.workdir / "logs" / "api.log").read_text(errors="replace")
        removed = api_log.count("host without a heartbeat removed")
        raise RuntimeError(
            f"the host never went on air in 120 s (the keeper removed {removed} hosts without a"
            " heartbeat; see the worker and api logs)"
        )

    def _ear(self, name: str) -> Ear:
        ear = self.ears.get(name)
        if ear is None:
            person = self._who.get(name, self.people[0])
            ear = self.ears[name] = Ear(name, self.parts.livekit_url, "", record=name == "ears")
            ear.person = person  # type: ignore[attr-defined]
        return ear

    def _note(self, kind: str, **detail: Any) -> None:
        self.record.actions.append({"t": time.monotonic(), "kind": kind, **detail})

    async def _act(self, event: Event) -> None:
        fake = self.fake
        assert fake is not None
        kind = event.kind
        if kind == "join":
            ear = self._ear(event.who)
            if not ear.here and not ear.joining:
                # Off the running sheet's path: a connect that hangs (the SDK retrying against
                # a loaded SFU; it cannot be cancelled safely) must not stop the day.
                self._spawn(self._join(ear, event.who))
        elif kind == "leave":
            ear = self.ears.get(event.who)
            if ear is not None and ear.joining:
                self._note("failed", what="leave", who=event.who, error="still joining")
            elif ear is not None and ear.here:
                await ear.leave()
                self._note("leave", who=event.who)
        elif kind == "post":
            self._spawn(self._post(int(event.detail["n"])))
        elif kind == "turn":
            if self._turn_task is not None and not self._turn_task.done():
                self.record.turns.append(
                    {
                        "t": time.monotonic(),
                        "kind": event.detail["kind"],
                        "result": "skipped: a turn still running",
                    }
                )
                return
            self._turn_task = asyncio.create_task(self._turn(str(event.detail["kind"])))
        elif kind == "outage":
            fake.set_down(True)
            fake.drop_connections()
            self._note("outage")
        elif kind == "outage_end":
            fake.set_down(False)
            self._note("outage_end")
        elif kind == "stall":
            fake.stall_next_response(after_chunks=3, seconds=self.plan.stall_seconds)
            self._note("stall")
        elif kind == "fatal":
            fake.fail_next_response("insufficient_quota", "insufficient_quota")
            self._note("fatal")
        elif kind in ("edit", "broken", "mended"):
            self._edit(kind)

    async def _join(self, ear: Ear, who: str) -> None:
        ear.joining = True
        try:
            ear.token = await self._token(ear.person)
            await ear.join()
            self._note("join", who=who)
        except Exception as e:
            self._note("failed", what="join", who=who, error=repr(e)[:200])
        finally:
            ear.joining = False

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._bg.add(task)
        task.add_done_callback(self._bg.discard)

    async def _post(self, n: int) -> None:
        assert self.http is not None
        person = self._posters[n % len(self._posters)]
        text = f"soak#{n:06d} a note from the soak, number {n}."
        at = time.monotonic()
        try:
            resp = await self.http.post(
                "/api/posts",
                json={"text": text},
                headers={"Authorization": f"Bearer {person['token']}", "Idempotency-Key": f"s{n}"},
            )
            status, body = resp.status_code, resp.json() if resp.content else {}
        except Exception as e:
            status, body = 0, {"error": type(e).__name__}
        self.record.posts.append(
            {
                "t": at,
                "n": n,
                "status": status,
                "id": body.get("id"),
                "post_status": body.get("status"),
            }
        )

    async def _turn(self, kind: str) -> None:
        callers = [e for n, e in self.ears.items() if n.startswith("caller") and e.here]
        entry: dict[str, Any] = {"t": time.monotonic(), "kind": kind}
        self.record.turns.append(entry)
        if not callers:
            entry["result"] = "skipped: no caller in the room"
            return
        caller = callers[int(entry["t"] * 10) % len(callers)]
        entry["who"] = caller.name
        try:
            await caller.rpc("start_turn")
        except Exception as e:
            entry["result"] = f"refused: {getattr(e, 'message', e)}"
            return
        entry["granted"] = time.monotonic()
        ears = self.ears.get("ears")
        identity = caller.room.local_participant.identity if caller.room is not None else ""
        if ears is not None:
            ears.follow(identity, True)  # the caller on the floor is what listeners hear
        try:
            await caller.publish()
            if kind == "silent":
                await asyncio.sleep(self.plan.silent_press_seconds)
            elif kind == "max":
                until = time.monotonic() + self.plan.max_turn_seconds + 2.0
                while time.monotonic() < until and caller.here:
                    await caller.speak(self.speech)
            else:
                await caller.speak(self.speech)
            try:
                await caller.rpc("end_turn")
                entry["result"] = "ended"
            except Exception as e:
                entry["result"] = f"end refused: {getattr(e, 'message', e)}"
        except Exception as e:
            entry["result"] = f"failed: {type(e).__name__}: {e}"
        finally:
            entry["ended"] = time.monotonic()
            await caller.unpublish()
            if ears is not None:
                ears.follow(identity, False)

    def _edit(self, kind: str) -> None:
        folder = self.parts.prompts / "segments"
        # The segment on air mid-day in the default programme (and the short run's morning).
        name = "morning.md" if self.plan.hours < 6 else "afternoon.md"
        path = folder / name
        original = ROOT / "prompts" / "segments" / name
        if kind == "edit":
            path.write_text(original.read_text() + f"\n- {EDIT_MARK}: mention the soak once.\n")
        elif kind == "broken":
            path.write_text("---\ntitle: [unclosed\n---\nbroken on purpose\n")
        else:
            path.write_text(original.read_text() + f"\n- {EDIT_MARK}: mended.\n")
        self._note(kind, file=name)

    async def _sample(self) -> None:
        procs = self.parts.procs
        while True:
            now = time.monotonic()
            row: dict[str, Any] = {"t": now}
            for name in ("worker", "api", "livekit"):
                proc = procs.get(name)
                row[name] = _proc(proc.pid) if proc is not None else None
            row["ears"] = _proc(os.getpid())  # this process: the listeners themselves
            worker = procs["worker"].pid
            self.jobs.read()
            pool = _pool(worker)
            job = self.jobs.job_pid(pool)
            row["job_pid"] = job
            row["job"] = _proc(job) if job is not None else None
            warm = [p for p in pool if p != job]
            row["warm_pids"] = warm
            row["warm"] = _proc(warm[0]) if warm else None  # the pool's idle process
            row["pool_size"] = len(pool)
            tree = _descendants(job) if job is not None else []
            row["job_children_rss_kb"] = sum((_proc(c) or {}).get("rss_kb", 0) for c in tree)
            ears = self.ears.get("ears")
            room = ears.room if ears is not None else None
            host = room.remote_participants.get("host") if room is not None else None
            if host is not None:
                seg = host.attributes.get("radio24.segment")
                if seg:
                    value = json.loads(seg)
                    seen = self.record.segment_seen
                    if not seen or seen[-1][1] != value["id"]:
                        # How long since the host was last seen: a change seen on coming back
                        # to the room (or from a new host) says nothing of when it happened.
                        unseen = now - self._host_seen if self._host_seen else float("inf")
                        seen.append((now, value["id"], value["starts"], unseen))
                self._host_seen = now
            if ears is not None:
                row["room_audio_tracks"], row["ears_subscribed"] = ears.audio_tracks()
                await ears.sample_host_stats()
            row["listeners"] = sum(1 for e in self.ears.values() if e.here)
            row["active_jobs"] = await self._active_jobs()
            row["job_tasks"] = await self._job_tasks()
            self.record.samples.append(row)
            await asyncio.sleep(SAMPLE_SECONDS)

    async def _job_tasks(self) -> int | None:
        """The host job's asyncio task count, as its heartbeat in Redis gives it."""
        if self._redis is None:
            self._redis = aioredis.Redis.from_url(self.parts.redis_url, socket_timeout=0.5)
        try:
            raw = await self._redis.get(Keys(self.parts.room).heartbeat)
            tasks = json.loads(raw).get("tasks") if raw else None
        except Exception:
            return None
        return tasks if isinstance(tasks, int) else None

    async def _active_jobs(self) -> int | None:
        """The worker's own count of running jobs (livekit-agents' public /worker route)."""
        url = f"http://127.0.0.1:{self.parts.health_port}/worker"
        try:
            async with httpx.AsyncClient(timeout=0.5) as http:
                return int((await http.get(url)).json().get("active_jobs", 0))
        except Exception:
            return None

    async def _collect(self) -> dict[str, Any]:
        with psycopg.connect(self.parts.database_url) as conn:
            utterances = [
                dict(zip(UTTERANCE_FIELDS, r, strict=True))
                for r in conn.execute(
                    "SELECT id, kind, speaker, text, segment, mode, started_at, ended_at,"
                    " interrupted, file FROM utterances ORDER BY started_at, id"
                )
            ]
            posts = [
                dict(zip(("id", "status", "text", "aired_at", "enqueued_at"), r, strict=True))
                for r in conn.execute(
                    "SELECT id::text, status, text, aired_at, enqueued_at FROM posts"
                )
            ]
            usage = [
                dict(zip(USAGE_FIELDS, r, strict=True))
                for r in conn.execute(
                    "SELECT hour, model, audio_in_tokens, audio_out_tokens, text_in_tokens,"
                    " text_out_tokens FROM model_usage ORDER BY hour"
                )
            ]
        ears = self.ears["ears"]
        logs = self.parts.workdir / "logs"
        worker_log = (logs / "worker.log").read_text(errors="replace")
        api_log = (logs / "api.log").read_text(errors="replace")
        seen = {
            "plan": self.plan,
            "record": asdict(self.record),
            "levels": ears.levels,
            "caller_levels": ears.caller_levels,
            "host_stats": ears.host_stats,
            "presence": ears.present,
            "utterances": utterances,
            "posts": posts,
            "usage": usage,
            "worker_log": worker_log,
            "api_log": api_log,
            "mono_to_wall": time.time() - time.monotonic(),
        }
        # What was seen, kept so the day can be judged again without running it again
        # (`python -m bench.day --judge PATH`): a day costs twenty minutes.
        with (logs / "seen.pickle").open("wb") as f:
            pickle.dump(seen, f)
        return day_report.analyse(**{**seen, "record": self.record})


# --- the command -----------------------------------------------------------------------------


def run(plan: DayPlan, out: Path, *, keep: bool = False) -> dict[str, Any]:
    """Run the day; write `out`.json and `out`.png; return the report."""
    workdir = Path(tempfile.mkdtemp(prefix="radio24-day-"))
    workdir.chmod(0o755)  # Postgres runs as its own user under root
    (workdir / "logs").mkdir()
    try:
        report = asyncio.run(Day(plan, workdir).run())
    finally:
        logs = out.parent / f"{out.name}-logs"
        shutil.rmtree(logs, ignore_errors=True)
        with contextlib.suppress(Exception):
            shutil.copytree(workdir / "logs", logs)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    report["plan"] = {k: str(v) if isinstance(v, datetime) else v for k, v in asdict(plan).items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    day_report.plot(report, out.with_suffix(".png"))
    return report


def judge(seen_path: Path, out: Path) -> dict[str, Any]:
    """Judge a day already run again, from the `seen.pickle` its logs folder keeps."""
    with seen_path.open("rb") as f:
        seen = pickle.load(f)  # nosec B301: our own file, written by run()
    seen["record"] = Record(**seen["record"])
    report = day_report.analyse(**seen)
    report["plan"] = {k: str(v) if isinstance(v, datetime) else v
                      for k, v in asdict(seen["plan"]).items()}  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    day_report.plot(report, out.with_suffix(".png"))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.day", description=__doc__)
    parser.add_argument("--speed", type=float, default=72.0, help="station clock speed")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours")
    parser.add_argument("--start", default="2026-12-07T05:00:00+09:00", help="station time")
    parser.add_argument("--out", type=Path, default=RESULTS / "day")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    parser.add_argument("--judge", type=Path, help="judge a day's seen.pickle again, not run")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.judge is not None:
        report = judge(args.judge, args.out)
    else:
        plan = DayPlan(speed=args.speed, hours=args.hours, start=datetime.fromisoformat(args.start))
        report = run(plan, args.out, keep=args.keep)
    print(day_report.table(report))
    print(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.png')}")
    return 0 if all(c["ok"] for c in report["checks"]) else 1


if __name__ == "__main__":
    sys.exit(main())
