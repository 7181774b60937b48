"""The transmitter's mixer, block by block, without a room: silence when nothing plays, the
voice on air, the bed under silence and ducked under speech, a track dipped under the host,
a press that takes the music out quickly, and never a peak over the station's ceiling.

The mixer's 10 ms block is `Transmitter._block` (the mixing task that calls it needs a
published LiveKit track). Test tones sit on whole periods of a block (multiples of 100 Hz),
so each source's level in the mix reads off one FFT bin.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from livekit import rtc

from agent.audio.measure import true_peak_db
from agent.audio.transmitter import BLOCK, CODEC_HEADROOM_DB, RATE, Transmitter, VoiceFeed
from tests.fakes.room import FakeRoom

VOICE_HZ, BED_HZ, TRACK_HZ = 1000, 200, 300


def tone(hz: float, seconds: float, amplitude: float) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (amplitude * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def level_db(x: np.ndarray, hz: float) -> float:
    """The amplitude of the `hz` tone in `x` (a whole number of blocks), in dBFS."""
    spectrum = np.abs(np.fft.rfft(x)) * 2 / x.size
    return float(20 * np.log10(spectrum[round(hz * x.size / RATE)] + 1e-12))


def mix(tx: Transmitter, seconds: float) -> np.ndarray:
    return np.concatenate([tx._block() for _ in range(round(seconds * 100))])


async def say(feed: VoiceFeed, samples: np.ndarray) -> None:
    """The session's voice: one reply, captured and flushed, as livekit-agents does."""
    pcm = (samples * 32767).astype(np.int16)
    await feed.capture_frame(rtc.AudioFrame(pcm.tobytes(), RATE, 1, pcm.size))
    feed.flush()


@pytest.fixture
async def tx() -> Transmitter:
    # Built inside the running loop: the SDK's AudioSource takes the current loop, and the whole
    # suite leaves none set in the main thread (a sync fixture failed there, not alone).
    return Transmitter(FakeRoom())  # type: ignore[arg-type]


def test_silence_when_nothing_plays(tx: Transmitter) -> None:
    out = mix(tx, 0.1)
    assert out.size == 10 * BLOCK and not out.any()
    assert not tx.voice_active


async def test_the_voice_airs_whole_and_then_the_air_is_silent(tx: Transmitter) -> None:
    feed = tx.feed()
    await say(feed, tone(VOICE_HZ, 0.3, 0.25))
    during = mix(tx, 0.3)
    assert tx.voice_active
    assert abs(level_db(during[BLOCK:], VOICE_HZ) - 20 * np.log10(0.25)) < 3  # levelled gently
    after = mix(tx, 0.1)
    assert not tx.voice_active
    assert not after[BLOCK:].any()  # the limiter's delay let out the last of it, then silence


async def test_the_bed_is_open_between_lines_and_ducked_under_the_voice(tx: Transmitter) -> None:
    feed = tx.feed()
    tx.set_bed(tone(BED_HZ, 1.0, 0.2), key="house")
    mix(tx, 1.0)  # fades in
    open_db = level_db(mix(tx, 0.2), BED_HZ)
    assert open_db > 20 * np.log10(0.2) - 12  # about 10 dB under its prepared level
    await say(feed, tone(VOICE_HZ, 0.6, 0.25))
    mix(tx, 0.2)  # the duck's attack
    under = mix(tx, 0.3)
    assert level_db(under, VOICE_HZ) > level_db(under, BED_HZ) + 20  # the voice is clear
    assert level_db(under, BED_HZ) < open_db - 8  # the bed went down under the voice ...
    mix(tx, 2.5)  # the line ends; the hold and the release
    assert level_db(mix(tx, 0.2), BED_HZ) > open_db - 1.5  # ... and came back up after it


async def test_a_track_dips_under_the_host_who_talks_over_its_intro(tx: Transmitter) -> None:
    feed = tx.feed()
    track = asyncio.create_task(tx.play(tone(TRACK_HZ, 5.0, 0.2)))
    await asyncio.sleep(0)
    alone = level_db(mix(tx, 0.3)[BLOCK:], TRACK_HZ)
    assert alone == pytest.approx(20 * np.log10(0.2), abs=1.5)  # a prepared file airs as is
    await say(feed, tone(VOICE_HZ, 0.6, 0.25))
    mix(tx, 0.2)
    under = mix(tx, 0.3)
    assert level_db(under, TRACK_HZ) < alone - 8
    assert level_db(under, VOICE_HZ) > level_db(under, TRACK_HZ) + 10
    track.cancel()
    with pytest.raises(asyncio.CancelledError):
        await track


async def test_a_hush_takes_the_music_and_the_bed_out_within_a_quarter_second(
    tx: Transmitter,
) -> None:
    track = asyncio.create_task(tx.play(tone(TRACK_HZ, 5.0, 0.2)))
    await asyncio.sleep(0)
    tx.set_bed(tone(BED_HZ, 1.0, 0.2), key="house")
    mix(tx, 1.0)
    tx.hush()  # a caller pressed
    assert await asyncio.wait_for(track, 1) < 5.0  # the track's player is told it was cut
    mix(tx, 0.26)  # the quick fade, and the limiter's few ms
    assert np.abs(mix(tx, 0.1)).max() < 1e-4  # nothing plays under the caller


@pytest.mark.parametrize("ceiling", [-1.0, -3.0])
async def test_voice_bed_and_track_at_full_scale_never_pass_the_ceiling(ceiling: float) -> None:
    tx = Transmitter(FakeRoom(), ceiling_dbtp=ceiling)  # type: ignore[arg-type]
    feed = tx.feed()
    rng = np.random.default_rng(7)
    hot = np.clip(rng.standard_normal(RATE * 2) * 0.6, -1, 1).astype(np.float32)
    track = asyncio.create_task(tx.play(np.sign(tone(TRACK_HZ, 2.0, 1.0))))  # a square wave
    await asyncio.sleep(0)
    tx.set_bed(hot, key="hot")
    await say(feed, np.sign(tone(VOICE_HZ, 1.0, 1.0)) * 0.999)
    out = mix(tx, 1.2)
    assert np.abs(out).max() > 0.5  # loud, not muted
    # The limiter keeps the codec's headroom under the station's ceiling.
    assert true_peak_db(out) <= ceiling - CODEC_HEADROOM_DB
    track.cancel()
    with pytest.raises(asyncio.CancelledError):
        await track
