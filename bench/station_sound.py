"""What a listener of the default station hears, measured through the real SFU.

    .venv/bin/python -m bench.station_sound [--seconds 150] [--clock 2025-01-06T16:29:40+00:00]

Starts its own LiveKit, Postgres (migrated) and Redis on loopback (as bench/ptt_latency.py
does), the host worker in offline mode on an untouched copy of prompts/ (music, idents and
the bed included), and a listener who records the host's track as a page would receive it
(Opus, decoded to 48 kHz). The station clock starts at `--clock` (default: late night, twenty
seconds before the half-hour station ID); the wall clock runs at normal speed.

Reports, over the recording from the first sound: integrated loudness (BS.1770, pyloudnorm) of
the whole and of each full minute, true peak (4x oversampled), clipped samples, the longest
silence (10 ms frames under -50 dBFS), the share of the time on air; then ten more listeners
join one after another and each one's join → first sound is timed (p95). Writes
`bench/results/station_sound.json` and a spectrogram of the first minute,
`bench/results/station_sound.png`. Targets: -16 ± 1 LUFS, ≤ -1 dBTP, 0 clipped, silence ≤ 2 s,
join → sound p95 ≤ 1 s.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import secrets
import shutil
import signal
import time
import wave
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from agent.audio.measure import integrated_loudness, true_peak_db
from api.keeper import Beat, Keeper
from bench.ptt_latency import parts
from tests.host.conftest import RATE, Listener, Station
from tests.host.test_sound import SILENT, Recorder

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
LOGS = ROOT / "test-artifacts" / "station_sound"
LATE_NIGHT = "2025-01-06T16:29:40+00:00"
NO_BEAT = Beat(answered=False)  # the keeper goes by LiveKit presence alone (no Redis heartbeat)


async def measure(args: argparse.Namespace, station: Station) -> dict[str, object]:
    station.extra_env.update(RADIO_CLOCK_START=args.clock, RADIO_CLOCK_SPEED="1")
    worker = station.start_worker()
    api = station.api()
    keeper = Keeper(api, station.room, agent_name=station.agent_name)
    listener = Recorder(station, "bench-listener")
    try:
        await keeper.check(NO_BEAT, None)
        await listener.join()
        deadline = time.monotonic() + 90
        while "host" not in listener.room.remote_participants:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the host never joined: see {LOGS}")
            await keeper.check(NO_BEAT, None)
            await asyncio.sleep(0.5)
        first = await listener.hears_host(30, level=300)
        if first is None:
            raise TimeoutError("the station never went on air")
        await asyncio.sleep(args.seconds)
        end = first + args.seconds
        joins = []
        for i in range(10):
            joiner = Listener(station, f"joiner-{i}")
            began = time.monotonic()
            await joiner.join()
            heard = await joiner.hears_host(5, since=began, level=300)
            await joiner.leave()
            joins.append(round((heard - began) if heard is not None else 5.0, 3))
            await asyncio.sleep(0.5)
        pcm = listener.pcm(first, end)
        levels = [(at, v) for at, v in listener.levels if first <= at <= end]
        music = _music_log(station)
    finally:
        await listener.leave()
        await api.aclose()
        worker.stop()
    return _report(args, pcm, levels, first, end, joins, music)


def _music_log(station: Station) -> list[dict[str, object]]:
    import psycopg

    with psycopg.connect(station.database_url) as conn:
        rows = conn.execute(
            "SELECT file, title, artist, started_at, duration_ms FROM utterances "
            "WHERE kind = 'music' ORDER BY started_at"
        ).fetchall()
    return [
        {"file": f, "title": t, "artist": a, "started_at": s.isoformat(), "ms": d}
        for f, t, a, s, d in rows
    ]


def _report(
    args: argparse.Namespace,
    pcm: np.ndarray,
    levels: list[tuple[float, float]],
    first: float,
    end: float,
    joins: list[float],
    music: list[dict[str, object]],
) -> dict[str, object]:
    heard = [at for at, v in levels if v > SILENT]
    marks = [first, *heard, end]
    gaps = [b - a for a, b in itertools.pairwise(marks)]
    minutes = [
        round(integrated_loudness(pcm[i : i + 60 * RATE]), 2)
        for i in range(0, pcm.size - 60 * RATE + 1, 60 * RATE)
    ]
    _spectrogram(pcm[: 60 * RATE], RESULTS / "station_sound.png", args.clock)
    with wave.open(str(LOGS / "recording.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    return {
        "seconds_recorded": round(pcm.size / RATE, 1),
        "integrated_lufs": round(integrated_loudness(pcm), 2),
        "integrated_lufs_per_minute": minutes,
        "true_peak_dbtp": round(true_peak_db(pcm), 2),
        "clipped_samples": int(np.sum(np.abs(pcm.astype(np.int32)) >= 32767)),
        # Where the loudest sample is, to find it in the recording (test-artifacts/).
        "loudest_sample_at_s": round(int(np.argmax(np.abs(pcm.astype(np.int32)))) / RATE, 2),
        "longest_silence_s": round(max(gaps), 2),
        "share_on_air": round(len(heard) / max(len(levels), 1), 3),
        "join_to_sound_s": joins,
        "join_to_sound_p95_s": round(float(np.percentile(joins, 95, method="linear")), 3),
        "music_log": music,
    }


def _spectrogram(pcm: np.ndarray, out: Path, clock: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = pcm.astype(np.float64) / 32768
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=110)
    ax.specgram(x, NFFT=2048, Fs=RATE, noverlap=1024, cmap="magma", vmin=-140, vmax=-20)
    ax.set_ylim(0, 12000)
    ax.set_xlabel("seconds (as a listener received it)")
    ax.set_ylabel("Hz")
    ax.set_title(f"radio24 default station, offline host, one minute from station time {clock}")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


def _table(r: dict[str, object]) -> str:
    rows = [
        ("integrated loudness (LUFS)", r["integrated_lufs"], "-16 ± 1"),
        ("  per full minute", r["integrated_lufs_per_minute"], "-16 ± 1"),
        ("true peak (dBTP)", r["true_peak_dbtp"], "≤ -1"),
        ("clipped samples", r["clipped_samples"], "0"),
        ("longest silence (s)", r["longest_silence_s"], "≤ 2"),
        ("share of time on air", r["share_on_air"], "reported"),
        ("join → first sound p95 (s)", r["join_to_sound_p95_s"], "≤ 1"),
        ("music items logged", len(r["music_log"]), "reported"),  # type: ignore[arg-type]
    ]
    return "\n".join(f"{name:<30} {value!s:<28} {target}" for name, value, target in rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=150.0)
    parser.add_argument("--clock", default=LATE_NIGHT, help="station time at the start (ISO)")
    parser.add_argument("--out", type=Path, default=RESULTS / "station_sound.json")
    args = parser.parse_args()
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def log(message: str) -> None:
        print(f"· {message}", flush=True)

    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    with parts(log) as (livekit, database_url, redis_url, folder):
        prompts = folder / "prompts"
        shutil.copytree(ROOT / "prompts", prompts)
        tag = secrets.token_hex(3)
        station = Station(
            livekit=livekit,
            database_url=database_url,
            redis_url=redis_url,
            room=f"radio-sound-{tag}",
            agent_name=f"radio-host-sound-{tag}",
            prompts=prompts,
            artifacts=LOGS,
            fake=None,
        )
        log(f"recording {args.seconds:g} s of the station from {args.clock}")
        result = asyncio.run(measure(args, station))
    print(_table(result))
    report = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "load_average_end": os.getloadavg(),
        },
        "config": {"seconds": args.seconds, "clock": args.clock, "mode": "offline"},
        **result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    log(f"wrote {args.out} and {RESULTS / 'station_sound.png'}")


if __name__ == "__main__":
    main()
