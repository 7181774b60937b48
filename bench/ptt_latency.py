"""How long a push-to-talk caller waits for the host: end of turn → first reply audio heard.

The number a caller feels is the gap between letting go of the button and hearing the host
answer. This measures it through the real SFU, for the radio24 host and, in the same run, for a
bare push-to-talk agent of LiveKit's example shape (`bench/bare_ptt_agent.py`), so that what
radio24 adds on top of livekit-agents shows up as a ratio rather than as an absolute number
that depends on the machine.

    .venv/bin/python -m bench.ptt_latency [--turns 50] [--warmup 2]   (from the repository root)

One command starts its own LiveKit server, Postgres (migrated) and Redis on free loopback ports
in a temp folder, a fake OpenAI Realtime server in this process (answering at once,
`response_latency=0`), the host worker (`agent/main.py start`, the way it runs in production) and
the bare agent worker, each dispatched into its own room. Everything it started is stopped on
the way out, also after Ctrl-C, SIGTERM or an error. Worker logs: `test-artifacts/ptt_latency/`.

Method
------
- One caller per room, a `livekit` rtc participant in this process, takes turns exactly as a
  page would: `start_turn` RPC; for the host, wait for the microphone grant (the host grants it
  through the server's update-participant API) and publish; speak ~1 s of real speech
  (espeak-ng, so the host's Silero VAD lets the turn through), wait until the audio source has
  sent it all; then the **end of turn** is the moment just before the `end_turn` RPC is sent.
- The fake answers a response that follows a committed caller turn with a pure 1 kHz tone, and
  everything else (the host's on-air talk) with its usual buzz at 180 Hz and harmonics. The
  caller subscribes to the agent's audio like any listener and scores every 10 ms frame it
  receives by the share of its energy at 1 kHz. **First reply frame heard** = the receive time of
  the first frame after the end of turn whose 1 kHz share is over 60 % and whose level is well
  above silence. So the host talking on air, a jingle or an earlier reply can never be mistaken
  for the answer, and the method is the same for both agents. Both times are `time.monotonic()`
  in this process; the latency includes the agent's own work, the model's websocket, the agent's
  audio output, the SFU and the listener's jitter buffer and decoder.
- The two agents take turns alternately (host, bare, host, bare, ...) so machine noise hits both
  alike; the first `--warmup` turns of each are not counted. An agent's next turn starts only
  once its last answer has finished playing; the other agent's turn starts as soon as an answer
  is heard, and its own end of turn comes after its caller has spoken (~1 s), by when the
  0.4 s answer in the other room has ended.
- Between callers the host's on-air loop would start talking again after the station's silence
  gap (1.5 s) and keep the machine busy while the bare agent is measured; the bench's copy of
  the prompts sets the gap to `--silence-gap` (10 s) so that back-to-back calls see a quiet host
  in both rooms. The gap plays no part while a caller holds the floor or while the host waits
  for the model's answer.
- Per turn it also records, from the fake, when the commit and the `response.create` for the
  reply arrived and when the first audio delta left, so the table splits the wait into the
  agent's part (end of turn → `response.create`) and the way back (fake → ear).

Statistics: median and p95 (linear interpolation) over the counted turns of each agent, a
failed turn (no reply heard) counting as a miss (infinite), never dropped; the
ratios are host / bare; "host − bare, turn by turn" is the difference between the host's turn i
and the bare agent's turn i, which ran back to back. Targets (issue 3): host p95 ≤ 250 ms and
≤ 1.1 × the bare agent's p95. Results: `bench/results/ptt_latency.json` (summary, machine, load
average, and every turn with its split).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from livekit import api as lkapi
from livekit import rtc

from api.keeper import Beat, Keeper
from bench.quantiles import quantile
from db import migrate
from radio24 import rack
from tests.conftest import LiveKit
from tests.fakes import realtime_server as fake_server
from tests.host.conftest import RATE, Listener, Station, Worker, rms, speech_pcm

ROOT = rack.ROOT
RESULTS = ROOT / "bench" / "results" / "ptt_latency.json"
LOGS = ROOT / "test-artifacts" / "ptt_latency"

TONE_HZ = 1000.0  # 10 whole cycles in a 10 ms frame at 48 kHz: no leakage into the score
TONE_SHARE = 0.6  # a frame is the reply when this share of its energy is at TONE_HZ
TONE_LEVEL = 500.0  # ... and its RMS is above this (the tone plays at ~7000)
SPEECH = "Hello radio."
PAD_S = 0.15
TARGET_P95_MS = 250.0
TARGET_RATIO = 1.1


# --- the fake model: a tone for answers to callers -------------------------------------------


def tone_pcm(seconds: float) -> bytes:
    """A 1 kHz sine as PCM16 24 kHz mono, with 2 ms ramps so it starts without a click."""
    n = max(1, round(seconds * fake_server.SAMPLE_RATE))
    t = np.arange(n, dtype=np.float64) / fake_server.SAMPLE_RATE
    ramp = np.minimum(1.0, np.minimum(t, t[-1] - t) / 0.002)
    wave = 0.3 * np.sin(2 * math.pi * TONE_HZ * t) * ramp
    return (wave * 32767).astype("<i2").tobytes()


class ToneFake(fake_server.FakeRealtimeServer):
    """The fake Realtime server, answering a committed caller turn with a pure tone.

    It also timestamps (monotonic, this process) each commit, each `response.create` and the
    first audio delta of each tone reply, per connection.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._marks_lock = threading.Lock()
        self._marks: list[tuple[float, str]] = []
        self._committed: set[int] = set()  # connections whose next response answers a caller
        self._answering: dict[int, bool] = {}

    def mark_count(self) -> int:
        with self._marks_lock:
            return len(self._marks)

    def marks_since(self, index: int) -> list[tuple[float, str]]:
        with self._marks_lock:
            return list(self._marks[index:])

    def _mark(self, kind: str) -> None:
        with self._marks_lock:
            self._marks.append((time.monotonic(), kind))

    async def _dispatch(self, conn: Any, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.commit":
            self._mark("commit")
            self._committed.add(conn.id)
        elif kind == "response.create":
            answering = conn.id in self._committed
            self._committed.discard(conn.id)
            self._answering[conn.id] = answering
            self._mark("reply.create" if answering else "on_air.create")
        await super()._dispatch(conn, event)

    async def _stream(self, conn: Any, where: dict[str, Any], text: str, audio_out: bool) -> str:
        """The base class's streaming, with the tone as the audio of an answer to a caller."""
        if not self._answering.pop(conn.id, False) or not audio_out:
            return await super()._stream(conn, where, text, audio_out)
        pcm = tone_pcm(self.reply_seconds)
        step = int(fake_server.BYTES_PER_SECOND * fake_server.CHUNK_SECONDS)
        chunks = [pcm[i : i + step] for i in range(0, len(pcm), step)]
        started = time.monotonic()
        for i, audio in enumerate(chunks):
            if conn.cancel_requested:
                break
            if i == 0:
                delta = {"type": "response.output_audio_transcript.delta", **where, "delta": text}
                await self._send(conn, delta)
                self._mark("reply.first_delta")
            encoded = base64.b64encode(audio).decode()
            await self._send(
                conn, {"type": "response.output_audio.delta", **where, "delta": encoded}
            )
            if self.pace:
                due = started + (i + 1) * fake_server.CHUNK_SECONDS / self.pace
                await asyncio.sleep(max(0.0, due - time.monotonic()))
        return text


# --- the caller, who is also a listener ------------------------------------------------------

_BASIS: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def tone_share(pcm: np.ndarray, rate: int = RATE) -> float:
    """The share of a frame's energy at TONE_HZ (1.0 for a pure tone, ~0 for speech or buzz)."""
    n = pcm.size
    if n == 0:
        return 0.0
    if n not in _BASIS:
        t = np.arange(n) / rate
        _BASIS[n] = (np.cos(2 * math.pi * TONE_HZ * t), np.sin(2 * math.pi * TONE_HZ * t))
    cos, sin = _BASIS[n]
    x = pcm.astype(np.float64)
    total = float(np.dot(x, x))
    if total <= 0:
        return 0.0
    return float(2.0 * (np.dot(x, cos) ** 2 + np.dot(x, sin) ** 2) / n / total)


class Caller(Listener):
    """A listener who calls in, and scores every frame of the agent's audio for the tone."""

    def __init__(self, station: Station, identity: str) -> None:
        super().__init__(station, identity)
        self.times: list[float] = []
        self.tones: list[bool] = []
        self.subscribed = asyncio.Event()

    async def _listen(self, track: rtc.Track) -> None:
        self.subscribed.set()
        async for ev in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
            at = time.monotonic()
            pcm = np.frombuffer(ev.frame.data, dtype=np.int16)
            self.times.append(at)
            self.tones.append(rms(pcm) > TONE_LEVEL and tone_share(pcm) > TONE_SHARE)

    def _first_tone(self, since: float) -> float | None:
        for i in range(len(self.times) - 1, -1, -1):
            if self.times[i] < since:
                break
        else:
            i = -1
        for j in range(i + 1, len(self.times)):
            if self.tones[j]:
                return self.times[j]
        return None

    async def hears_reply(self, since: float, within: float) -> float | None:
        """The receive time of the first tone frame after `since`, or None."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = self._first_tone(since)
            if found is not None:
                return found
            await asyncio.sleep(0.02)
        return None

    async def reply_over(self, within: float) -> None:
        """Wait until no tone frame has arrived for 150 ms (the reply has finished playing)."""
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            recent = zip(self.times[-50:], self.tones[-50:], strict=True)
            last = max((at for at, tone in recent if tone), default=None)
            if last is None or time.monotonic() - last > 0.15:
                return
            await asyncio.sleep(0.05)

    async def say(self, pcm: np.ndarray) -> None:
        """Speak into the microphone and wait until the source has sent every frame."""
        await self.speak(pcm)
        assert self._source is not None
        await self._source.wait_for_playout()

    async def publish_when_granted(self, within: float = 10) -> None:
        """The grant reaches the client through the SFU's signal channel: publish once it has."""
        deadline = time.monotonic() + within
        while not self.room.local_participant.permissions.can_publish:
            if time.monotonic() > deadline:
                raise TimeoutError("the microphone grant never arrived")
            await asyncio.sleep(0.01)
        while True:
            try:
                await asyncio.wait_for(self.publish_microphone(), 5)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)


@dataclass
class OpenMicRoom(Station):
    """The bare agent's room: its caller may publish all along (the bare agent has no grants)."""

    def token(self, identity: str, *, publish: bool = True) -> str:
        return super().token(identity, publish=True)


class BareWorker(Worker):
    """`bench/bare_ptt_agent.py start`, run and stopped like the host worker."""

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, str(ROOT / "bench" / "bare_ptt_agent.py"), "start"],
                env=self.env,
                cwd=str(ROOT),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.history.append(self.proc.pid)


def caller_speech() -> np.ndarray:
    """SPEECH spoken by espeak-ng at 48 kHz, trimmed to the voice with PAD_S of quiet each side."""
    pcm = speech_pcm(SPEECH)
    frames = pcm[: pcm.size // 480 * 480].reshape(-1, 480).astype(np.float64)
    voiced = np.nonzero(np.sqrt((frames**2).mean(axis=1)) > 200)[0]
    pad = round(PAD_S * RATE)
    start = max(0, int(voiced[0]) * 480 - pad)
    end = min(pcm.size, (int(voiced[-1]) + 1) * 480 + pad)
    return pcm[start:end]


# --- one turn --------------------------------------------------------------------------------


@dataclass
class Side:
    name: str  # "host" or "bare"
    caller: Caller
    grant: bool  # the caller must wait for a microphone grant (the host) or not (bare)


@dataclass
class TurnResult:
    agent: str
    index: int
    counted: bool
    ok: bool
    status: str
    heard_ms: float | None = None  # end of turn → first tone frame heard
    rpc_ms: float | None = None  # end of turn → end_turn RPC answered
    commit_ms: float | None = None  # end of turn → commit at the fake
    create_ms: float | None = None  # end of turn → response.create at the fake
    first_delta_ms: float | None = None  # end of turn → first audio delta sent by the fake


async def take_turn(
    side: Side, fake: ToneFake, pcm: np.ndarray, index: int, counted: bool, within: float
) -> TurnResult:
    caller = side.caller
    await caller.reply_over(within=5)  # this agent's last answer has finished playing
    await caller.rpc("start_turn")
    if side.grant:
        await caller.unpublish()  # the last turn's track went with the last grant
        await caller.publish_when_granted()
    await caller.say(pcm)
    first_mark = fake.mark_count()
    ended = time.monotonic()
    answer = await caller.rpc("end_turn")
    answered = time.monotonic()
    status = json.loads(answer).get("status", "?") if answer.startswith("{") else answer
    result = TurnResult(side.name, index, counted, ok=False, status=status)
    result.rpc_ms = (answered - ended) * 1000
    if status not in ("answered", "ok"):
        return result
    heard = await caller.hears_reply(ended, within)
    marks = fake.marks_since(first_mark)

    def first(kind: str) -> float | None:
        return next(((at - ended) * 1000 for at, k in marks if k == kind), None)

    result.commit_ms = first("commit")
    result.create_ms = first("reply.create")
    result.first_delta_ms = first("reply.first_delta")
    if heard is None:
        result.status = "no reply heard"
        return result
    result.heard_ms = (heard - ended) * 1000
    result.ok = True
    return result


# --- statistics and the table ----------------------------------------------------------------


def stats(values: list[float]) -> dict[str, float | int | None]:
    """A miss is `math.inf`: it stays in (bench/quantiles.py)."""
    if not values:
        return {"n": 0, "median": None, "p95": None, "mean": None, "min": None, "max": None}
    arr = np.asarray(values, dtype=np.float64)
    return {
        "n": int(arr.size),
        "missed": int(np.isinf(arr).sum()),
        "median": round(quantile(values, 0.5), 1),
        "p95": round(quantile(values, 0.95), 1),
        "mean": round(float(arr.mean()), 1),
        "min": round(float(arr.min()), 1),
        "max": round(float(arr.max()), 1),
    }


def summarize(turns: list[TurnResult]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for agent in ("host", "bare"):
        mine = [t for t in turns if t.agent == agent and t.counted]
        ok = [t for t in mine if t.ok]
        summary[agent] = {
            "turns": len(mine),
            "failed": len(mine) - len(ok),
            # A failed turn is a miss in the figure the targets judge, never left out.
            "heard_ms": stats(
                [t.heard_ms if t.ok and t.heard_ms is not None else math.inf for t in mine]
            ),
            "rpc_ms": stats([t.rpc_ms for t in ok if t.rpc_ms is not None]),
            "create_ms": stats([t.create_ms for t in ok if t.create_ms is not None]),
            "return_ms": stats(
                [
                    t.heard_ms - t.first_delta_ms
                    for t in ok
                    if t.heard_ms is not None and t.first_delta_ms is not None
                ]
            ),
        }
    host, bare = summary["host"]["heard_ms"], summary["bare"]["heard_ms"]

    def ratio(key: str) -> float | None:
        if host[key] is None or not bare[key]:
            return None
        return round(host[key] / bare[key], 3)

    summary["ratio"] = {"median": ratio("median"), "p95": ratio("p95")}
    # Turn i of the host and turn i of the bare agent ran back to back: their difference is
    # radio24's overhead with the machine's state of the moment taken out.
    by_index = {(t.agent, t.index): t.heard_ms for t in turns if t.counted and t.ok}
    summary["overhead_ms"] = stats(
        [
            host_ms - bare_ms
            for (agent, i), host_ms in by_index.items()
            if agent == "host"
            and host_ms is not None
            and (bare_ms := by_index.get(("bare", i))) is not None
        ]
    )
    summary["targets"] = {
        "host_p95_ms_max": TARGET_P95_MS,
        "ratio_p95_max": TARGET_RATIO,
        "host_p95_met": host["p95"] is not None and host["p95"] <= TARGET_P95_MS,
        "ratio_p95_met": summary["ratio"]["p95"] is not None
        and summary["ratio"]["p95"] <= TARGET_RATIO,
    }
    return summary


def table(summary: dict[str, Any]) -> str:
    def ms(agent: str, key: str, stat: str) -> str:
        value = summary[agent][key][stat]
        return "-" if value is None else f"{value:.0f}"

    def ratio(stat: str) -> str:
        value = summary["ratio"][stat]
        return "-" if value is None else f"{value:.2f}"

    def counts(agent: str) -> str:
        return f"{summary[agent]['turns']}/{summary[agent]['failed']}"

    rows = [
        ("ms after end of turn", "host", "bare", "ratio"),
        ("first reply heard, median", ms("host", "heard_ms", "median"), ms("bare", "heard_ms", "median"), ratio("median")),  # noqa: E501
        ("first reply heard, p95", ms("host", "heard_ms", "p95"), ms("bare", "heard_ms", "p95"), ratio("p95")),  # noqa: E501
        ("  response.create, median", ms("host", "create_ms", "median"), ms("bare", "create_ms", "median"), ""),  # noqa: E501
        ("  fake's audio → ear, median", ms("host", "return_ms", "median"), ms("bare", "return_ms", "median"), ""),  # noqa: E501
        ("  end_turn answered, median", ms("host", "rpc_ms", "median"), ms("bare", "rpc_ms", "median"), ""),  # noqa: E501
        ("turns counted / failed", counts("host"), counts("bare"), ""),
    ]  # fmt: skip
    lines = [f"{a:<30}{b:>10}{c:>10}{d:>8}" for a, b, c, d in rows]
    overhead = summary["overhead_ms"]
    lines.append(
        f"host − bare, turn by turn: median {overhead['median']} ms, p95 {overhead['p95']} ms"
    )
    met = {True: "met", False: "NOT met"}
    targets = summary["targets"]
    lines.append(
        f"targets: host p95 ≤ {TARGET_P95_MS:.0f} ms {met[targets['host_p95_met']]}; "
        f"host p95 ≤ {TARGET_RATIO}× bare p95 {met[targets['ratio_p95_met']]}"
    )
    return "\n".join(lines)


# --- the rig ---------------------------------------------------------------------------------


@contextmanager
def parts(log: Callable[[str], None]) -> Iterator[tuple[LiveKit, str, str, Path]]:
    """LiveKit, Postgres (migrated) and Redis on free ports in a temp folder."""
    folder = Path(tempfile.mkdtemp(prefix="radio24-ptt-bench-"))
    folder.chmod(0o755)  # embedded Postgres runs as a system user under root: it must get in
    with ExitStack() as stack:
        stack.callback(shutil.rmtree, folder, True)

        def start(part: rack.Part) -> None:
            proc = rack.popen(part, folder / f"{part.name}.log")
            stack.callback(rack.stop, proc)
            rack.wait_port(part.port, 60, proc)

        started = time.perf_counter()
        port, tcp = rack.free_port(), rack.free_port()
        udp = 20000 + secrets.randbelow(150) * 60  # away from make run's and the tests' ranges
        key, secret = "benchkey", secrets.token_hex(24)
        start(rack.livekit(port, tcp, udp, key, secret))
        livekit = LiveKit(f"ws://127.0.0.1:{port}", key, secret, port)

        os.environ["RADIO_PG_FAST"] = "1"  # fsync off: nothing here needs to survive a crash
        pgdata = folder / "pgdata"
        rack.prepare_postgres(pgdata)
        pg_port = rack.free_port()
        start(rack.postgres(pgdata, pg_port))
        rack.wait_postgres(pg_port, 30)
        database_url = rack.create_database(pg_port, "radio24_bench")
        migrate.apply(database_url)

        redis_port = rack.free_port()
        start(rack.redis(folder / "redis", redis_port))
        log(f"livekit, postgres and redis up in {time.perf_counter() - started:.1f}s")
        yield livekit, database_url, f"redis://127.0.0.1:{redis_port}/0", folder


def bench_prompts(folder: Path, silence_gap: float) -> Path:
    """A copy of the station's prompts with the bench's silence gap."""
    target = folder / "prompts"
    shutil.copytree(ROOT / "prompts", target)
    station = target / "station.yaml"
    text, count = re.subn(
        r"(?m)^silence_gap_seconds:.*$", f"silence_gap_seconds: {silence_gap}", station.read_text()
    )
    station.write_text(text if count else f"{text}\nsilence_gap_seconds: {silence_gap}\n")
    return target


async def until_on_air(keepers: list[Keeper], callers: list[Caller], within: float) -> None:
    """Dispatch each agent into its room (re-dispatching as the keeper does) until every caller
    hears its agent's audio track."""
    deadline = time.monotonic() + within
    while not all(c.subscribed.is_set() for c in callers):
        if time.monotonic() > deadline:
            raise TimeoutError("an agent never joined its room: see " + str(LOGS))
        for keeper, caller in zip(keepers, callers, strict=True):
            if "host" not in caller.room.remote_participants:
                await keeper.check(Beat(answered=False), None)
        await asyncio.sleep(0.5)


async def run(
    args: argparse.Namespace,
    livekit: LiveKit,
    database_url: str,
    redis_url: str,
    folder: Path,
    fake: ToneFake,
    log: Callable[[str], None],
) -> list[TurnResult]:
    tag = secrets.token_hex(3)
    shutil.rmtree(LOGS, ignore_errors=True)
    common: dict[str, Any] = {
        "livekit": livekit,
        "database_url": database_url,
        "redis_url": redis_url,
        "prompts": bench_prompts(folder, args.silence_gap),
        "artifacts": LOGS,
        "fake": fake,
    }
    station = Station(room=f"radio-bench-{tag}", agent_name=f"radio-host-bench-{tag}", **common)
    bare_room = OpenMicRoom(room=f"bare-bench-{tag}", agent_name=f"bare-ptt-{tag}", **common)
    workers: list[Worker] = [station.start_worker()]
    bare_env = station.env() | {
        "BARE_AGENT_NAME": bare_room.agent_name,
        "BARE_HEALTH_PORT": str(rack.free_port()),
    }
    workers.append(BareWorker(bare_env, LOGS / "bare-worker.log"))
    workers[-1].start()
    api = station.api()
    callers: list[Caller] = []
    try:
        keepers = [
            Keeper(api, station.room, agent_name=station.agent_name),
            Keeper(api, bare_room.room, agent_name=bare_room.agent_name),
        ]
        for keeper in keepers:
            await keeper.check(Beat(answered=False), None)  # creates the room, dispatches
        host_caller = Caller(station, "caller-host")
        bare_caller = Caller(bare_room, "caller-bare")
        for caller in (host_caller, bare_caller):
            await caller.join()
            callers.append(caller)
        await until_on_air(keepers, callers, within=90)
        await bare_caller.publish_microphone()
        log("both agents on air; taking turns")

        pcm = caller_speech()
        sides = [Side("host", host_caller, grant=True), Side("bare", bare_caller, grant=False)]
        turns: list[TurnResult] = []
        total = args.warmup + args.turns
        for i in range(total):
            counted = i >= args.warmup
            for side in sides:
                try:
                    result = await take_turn(side, fake, pcm, i, counted, args.reply_within)
                except (rtc.RpcError, TimeoutError) as e:  # counted as failed; the run goes on
                    result = TurnResult(side.name, i, counted, ok=False, status=repr(e))
                    with contextlib.suppress(Exception):
                        await side.caller.rpc("cancel_turn")
                turns.append(result)
                if not result.ok:
                    log(f"{side.name} turn {i}: {result.status}")
            if counted and (i - args.warmup + 1) % 10 == 0:
                done = [t for t in turns if t.counted and t.ok]
                line = "  ".join(
                    f"{agent} median {stats([t.heard_ms for t in done if t.agent == agent and t.heard_ms is not None])['median']} ms"  # noqa: E501
                    for agent in ("host", "bare")
                )
                log(f"{i - args.warmup + 1}/{args.turns} turns each: {line}")
        return turns
    finally:
        for caller in callers:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(caller.leave(), 10)
        # Closing the rooms ends the jobs, so the workers need not wait out their drain.
        for room in (station.room, bare_room.room):
            with contextlib.suppress(Exception):
                await api.room.delete_room(lkapi.DeleteRoomRequest(room=room))
        await api.aclose()
        await asyncio.gather(*(asyncio.to_thread(_stop_worker, w) for w in workers))


def _stop_worker(worker: Worker) -> None:
    with contextlib.suppress(AssertionError):
        worker.stop(timeout=20)
    for pid in worker.leftovers(wait=3):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _interrupt(signum: int, frame: object) -> None:
    signal.raise_signal(signal.SIGINT)  # SIGTERM unwinds like Ctrl-C, through every cleanup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=50, help="counted turns per agent")
    parser.add_argument("--warmup", type=int, default=2, help="uncounted turns per agent first")
    parser.add_argument(
        "--reply-seconds", type=float, default=0.4, help="length of the fake's reply"
    )
    parser.add_argument(
        "--reply-within", type=float, default=5.0, help="seconds to wait for a reply"
    )
    parser.add_argument(
        "--silence-gap",
        type=float,
        default=10.0,
        help="the host's silence gap between callers (see the module docstring)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    # Ctrl-C stops the bench even when its shell started it with SIGINT ignored (`cmd &`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)

    def log(message: str) -> None:
        print(f"· {message}", flush=True)

    began = time.perf_counter()
    load_at_start = os.getloadavg()
    try:
        with (
            parts(log) as (livekit, database_url, redis_url, folder),
            ToneFake(pace=1.0, reply_seconds=args.reply_seconds, response_latency=0.0) as fake,
        ):
            turns = asyncio.run(run(args, livekit, database_url, redis_url, folder, fake, log))
    except KeyboardInterrupt:
        log("interrupted; everything the bench started is stopped")
        raise SystemExit(130) from None
    summary = summarize(turns)
    print(table(summary))
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_start": load_at_start,
            "load_average_end": os.getloadavg(),
        },
        "config": {
            "turns": args.turns,
            "warmup": args.warmup,
            "order": "alternating host, bare",
            "speech": SPEECH,
            "reply_seconds": args.reply_seconds,
            "fake_pace": 1.0,
            "fake_response_latency_s": 0.0,
            "silence_gap_s": args.silence_gap,
            "statistic": "median and p95 (linear) of end of turn → first reply frame heard",
        },
        "summary": summary,
        "turns": [asdict(t) for t in turns],
        "wall_seconds": round(time.perf_counter() - began, 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    log(f"wrote {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
