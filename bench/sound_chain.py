"""What the audio processor costs, and what it delivers, on this machine.

The host's audio output calls the live chain 100 times a second from its 10 ms mixer; the cost
per call must stay a small part of those 10 ms. Files are prepared in a thread before they air;
their cost decides how far ahead the host must prepare. Measured here:

- per-call time (median and p99, microseconds) of `SpeechChain.process` on 10 ms and 20 ms
  blocks, `BedMixer.mix` and `TruePeakLimiter.process` on 10 ms blocks, over real speech
  (OpenJTalk) when the offline voice is installed, else a speech-like signal;
- `prepare` of every file in prompts/media: seconds, times real time, and the loudness and true
  peak of the result;
- the loudness and true peak of the speech after the chain.

    .venv/bin/python bench/sound_chain.py
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

from agent.audio.chain import BedMixer, SpeechChain, TruePeakLimiter
from agent.audio.measure import integrated_loudness, true_peak_db
from agent.audio.prepare import prepare
from agent.audio.samples import BLOCK, SAMPLE_RATE, to_int16

ROOT = Path(__file__).resolve().parent.parent
MEDIA = ROOT / "prompts" / "media"
RESULTS = ROOT / "bench" / "results" / "sound_chain.json"
TARGET, CEILING = -16.0, -1.0
TEXT = (
    "こんばんは、ラジオ二十四のお時間です。今夜もゆっくりお付き合いください。"
    "リスナーの皆さんからのお便りを紹介していきます。時刻は午前二時を回りました。"
)


def speech() -> tuple[np.ndarray, str]:
    """About 15 s of the offline voice, or a stand-in when it is not installed."""
    try:
        from agent.voice.offline_engines import synthesize_pcm

        pcm, rate = synthesize_pcm(TEXT, "ja")
        x = np.asarray(pcm, dtype=np.float32).reshape(-1)
        x = x / 32768 if np.abs(x).max() > 2 else x
        if rate != SAMPLE_RATE:
            raise RuntimeError(f"unexpected rate {rate}")
        return np.concatenate([x, x]), "OpenJTalk speech"
    except Exception:  # the bench still runs without the offline voice
        t = np.arange(SAMPLE_RATE * 15) / SAMPLE_RATE
        phase = 2 * np.pi * np.cumsum(140 + 30 * np.sin(2 * np.pi * 0.7 * t)) / SAMPLE_RATE
        voiced = sum(np.sin(h * phase) / h for h in range(1, 25))
        x = voiced * np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
        return (0.5 * x / np.abs(x).max()).astype(np.float32), "speech-like signal"


def per_call(fn, blocks: list[np.ndarray]) -> dict[str, float]:
    times = []
    for block in blocks:
        started = time.perf_counter()
        fn(block)
        times.append(time.perf_counter() - started)
    times.sort()
    block_s = blocks[0].size / SAMPLE_RATE
    median = statistics.median(times)
    return {
        "calls": len(times),
        "median_us": round(median * 1e6, 1),
        "p99_us": round(times[int(len(times) * 0.99)] * 1e6, 1),
        "share_of_real_time": round(median / block_s, 4),
    }


def main() -> None:
    voice, source = speech()
    pcm = to_int16(np.clip(voice, -1, 32767 / 32768))
    blocks10 = [pcm[i : i + BLOCK] for i in range(0, pcm.size - BLOCK + 1, BLOCK)]
    blocks20 = [pcm[i : i + 2 * BLOCK] for i in range(0, pcm.size - 2 * BLOCK + 1, 2 * BLOCK)]
    chain = SpeechChain(TARGET, CEILING)
    out = np.concatenate([chain.process(b) for b in blocks10])
    calls = {
        "SpeechChain.process 10 ms": per_call(SpeechChain(TARGET, CEILING).process, blocks10),
        "SpeechChain.process 20 ms": per_call(SpeechChain(TARGET, CEILING).process, blocks20),
        "TruePeakLimiter.process 10 ms": per_call(
            TruePeakLimiter(CEILING).process, [b.astype(np.float32) / 32768 for b in blocks10]
        ),
    }
    bed = np.zeros(BLOCK, np.float32)
    if (MEDIA / "beds").is_dir():
        bed_file = sorted((MEDIA / "beds").glob("*.ogg"))[0]
        bed = prepare(bed_file, TARGET, CEILING)
    mixer = BedMixer(CEILING)
    bed_blocks = [bed[(i * BLOCK) % (bed.size - BLOCK) :][:BLOCK] for i in range(len(blocks10))]
    pairs = iter(bed_blocks)
    calls["BedMixer.mix 10 ms"] = per_call(lambda v: mixer.mix(v, next(pairs)), blocks10)

    files = {}
    for path in sorted(MEDIA.rglob("*.ogg")):
        started = time.perf_counter()
        sound = prepare(path, TARGET, CEILING)
        took = time.perf_counter() - started
        seconds = sound.size / SAMPLE_RATE
        files[str(path.relative_to(MEDIA))] = {
            "audio_s": round(seconds, 1),
            "prepare_s": round(took, 3),
            "times_real_time": round(seconds / took, 1),
            "lufs": round(integrated_loudness(sound), 2),
            "true_peak_dbtp": round(true_peak_db(sound), 2),
        }

    settled = out[out.size // 4 :]
    delivered = {
        "source": source,
        "input_lufs": round(integrated_loudness(voice), 2),
        "input_true_peak_dbtp": round(true_peak_db(voice), 2),
        "input_clipped_samples": int(np.sum(np.abs(pcm.astype(np.int32)) >= 32767)),
        "output_lufs_after_first_quarter": round(integrated_loudness(settled), 2),
        "output_true_peak_dbtp": round(true_peak_db(out), 2),
        "output_clipped_samples": int(np.sum(np.abs(out.astype(np.int32)) >= 32767)),
        "latency_ms": round(chain.latency / SAMPLE_RATE * 1000, 2),
    }

    print(f"{'per call':<32}{'median µs':>12}{'p99 µs':>10}{'% of block':>12}")
    for name, r in calls.items():
        print(
            f"{name:<32}{r['median_us']:>12.1f}{r['p99_us']:>10.1f}"
            f"{r['share_of_real_time'] * 100:>11.2f}%"
        )
    print(f"\n{'prepare':<32}{'audio s':>9}{'took s':>9}{'x real':>8}{'LUFS':>8}{'dBTP':>7}")
    for name, r in files.items():
        print(
            f"{name:<32}{r['audio_s']:>9.1f}{r['prepare_s']:>9.2f}{r['times_real_time']:>8.0f}"
            f"{r['lufs']:>8.2f}{r['true_peak_dbtp']:>7.2f}"
        )
    print(f"\nspeech ({source}) through SpeechChain:")
    for key, value in delivered.items():
        if key != "source":
            print(f"  {key:<34}{value}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "target_lufs": TARGET,
        "ceiling_dbtp": CEILING,
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
            "load_average": os.getloadavg(),
        },
        "per_call": calls,
        "prepare": files,
        "speech": delivered,
    }
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
