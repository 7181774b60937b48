"""The station sounds like radio, measured on what a listener receives through the real SFU
(Opus-coded and decoded, as a page hears it): broadcast loudness under the true-peak ceiling,
no clipping, no dead air, sound within a second of joining, the bed ducked under the voice, and
a caller's press fading a track out. The host is the offline voice (the default station); its
clock is set to the late-night segment, which carries a bed and music."""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import time
import wave
from pathlib import Path

import numpy as np
import psycopg
import pytest
from livekit import rtc

from agent.audio.measure import integrated_loudness, true_peak_db
from tests.host.conftest import RATE, ROOT, Listener, Station, rms, speech_pcm
from tests.host.test_ptt import _publish_when_granted

pytestmark = pytest.mark.integration

# 01:29:40 in Tokyo on a Tuesday: late night, twenty seconds before the half-hour station ID.
LATE_NIGHT = "2025-01-06T16:29:40+00:00"
SILENT = 100  # int16 RMS of a 10 ms frame below which a listener hears nothing (-50 dBFS)
LOUD = 300  # the host tests' "host audio" level
TARGET_LUFS, CEILING_DBTP = -16.0, -1.0
NOW_PLAYING = "radio24.now_playing"


@pytest.fixture
def prompts_dir(tmp_path: Path) -> Path:
    """The whole default station, music and all (the host tests' copy is talk-only)."""
    folder = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", folder)
    return folder


class Recorder(Listener):
    """A listener that keeps the PCM it receives as well as each frame's level."""

    def __init__(self, station: Station, identity: str) -> None:
        super().__init__(station, identity)
        self.frames: list[tuple[float, np.ndarray]] = []
        self.playing: list[tuple[float, str | None]] = []  # now-playing attribute changes

    async def join(self) -> None:
        @self.room.on("participant_attributes_changed")
        def _changed(changed: dict[str, str], participant: rtc.Participant) -> None:
            if participant.identity == "host" and NOW_PLAYING in changed:
                self.playing.append((time.monotonic(), changed[NOW_PLAYING]))

        await super().join()

    async def _listen(self, track: rtc.Track) -> None:
        async for ev in rtc.AudioStream(track, sample_rate=RATE, num_channels=1):
            pcm = np.frombuffer(ev.frame.data, dtype=np.int16).copy()
            at = time.monotonic()
            self.levels.append((at, rms(pcm)))
            self.frames.append((at, pcm))

    def pcm(self, start: float, end: float) -> np.ndarray:
        parts = [p for at, p in self.frames if start <= at <= end]
        return np.concatenate(parts) if parts else np.zeros(0, np.int16)


def _more_music(prompts: Path, share: float = 0.5) -> None:
    """The late-night segment with a larger music share, so one minute holds talk and a track
    (at the default 0.25 the first track comes after about 80 s of talk)."""
    seg = prompts / "segments" / "late_night.md"
    seg.write_text(seg.read_text().replace("share: 0.25", f"share: {share}", 1))


def _tone_bed(prompts: Path, hz: float = 55.0, seconds: float = 8.0) -> None:
    """Replace the bed with a low tone, whose level in the mix can be read apart from speech."""
    beds = prompts / "media" / "beds"
    for old in beds.glob("*.ogg"):
        old.unlink()
    t = np.arange(int(seconds * RATE)) / RATE
    tone = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype(np.int16)
    with wave.open(str(beds / "soft_pad.wav"), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(tone.tobytes())
    sidecar = beds / "media.yaml"
    sidecar.write_text(sidecar.read_text().replace("soft_pad.ogg", "soft_pad.wav"))


async def _start(
    station: Station, identity: str = "anchor", clock: str = LATE_NIGHT
) -> tuple[Recorder, float]:
    station.extra_env.update(RADIO_CLOCK_START=clock, RADIO_CLOCK_SPEED="1")
    station.start_worker()
    await station.start_keeper()
    listener = Recorder(station, identity)
    await listener.join()
    await listener.wait_for_host(60)
    first = await listener.hears_host(20, level=LOUD)
    assert first is not None, "the station never went on air"
    return listener, first


def _keep(station: Station, name: str, pcm: np.ndarray) -> None:
    """The recording beside the worker's log, to listen to when a figure is off."""
    with wave.open(str(station.artifacts / name), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())


def _longest_silence(listener: Recorder, start: float, end: float) -> float:
    heard = [at for at, v in listener.levels if start <= at <= end and v > SILENT]
    marks = [start, *heard, end]
    return max(b - a for a, b in itertools.pairwise(marks))


async def _into_a_track(listener: Recorder, seconds: float, within: float) -> None:
    """Until a track has played `seconds` (the house tracks run 69-79 s: one that is near its
    end is let go, and the next one waited for)."""
    deadline = time.monotonic() + within
    while True:
        at, value = listener.playing[-1] if listener.playing else (0.0, None)
        age = time.monotonic() - at
        if value not in (None, "null") and seconds <= age <= 50:
            return
        assert time.monotonic() < deadline, f"no track {seconds:g} s in within {within:.0f} s"
        await asyncio.sleep(0.1)


def _music_rows(station: Station) -> list[tuple[str, str, int]]:
    with psycopg.connect(station.database_url) as conn:
        return conn.execute(
            "SELECT file, title, duration_ms FROM utterances WHERE kind = 'music' "
            "ORDER BY started_at"
        ).fetchall()


@pytest.mark.peak
@pytest.mark.timeout(420)
async def test_a_minute_at_broadcast_loudness_and_a_press_fades_the_track(
    offline_station: Station,
) -> None:
    """A minute of intro talk over the bed, the ident and spoken station ID, then a track:
    -16 LUFS within 1 LU, true peak at or under -1 dBTP, no clipped sample; no silence over 2 s
    in two minutes. Then a caller presses during a track: it fades out at once and the log
    keeps what aired."""
    _more_music(offline_station.prompts)
    listener, first = await _start(offline_station)
    try:
        await asyncio.sleep(max(0.0, first + 120 - time.monotonic()))
        end = first + 60
        pcm = listener.pcm(first, end)
        _keep(offline_station, "minute.wav", pcm)
        assert pcm.size >= 55 * RATE, f"only {pcm.size / RATE:.1f} s of the minute arrived"
        loudness = integrated_loudness(pcm)
        peak = true_peak_db(pcm)
        clipped = int(np.sum(np.abs(pcm.astype(np.int32)) >= 32767))
        silence = _longest_silence(listener, first, first + 120)
        print(
            f"\nminute: {loudness:.2f} LUFS, true peak {peak:.2f} dBTP, {clipped} clipped; "
            f"two minutes: longest silence {silence:.2f} s"
        )
        assert abs(loudness - TARGET_LUFS) <= 1.0, f"integrated loudness {loudness:.2f} LUFS"
        assert peak <= CEILING_DBTP, f"true peak {peak:.2f} dBTP"
        assert clipped == 0, f"{clipped} clipped samples"
        assert silence <= 2.0, f"{silence:.2f} s of silence"

        # A caller presses some seconds into a track. The running order shifts by as long as
        # the worker took to start on a busy machine, so a track may be starting or ending now.
        await _into_a_track(listener, 6.0, within=150)
        playing = [json.loads(v) for _, v in listener.playing if v and v != "null"]
        assert playing and playing[-1]["title"], "pages were never told what is playing"
        await listener.rpc("start_turn")
        pressed = time.monotonic()
        await _publish_when_granted(listener)
        await listener.speak(speech_pcm())  # a caller talking (a silent one is cut at 4 s)
        # What left the host before the press (the bed's 0.25 s fade among it) may still be on
        # its way through the SFU and this busy process's receive loop: judged from 1 s on.
        held_loud = [
            round(at - pressed, 2)
            for at, v in listener.levels
            if pressed + 1.0 <= at <= time.monotonic() and v > LOUD
        ]
        await listener.rpc("cancel_turn")
        assert held_loud == [], (
            f"{len(held_loud) * 10} ms of host audio while the caller held the floor, at "
            f"{held_loud[:20]} s after the press"
        )
        deadline = time.monotonic() + 10
        while True:
            rows = _music_rows(offline_station)
            tracks = [r for r in rows if r[0].startswith("music/")]
            if tracks:
                break
            assert time.monotonic() < deadline, f"the track was not logged: {rows}"
            await asyncio.sleep(0.3)
        file, title, duration_ms = tracks[-1]
        assert title and 5_000 < duration_ms < 70_000, (file, title, duration_ms)
        assert any(r[0].startswith("idents/") for r in rows), f"no ident logged: {rows}"
    finally:
        await listener.leave()


def _music_piece(seconds: float = 6.0) -> np.ndarray:
    """Chords with a hi-hat of noise bursts (bright, peaky: what stresses a limiter and the
    codec most), float64 in about [-1, 1]."""
    rng = np.random.default_rng(13)
    t = np.arange(int(seconds * RATE)) / RATE
    chord = sum(
        np.sin(2 * np.pi * hz * k * t + i) / (4 * k)
        for i, hz in enumerate((110.0, 220.0, 261.63, 329.63))
        for k in (1, 2, 3)
    )
    chord *= 0.6 + 0.4 * np.exp(-4 * ((t % 0.5) / 0.5))
    hat = rng.standard_normal(t.size) * np.exp(-40 * ((t % 0.25) / 0.25))
    return chord + 0.8 * hat


def _at_loudness(x: np.ndarray, lufs: float, *, clip: bool) -> np.ndarray:
    """`x` scaled to `lufs` as 16-bit PCM; `clip`: mastered into the wall (peaks at 0 dBFS)."""
    gain = 1.0
    for _ in range(30):
        y = np.clip(x * gain, -1, 32767 / 32768) if clip else x * gain
        pcm = np.round(y * 32768).astype(np.int16)
        reached = integrated_loudness(pcm)
        if abs(reached - lufs) < 0.05:
            return pcm
        gain *= 10 ** ((lufs - reached) / 20)
    raise AssertionError(f"could not make a file at {lufs} LUFS")


def _only_tracks(prompts: Path, tracks: dict[str, np.ndarray]) -> None:
    """The late-night segment's music is only these files (mostly music, so they air after
    the host's introduction)."""
    folder = prompts / "media" / "music"
    shutil.rmtree(folder)
    folder.mkdir()
    for name, pcm in tracks.items():
        with wave.open(str(folder / f"{name}.wav"), "wb") as out:
            out.setnchannels(1)
            out.setsampwidth(2)
            out.setframerate(RATE)
            out.writeframes(pcm.tobytes())
    files = "".join(f"  {name}.wav: {{ moods: [calm, night] }}\n" for name in tracks)
    (folder / "media.yaml").write_text(f"kind: track\nfiles:\n{files}")
    _more_music(prompts, 0.9)


async def test_a_too_loud_and_a_too_quiet_file_reach_listeners_at_the_target(
    offline_station: Station,
) -> None:
    """A track mastered into the wall (-6 LUFS, peaks at 0 dBFS) and one far too quiet
    (-35 LUFS) air one after the other: each reaches the listener within 1 LU of -16 LUFS,
    and nothing the listener receives goes over -1 dBTP or clips."""
    piece = _music_piece()
    loud = _at_loudness(piece, -6.0, clip=True)
    quiet = _at_loudness(piece, -35.0, clip=False)
    assert int(np.sum(np.abs(loud.astype(np.int32)) >= 32767)) > 1000  # really into the wall
    _only_tracks(offline_station.prompts, {"loud": loud, "quiet": quiet})
    # 01:40 in Tokyo: late night, ten minutes after the last station ID (none is due).
    listener, first = await _start(offline_station, clock="2025-01-06T16:40:00+00:00")
    try:
        deadline = time.monotonic() + 90
        while True:
            ended = [at for at, v in listener.playing if v in (None, "null")]
            titles = {
                json.loads(v)["title"] for _, v in listener.playing if v not in (None, "null")
            }
            if (
                len(titles) == 2
                and ended
                and ended[-1] > max(at for at, v in listener.playing if v not in (None, "null"))
            ):
                break
            assert time.monotonic() < deadline, f"the two tracks did not air: {listener.playing}"
            await asyncio.sleep(0.3)
        await asyncio.sleep(0.5)
        everything = listener.pcm(first, time.monotonic())
        _keep(offline_station, "loud_and_quiet.wav", everything)
        figures = []
        changes = [*listener.playing, (time.monotonic(), None)]
        for (start, value), (end, _) in itertools.pairwise(changes):
            if value in (None, "null"):
                continue
            # The page hears of a track about as late as its sound: skip each edge's fade.
            pcm = listener.pcm(start + 0.3, end - 0.1)
            assert pcm.size >= 4 * RATE, f"only {pcm.size / RATE:.1f} s of {value}"
            figures.append((json.loads(value)["title"], integrated_loudness(pcm)))
        peak = true_peak_db(everything)
        clipped = int(np.sum(np.abs(everything.astype(np.int32)) >= 32767))
        print(
            f"\ntracks: {[(t, round(v, 2)) for t, v in figures]}, true peak {peak:.2f} dBTP, "
            f"{clipped} clipped, over {everything.size / RATE:.0f} s"
        )
        for title, loudness in figures:
            assert abs(loudness - TARGET_LUFS) <= 1.0, f"{title}: {loudness:.2f} LUFS"
        assert peak <= CEILING_DBTP, f"true peak {peak:.2f} dBTP"
        assert clipped == 0, f"{clipped} clipped samples"
    finally:
        await listener.leave()


async def test_sound_within_a_second_of_joining_and_the_bed_under_the_voice(
    offline_station: Station,
) -> None:
    """Ten listeners join one after another: each hears the station within 1 s (p95). Over the
    anchor listener's recording, the bed (a 55 Hz tone here, to tell it from the voice) sits at
    least 10 dB under the voice while the host speaks."""
    _tone_bed(offline_station.prompts)
    anchor, first = await _start(offline_station)
    waits: list[float] = []
    try:
        for i in range(10):
            joiner = Listener(offline_station, f"joiner-{i}")
            began = time.monotonic()
            await joiner.join()
            heard = await joiner.hears_host(5, since=began, level=LOUD)
            await joiner.leave()
            waits.append((heard - began) if heard is not None else 5.0)
            await asyncio.sleep(0.3)
        p95 = float(np.percentile(waits, 95, method="linear"))
        print(f"\njoin → first sound: {[round(w, 2) for w in waits]}, p95 {p95:.2f} s")
        assert p95 <= 1.0, f"join → first sound p95 {p95:.2f} s ({waits})"

        await asyncio.sleep(max(0.0, first + 30 - time.monotonic()))  # enough speech to read
        under = _bed_under_voice(anchor.pcm(first, time.monotonic()))
        print(
            f"bed under the voice: median {np.median(under):.1f} dB, min {min(under):.1f} dB "
            f"over {len(under)} speech windows"
        )
        assert len(under) >= 20, "too little speech over the bed to measure"
        assert float(np.percentile(under, 10)) >= 10.0, (
            f"the bed is not ducked: {sorted(under)[:5]}"
        )
    finally:
        await anchor.leave()


def _bed_under_voice(pcm: np.ndarray, hz: float = 55.0) -> list[float]:
    """dB between the voice and the bed in each 200 ms window of speech that follows speech
    (the duck has an 80 ms attack: a phrase's first window is left out)."""
    n = RATE // 5  # 200 ms: 11 whole cycles of 55 Hz
    t = np.arange(n) / RATE
    cos, sin = np.cos(2 * np.pi * hz * t), np.sin(2 * np.pi * hz * t)
    out, before = [], False
    for i in range(0, pcm.size - n, n):
        x = pcm[i : i + n].astype(np.float64) / 32768
        total = float(np.mean(x * x))
        tone = 2.0 * (np.dot(x, cos) ** 2 + np.dot(x, sin) ** 2) / n / n
        voice = max(total - tone, 1e-12)
        speech = 10 * np.log10(voice) > -35  # the host is speaking in this window
        if speech and before and tone > 0:
            out.append(10 * np.log10(voice / tone))
        before = speech
    return out


def test_tone_bed_reads_apart_from_speech(tmp_path: Path) -> None:
    """The ducking measurement's instrument: speech alone reads no bed, a bed 15 dB under
    speech reads about 15 dB."""
    from tests.host.conftest import speech_pcm

    speech = speech_pcm().astype(np.float64)
    speech *= 0.1 * 32768 / max(rms(speech.astype(np.int16)), 1)
    t = np.arange(speech.size) / RATE
    bed = np.sin(2 * np.pi * 55 * t) * np.sqrt(2) * 0.1 * 32768 * 10 ** (-15 / 20)
    alone = _bed_under_voice(speech.astype(np.int16))
    mixed = _bed_under_voice((speech + bed).astype(np.int16))
    assert alone and min(alone) > 25
    assert mixed and 12 < float(np.median(mixed)) < 18
    shutil.rmtree(tmp_path, ignore_errors=True)
