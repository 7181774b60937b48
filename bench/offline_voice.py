"""How fast the offline voice speaks: real-time factor of OpenJTalk (ja) and espeak-ng (en).

Real-time factor = synthesis time / audio duration; below 1 the host talks faster than it
thinks. Measured in process with `synthesize_pcm` (the engine's own cost), the median of RUNS
runs after one warm-up, together with the first sentence's latency (what a listener waits).

    .venv/bin/python bench/offline_voice.py
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

from agent.voice.offline_engines import split_sentences, synthesize_pcm

ROOT = Path(__file__).resolve().parent.parent

RUNS = 7
TEXTS = {
    "ja": (
        "こんばんは、ラジオ二十四のお時間です。"
        "本日の東京は晴れ、最高気温は二十五度の予想です。"
        "夕方からは雲が広がり、夜には所により雨が降るでしょう。"
        "リスナーの皆さんからのお便りを紹介していきます。"
    ),
    "en": (
        "Good evening, and welcome back to radio twenty four. "
        "Tonight in Tokyo the sky stays clear, with a high of twenty five degrees. "
        "Clouds roll in after dark, and there may be rain by midnight. "
        "Let's read a few of your messages."
    ),
}
RESULTS = ROOT / "bench" / "results" / "offline_voice.json"


def measure(language: str, text: str) -> dict[str, float | int]:
    first = split_sentences(text)[0]
    synthesize_pcm(text, language)  # warm-up: loads the dictionary / pages in the binary
    totals, firsts = [], []
    audio_s = 0.0
    for _ in range(RUNS):
        started = time.perf_counter()
        pcm, rate = synthesize_pcm(text, language)
        totals.append(time.perf_counter() - started)
        audio_s = pcm.size / rate
        started = time.perf_counter()
        synthesize_pcm(first, language)
        firsts.append(time.perf_counter() - started)
    synth_s = statistics.median(totals)
    return {
        "sentences": len(split_sentences(text)),
        "characters": len(text),
        "sample_rate": rate,
        "audio_s": round(audio_s, 3),
        "synthesis_s": round(synth_s, 4),
        "rtf": round(synth_s / audio_s, 4),
        "times_real_time": round(audio_s / synth_s, 1),
        "first_sentence_s": round(statistics.median(firsts), 4),
    }


def main() -> None:
    results = {language: measure(language, text) for language, text in TEXTS.items()}
    rows = [
        ("", *results),
        ("sentences", *(str(r["sentences"]) for r in results.values())),
        ("audio (s)", *(f"{r['audio_s']:.2f}" for r in results.values())),
        ("synthesis (s)", *(f"{r['synthesis_s']:.3f}" for r in results.values())),
        ("real-time factor", *(f"{r['rtf']:.4f}" for r in results.values())),
        ("x real time", *(f"{r['times_real_time']:.0f}" for r in results.values())),
        ("first sentence (s)", *(f"{r['first_sentence_s']:.3f}" for r in results.values())),
    ]
    for name, *cells in rows:
        print(f"{name:<20}" + "".join(f"{c:>12}" for c in cells))
    print(f"median of {RUNS} runs; engine in process (OfflineTTS adds a process hop for ja)")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    report = {
        "runs": RUNS,
        "statistic": "median",
        "machine": {
            "python": platform.python_version(),
            "cpu_count": os.cpu_count(),
            "platform": platform.platform(),
        },
        "engines": {"ja": "OpenJTalk (pyopenjtalk) + naist-jdic", "en": "espeak-ng en-us"},
        "results": results,
    }
    RESULTS.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
