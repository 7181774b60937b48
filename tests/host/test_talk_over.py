"""The host talks over a track's intro and back-announces it, heard by a listener through the
real SFU (Opus-coded and decoded). The host voices the default station's late-night segment,
whose only track here is a low tone (so its level reads apart from the voice) with a
5-second intro: the listener hears the voice and the ducked track at once, the voice is over
by the intro's end, the track plays to its end, and the next talk break names it. Once with
the offline voice, once with the model (the fake Realtime server), which must be handed the
tags as quoted data."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg
import pytest

from programme.music import LEAD_IN_S, OVERRUN_S
from tests.host.conftest import RATE, ROOT, Station, speech_pcm
from tests.host.test_ptt import _publish_when_granted
from tests.host.test_sound import Recorder, _keep, _start

pytestmark = pytest.mark.integration

# 01:05 on a Tuesday in Tokyo: late night, 25 minutes before the next station ID.
LATE_NIGHT = "2025-01-06T16:05:00+00:00"
HZ, SECONDS, INTRO = 55.0, 10.0, 5.0
TITLE, ARTIST = "低い音", "テスト楽団"
WINDOW = RATE // 5  # 200 ms: 11 whole cycles of 55 Hz


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    """The default station with one track (a tone with a known intro), no bed, more music."""
    folder = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", folder)
    music = folder / "media" / "music"
    shutil.rmtree(music)
    music.mkdir()
    t = np.arange(int(SECONDS * RATE)) / RATE
    with wave.open(str(music / "low_tone.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes((0.3 * np.sin(2 * np.pi * HZ * t) * 32767).astype(np.int16).tobytes())
    (music / "media.yaml").write_text(
        "kind: track\nfiles:\n"
        f"  low_tone.wav: {{ title: {TITLE}, artist: {ARTIST}, moods: [calm], intro: {INTRO} }}\n",
        encoding="utf-8",
    )
    seg = folder / "segments" / "late_night.md"
    text = seg.read_text(encoding="utf-8")
    seg.write_text(re.sub(r"share: 0\.25(.*)bed: true", r"share: 0.9\1bed: false", text))
    return folder


def _levels(pcm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per 200 ms window: the tone's level and everything else's (the voice), in dBFS."""
    n = pcm.size // WINDOW
    x = pcm[: n * WINDOW].astype(np.float64).reshape(n, WINDOW) / 32768
    t = np.arange(WINDOW) / RATE
    cos, sin = np.cos(2 * np.pi * HZ * t), np.sin(2 * np.pi * HZ * t)
    tone = 2.0 * ((x @ cos) ** 2 + (x @ sin) ** 2) / WINDOW / WINDOW
    rest = np.maximum(np.mean(x * x, axis=1) - tone, 1e-12)
    return 10 * np.log10(np.maximum(tone, 1e-12)), 10 * np.log10(rest)


def _rows(station: Station) -> list[tuple[str, str | None, str, float, float]]:
    """(kind, file, text, start, end) of the as-aired log, in seconds since the epoch."""
    with psycopg.connect(station.database_url) as conn:
        rows = conn.execute(
            "SELECT kind, file, text, extract(epoch FROM started_at), "
            "extract(epoch FROM coalesce(ended_at, started_at + duration_ms * interval '1 ms')) "
            "FROM utterances ORDER BY started_at"
        ).fetchall()
    return [(k, f, x, float(a), float(b)) for k, f, x, a, b in rows]


Row = tuple[str, str | None, str, float, float]


@dataclass
class Heard:
    over: Row  # the host's line over the track's intro
    after: Row  # the talk break after the track
    line_start: float  # seconds into the track, from the as-aired log
    line_end: float


async def _track_began(listener: Recorder) -> float:
    """The segment's introduction, then the track: when pages were told it plays."""
    deadline = time.monotonic() + 60
    while not any(v and TITLE in v for _, v in listener.playing):
        assert time.monotonic() < deadline, "the track never started"
        await asyncio.sleep(0.05)
    return next(at for at, v in listener.playing if v and TITLE in v)


async def _air_the_track(station: Station) -> Heard:
    """Start the station at 01:05, record the listener until the talk after the track, and
    check what both modes share: the line over the intro starts inside the track and ends by
    the intro's end (give or take the overrun the loop allows), the track airs whole, and the
    listener hears voice and track at once, the track ducked under the voice and unbroken."""
    listener, _ = await _start(station, "night-owl", LATE_NIGHT)
    try:
        began = await _track_began(listener)
        deadline = time.monotonic() + SECONDS + 30
        while True:
            rows = _rows(station)
            music = [r for r in rows if r[0] == "music" and r[1] == "music/low_tone.wav"]
            after = [r for r in rows if r[0] == "host" and music and r[3] >= music[0][4] - 0.5]
            if after:
                break
            assert time.monotonic() < deadline, f"no talk after the track: {rows}"
            await asyncio.sleep(0.3)
        pcm = listener.pcm(began - 0.5, began + SECONDS + 0.5)
    finally:
        await listener.leave()

    _, _, _, m_start, m_end = music[0]
    assert m_end - m_start >= SECONDS - 0.3, f"the track was cut: {m_end - m_start:.2f} s"
    over = [r for r in rows if r[0] == "host" and m_start <= r[3] < m_end]
    assert len(over) == 1, over
    line_start, line_end = over[0][3] - m_start, over[0][4] - m_start
    print(f"\nintro line {line_start:.2f}-{line_end:.2f} s into a {INTRO:g} s intro")
    assert line_start >= LEAD_IN_S - 0.3 and line_end <= INTRO + OVERRUN_S, (line_start, line_end)

    # What the listener heard. Windows are placed from the log (seconds into the track) on
    # the track's first window the listener heard.
    _keep(station, "talk_over.wav", pcm)
    tone, rest = _levels(pcm)
    heard = tone > -45.0
    first = int(np.flatnonzero(heard)[0])

    def window(seconds: float) -> int:
        return first + round(seconds * RATE / WINDOW)

    during = np.arange(window(line_start), window(line_end + 0.3))
    voiced = during[rest[during] > -30.0]  # the voice is clearly there
    quiet = np.arange(window(line_end + 2.5), window(SECONDS - 0.4))  # the duck has let go
    levels = f"tone {np.round(tone).tolist()}, rest {np.round(rest).tolist()}"
    assert voiced.size >= 5, f"the voice heard over the track in {voiced.size} windows; {levels}"
    assert heard[voiced].all(), f"the track was not heard under the voice; {levels}"
    assert quiet.size >= 5 and np.median(rest[quiet]) < -40.0, f"talk went on; {levels}"
    ducked = float(np.median(tone[voiced]) - np.median(tone[quiet]))
    print(
        f"track under the voice: {-ducked:.1f} dB lower ({voiced.size} windows), "
        f"voice {np.median(rest[voiced]):.1f} dBFS, track alone {np.median(tone[quiet]):.1f} dBFS"
    )
    assert ducked <= -6.0, f"the track was not ducked under the voice ({ducked:.1f} dB)"
    last = int(np.flatnonzero(heard)[-1])
    span = (last - first + 1) * WINDOW / RATE
    gaps = int((~heard[first : last + 1]).sum())
    assert span >= SECONDS - 0.6 and gaps == 0, f"the track heard {span:.1f} s, {gaps} gaps"
    return Heard(over[0], after[0], line_start, line_end)


async def test_the_offline_voice_talks_over_the_intro_and_names_the_track_after(
    offline_station: Station,
) -> None:
    heard = await _air_the_track(offline_station)
    assert heard.over[2] == f"続いては、{ARTIST}で「{TITLE}」。", heard.over
    assert heard.after[2].startswith(f"お聴きいただいたのは、{ARTIST}で「{TITLE}」でした。")


async def test_the_model_is_cued_over_the_intro_and_back_announces_with_the_tags_as_data(
    realtime_station: Station,
) -> None:
    await _air_the_track(realtime_station)
    fake = realtime_station.fake
    assert fake is not None
    asked = [r.response_instructions or "" for r in fake.response_requests]
    intro = [a for a in asked if "<track>" in a]
    assert len(intro) == 1 and "under your voice" in intro[0], asked
    data = intro[0].split("<track>\n")[1].split("\n</track>")[0]
    assert json.loads(data) == {"title": TITLE, "artist": ARTIST}
    back = [a for a in asked[asked.index(intro[0]) + 1 :] if "<played_music>" in a]
    assert back, "the talk after the track was not asked to back-announce it"
    played = back[0].split("<played_music>\n")[1].split("\n</played_music>")[0]
    assert json.loads(played) == [{"title": TITLE, "artist": ARTIST}]


async def test_a_caller_who_presses_during_the_line_over_the_intro_is_not_talked_over(
    offline_station: Station,
) -> None:
    """The line over a track's intro runs beside the step that plays the track: a press while
    it is on air cuts it (and fades the track) like any line; nothing of the host is heard
    while the caller holds the floor."""
    listener, _ = await _start(offline_station, "caller", LATE_NIGHT)
    try:
        began = await _track_began(listener)
        await asyncio.sleep(max(0.0, began + LEAD_IN_S + 0.2 - time.monotonic()))
        while True:  # the host's voice is heard over the tone
            _, rest = _levels(listener.pcm(time.monotonic() - 0.45, time.monotonic()))
            if rest.size and rest[-1] > -30.0:
                break
            assert time.monotonic() < began + INTRO, "no line over the intro was heard"
            await asyncio.sleep(0.05)
        await listener.rpc("start_turn")
        pressed = time.monotonic()
        await _publish_when_granted(listener)
        await listener.speak(speech_pcm())
        # (audio that left the host before the press may still be on its way: from 1 s on)
        held = 0.01 * sum(1 for at, v in listener.levels if at >= pressed + 1.0 and v > 300)
        await listener.rpc("end_turn")
        print(f"\npressed {pressed - began:.2f} s into the track; host heard {held:.2f} s after")
        assert held == 0, f"the host was heard for {held:.2f} s while the caller held the floor"
    finally:
        await listener.leave()
