"""The audio processor: what leaves it is at the station's loudness, under its ceiling, smooth."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import av
import numpy as np
import pytest

from agent.audio.chain import (
    BedMixer,
    Fader,
    Loop,
    SpeechChain,
    TalkLeveller,
    TruePeakLimiter,
    crossfade,
    edge_envelope,
    fade_curve,
)
from agent.audio.measure import integrated_loudness, true_peak_db
from agent.audio.prepare import MediaError, PreparedSounds, prepare, trim_tail
from agent.audio.samples import BLOCK, SAMPLE_RATE, to_int16

TARGET, CEILING = -16.0, -1.0


def music(seconds: float, rate: int = SAMPLE_RATE, seed: int = 1) -> np.ndarray:
    """Plucked chords with bright harmonics and transients: a peaky, music-like test signal."""
    rng = np.random.default_rng(seed)
    n = int(seconds * rate)
    out = np.zeros(n)
    note = np.arange(int(rate * 1.0)) / rate  # each pluck rings for a second
    for start in range(0, n, rate // 2):
        root = 110 * 2 ** (rng.integers(0, 12) / 12)
        pluck = sum(
            np.sin(2 * np.pi * root * ratio * h * note) / h**1.2
            for ratio in (1, 1.26, 1.5, 2)
            for h in range(1, 10)
        ) * np.exp(-note * 6)
        end = min(n, start + note.size)
        out[start:end] += pluck[: end - start]
    return (out / np.abs(out).max()).astype(np.float32)


def speechlike(seconds: float, seed: int = 2) -> np.ndarray:
    """Voiced syllables (a gliding pitch with harmonics), breathy noise and pauses."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    f0 = 140 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SAMPLE_RATE
    voiced = sum(np.sin(h * phase) / h for h in range(1, 25))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 0.5
    phrases = (np.sin(2 * np.pi * t / 3.1) > -0.5).astype(float)  # a pause every 3 s
    noise = rng.standard_normal(n) * 0.1
    x = (voiced + noise) * syllables * phrases
    return (x / np.abs(x).max()).astype(np.float32)


def write(path: Path, samples: np.ndarray, rate: int, codec: str, channels: int = 1) -> Path:
    """Encode samples with PyAV, as a producer's exported file would be."""
    layout = "stereo" if channels == 2 else "mono"
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        fmt = stream.codec_context.codec.audio_formats[0].name
        data = np.tile(samples, (channels, 1)).astype(np.float32)
        frame = av.AudioFrame.from_ndarray(data, format="fltp", layout=layout)
        frame.sample_rate = rate
        for converted in av.AudioResampler(format=fmt, layout=layout, rate=rate).resample(frame):
            for packet in stream.encode(converted):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


def clipped(x: np.ndarray) -> int:
    full = 32767 if x.dtype == np.int16 else 32767 / 32768
    return int(np.sum(np.abs(x.astype(np.float64)) >= full))


# --- files ---------------------------------------------------------------------------------


def test_too_loud_stereo_mp3_at_44_1_khz_ends_at_the_target(tmp_path: Path) -> None:
    # Mastered far too hot: at full scale, about -8 LUFS, clipping-level peaks.
    loud = np.tanh(music(12, rate=44_100) * 4).astype(np.float32)
    path = write(tmp_path / "loud.mp3", loud, 44_100, "libmp3lame", channels=2)
    assert integrated_loudness(loud, 44_100) > -10
    sound = prepare(path, TARGET, CEILING)
    assert sound.dtype == np.float32
    assert abs(sound.size / SAMPLE_RATE - 12) < 0.2  # resampled to 48 kHz, nothing lost
    assert abs(integrated_loudness(sound) - TARGET) <= 1.0
    assert true_peak_db(sound) <= CEILING
    assert clipped(sound) == 0


def test_too_quiet_wav_at_22_khz_ends_at_the_target(tmp_path: Path) -> None:
    quiet = music(12, rate=22_050) * 0.02  # about -36 LUFS: 20 dB of gain to find
    path = write(tmp_path / "quiet.wav", quiet, 22_050, "pcm_s16le")
    assert integrated_loudness(quiet, 22_050) < -30
    sound = prepare(path, TARGET, CEILING)
    assert abs(integrated_loudness(sound) - TARGET) <= 1.0
    assert true_peak_db(sound) <= CEILING
    assert clipped(sound) == 0


def test_another_station_target_is_met(tmp_path: Path) -> None:
    path = write(tmp_path / "a.flac", music(10) * 0.5, SAMPLE_RATE, "flac")
    sound = prepare(path, -23.0, -2.0)  # EBU R128 broadcast
    assert abs(integrated_loudness(sound) - (-23.0)) <= 1.0
    assert true_peak_db(sound) <= -2.0


def test_a_file_that_is_not_audio_is_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "notes.mp3"
    path.write_text("this is a text file with the wrong ending\n" * 20)
    with pytest.raises(MediaError, match="cannot be decoded"):
        prepare(path)


def test_a_silent_file_is_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "silence.wav", np.zeros(SAMPLE_RATE * 2, np.float32), 48_000, "pcm_s16le"
    )
    with pytest.raises(MediaError, match="silent"):
        prepare(path)


def test_prepared_sounds_are_kept_until_the_file_changes(tmp_path: Path) -> None:
    path = write(tmp_path / "a.flac", music(3) * 0.5, SAMPLE_RATE, "flac")
    shelf = PreparedSounds(TARGET, CEILING)
    first = shelf.get(path)
    assert shelf.get(path) is first  # cached
    write(path, speechlike(4) * 0.5, SAMPLE_RATE, "flac")  # the producer replaced the file
    second = shelf.get(path)
    assert second is not first and abs(second.size / SAMPLE_RATE - 4) < 0.1


# --- live speech ---------------------------------------------------------------------------


def through(chain: SpeechChain, x: np.ndarray, block: int = BLOCK) -> np.ndarray:
    pcm = to_int16(np.clip(x, -1, 32767 / 32768))
    return np.concatenate([chain.process(pcm[i : i + block]) for i in range(0, pcm.size, block)])


@pytest.mark.parametrize("scale", [2.0, 0.1], ids=["hot-and-clipping", "quiet"])
def test_speech_is_levelled_to_the_target_under_the_ceiling(scale: float) -> None:
    # speechlike() is about -14 LUFS: x2 clips at full scale (-8 LUFS), x0.1 is about -34 LUFS.
    x = speechlike(24) * scale
    out = through(SpeechChain(TARGET, CEILING), x)
    assert out.dtype == np.int16 and out.size == x.size
    settled = out[out.size // 3 :]  # after the leveller's first seconds
    assert abs(integrated_loudness(settled) - TARGET) <= 1.0, integrated_loudness(settled)
    assert true_peak_db(out) <= CEILING
    assert clipped(out) == 0


def test_speech_gain_moves_slowly_and_holds_through_pauses() -> None:
    chain = SpeechChain(TARGET, CEILING)
    x = speechlike(12) * 0.3
    gains = []
    pcm = to_int16(x)
    for i in range(0, pcm.size, BLOCK):
        chain.process(pcm[i : i + BLOCK])
        gains.append(chain.gain_db)
    steps = np.abs(np.diff(gains[300:]))  # after settling
    assert steps.max() <= 0.02 + 1e-9  # 2 dB/s at most: no pumping
    before = chain.gain_db
    through(chain, np.zeros(SAMPLE_RATE * 3, np.float32))  # three seconds of silence
    assert chain.gain_db == before  # a pause does not pull the gain up


def test_block_size_and_block_joins_leave_no_trace() -> None:
    x = speechlike(6) * 0.8
    ten = through(SpeechChain(), x, 480)
    twenty = through(SpeechChain(), x, 960)
    odd = through(SpeechChain(), x, 441)  # joins fall anywhere in the 10 ms grid
    assert np.array_equal(ten, twenty)
    assert np.max(np.abs(ten.astype(int) - odd.astype(int))) <= 1


def test_no_click_when_the_gain_moves() -> None:
    # A steady tone whose level jumps by 20 dB: the chain's gain swings, the tone stays smooth.
    t = np.arange(SAMPLE_RATE * 4) / SAMPLE_RATE
    level = 0.02 + 0.18 * np.clip((t - 2) / 0.1, 0, 1)  # up 20 dB over 100 ms at 2 s
    tone = (level * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    out = through(SpeechChain(), tone).astype(np.float64) / 32768
    # For a sine of amplitude A the biggest sample-to-sample step is about 2*pi*f/fs*A; a click
    # (a step in gain) would jump far past it. Checked per 10 ms window against its own level.
    windows = out[: out.size // BLOCK * BLOCK].reshape(-1, BLOCK)
    steps = np.abs(np.diff(windows, axis=1)).max(axis=1)
    amplitude = np.abs(windows).max(axis=1)
    bound = 2 * np.pi * 440 / SAMPLE_RATE * amplitude * 1.1 + 2 / 32768
    joins = np.abs(np.diff(out))[BLOCK - 1 :: BLOCK][: windows.shape[0] - 1]
    assert np.all(steps <= bound)
    assert np.all(joins <= bound[1:])


def test_limiter_holds_true_peaks_of_hot_music_and_keeps_its_latency() -> None:
    limiter = TruePeakLimiter(CEILING)
    x = music(6) * 2.0  # 6 dB over full scale
    out = np.concatenate([limiter.process(x[i : i + 480]) for i in range(0, x.size, 480)])
    assert out.size == x.size
    assert true_peak_db(out[limiter.latency :]) <= CEILING
    impulse = np.zeros(2400, np.float32)
    impulse[100] = 0.1
    assert (
        int(np.argmax(np.abs(TruePeakLimiter(CEILING).process(impulse)))) == 100 + limiter.latency
    )


def test_speech_chain_is_cheap_enough_for_100_blocks_a_second() -> None:
    chain = SpeechChain()
    pcm = to_int16(speechlike(5) * 0.5)
    started = time.perf_counter()
    for i in range(0, pcm.size, BLOCK):
        chain.process(pcm[i : i + BLOCK])
    per_block = (time.perf_counter() - started) / (pcm.size / BLOCK)
    assert per_block < 0.002  # 20% of the block's own 10 ms even on a loaded 2-core machine


# --- the talk's loudness ------------------------------------------------------------------


def talk_with_bed(seconds: float, bed_lu: float = -10.0) -> np.ndarray:
    """Speech whose speech-only loudness is the target, with a bed `bed_lu` under it filling
    its pauses (as the mixer's open bed does): a listener's meter reads it under the target."""
    speech = speechlike(seconds)
    speech *= 10 ** ((TARGET - integrated_loudness(speech)) / 20)
    pauses = np.abs(speech) < 1e-4
    bed = music(seconds, seed=5)
    bed *= 10 ** ((TARGET + bed_lu - integrated_loudness(bed)) / 20)
    return (speech + bed * pauses).astype(np.float32)


def trimmed(
    leveller: TalkLeveller, x: np.ndarray, *, talk: bool = True
) -> tuple[np.ndarray, list[float]]:
    """`x` through the trim and the limiter, the trim reading what aired, as the mixer does."""
    limiter = TruePeakLimiter(CEILING)
    out, gains = [], []
    for i in range(0, x.size - BLOCK + 1, BLOCK):
        aired = limiter.process(leveller.level(x[i : i + BLOCK]))
        leveller.heard(aired, talk=talk)
        out.append(aired)
        gains.append(leveller.gain_db)
    return np.concatenate(out), gains


def test_talk_with_its_bed_airs_at_the_target() -> None:
    x = talk_with_bed(60)
    untrimmed, _ = trimmed(TalkLeveller(TARGET, max_gain_db=0.0), x)
    assert integrated_loudness(untrimmed) < TARGET - 0.5  # the gap the trim is for
    out, gains = trimmed(TalkLeveller(TARGET), x)
    assert abs(integrated_loudness(out[20 * SAMPLE_RATE :]) - TARGET) <= 0.3
    assert abs(integrated_loudness(out) - TARGET) <= 0.5  # the first seconds included
    assert true_peak_db(out) <= CEILING
    # A trim is small and slow: at most 0.5 dB a second, never past its range.
    assert max(abs(a - b) for a, b in itertools.pairwise(gains)) <= 0.005 + 1e-9
    assert max(abs(g) for g in gains) <= 3.0


def test_talk_trim_holds_through_silence_a_bed_alone_and_a_track() -> None:
    leveller = TalkLeveller(TARGET)
    trimmed(leveller, talk_with_bed(20))
    before = leveller.gain_db
    assert before > 0.3  # it was lifting the talk
    trimmed(leveller, np.zeros(SAMPLE_RATE * 3, np.float32))  # a silence
    bed = music(5, seed=5)
    bed *= 10 ** ((TARGET - 10 - integrated_loudness(bed)) / 20)
    trimmed(leveller, bed)  # the bed alone between lines: it does not swell
    trimmed(leveller, music(5) * 0.05, talk=False)  # a quiet track: not the talk's level
    # The talk's last 400 ms still count (at most 0.2 dB); 13 s free would have been 6.5 dB.
    assert abs(leveller.gain_db - before) <= 0.1


def test_talk_trim_is_a_trim() -> None:
    # 5 LU under (the voice's leveller would have caught that): lifted by 3 dB, no more.
    x = speechlike(20)
    x *= 10 ** ((TARGET - 5 - integrated_loudness(x)) / 20)
    _, gains = trimmed(TalkLeveller(TARGET), x)
    assert gains[-1] == pytest.approx(3.0)


def test_talk_trim_is_cheap_enough_for_100_blocks_a_second() -> None:
    leveller = TalkLeveller(TARGET)
    x = talk_with_bed(10)
    started = time.perf_counter()
    for i in range(0, x.size - BLOCK + 1, BLOCK):
        leveller.heard(leveller.level(x[i : i + BLOCK]), talk=True)
    per_block = (time.perf_counter() - started) / (x.size / BLOCK)
    assert per_block < 0.001  # 10% of the block's own 10 ms even on a loaded 2-core machine


# --- bed under the voice -------------------------------------------------------------------


def test_bed_is_ducked_at_least_10_db_under_speech_and_glides_back() -> None:
    seconds = 8
    n = SAMPLE_RATE * seconds
    t = np.arange(n) / SAMPLE_RATE
    voice = speechlike(seconds) * 0.4
    voice[t >= 5] = 0  # the host stops talking at 5 s
    # A bed at the same loudness as the voice, as prepare() makes both.
    bed = music(seconds, seed=7) * 0.4
    bed *= 10 ** ((integrated_loudness(voice[t < 5]) - integrated_loudness(bed)) / 20)
    with_bed, voice_only = BedMixer(CEILING), BedMixer(CEILING)
    mixed, alone, gains = [], [], []
    for i in range(0, n, BLOCK):
        mixed.append(with_bed.mix(voice[i : i + BLOCK], bed[i : i + BLOCK]))
        alone.append(voice_only.mix(voice[i : i + BLOCK], None))
        gains.append(with_bed.bed_gain_db)
    out, ref = np.concatenate(mixed), np.concatenate(alone)
    assert true_peak_db(out) <= CEILING and clipped(out) == 0
    lat = with_bed.limiter.latency
    bed_heard = (out.astype(np.float64) - ref) / 32768  # the bed's part of what aired
    talk = slice(SAMPLE_RATE + lat, 5 * SAMPLE_RATE + lat)  # speech present (after the attack)
    voice_lufs = integrated_loudness(ref[talk])
    bed_lufs = integrated_loudness(bed_heard[talk])
    assert voice_lufs - bed_lufs >= 10, (voice_lufs, bed_lufs)
    # After the talk the bed comes back up, gliding: no gain step bigger than 1.5 dB per 10 ms.
    assert gains[-1] == pytest.approx(with_bed.open_db)
    assert max(abs(a - b) for a, b in itertools.pairwise(gains)) <= 1.5
    after = slice(7 * SAMPLE_RATE + lat, 8 * SAMPLE_RATE)
    assert integrated_loudness(bed_heard[after]) - bed_lufs >= 8  # it really came back up


def test_mixer_with_nothing_to_mix_returns_silence() -> None:
    mixer = BedMixer()
    assert mixer.mix(None, None).size == 0
    assert not mixer.mix(None, np.zeros(BLOCK, np.float32)).any()


def test_a_loop_wraps_round_without_a_gap() -> None:
    sound = np.arange(1000, dtype=np.float32)
    loop = Loop(sound)
    out = np.concatenate([loop.next(BLOCK) for _ in range(5)])
    assert np.array_equal(out, np.resize(sound, 5 * BLOCK))


def test_the_house_bed_joins_end_to_start_without_a_click() -> None:
    bed = prepare(next((Path(__file__).parents[2] / "prompts/media/beds").glob("*.ogg")))
    join = np.concatenate([bed[-BLOCK:], bed[:BLOCK]])
    inner = np.abs(np.diff(bed[: SAMPLE_RATE * 5])).max()
    assert np.abs(np.diff(join)).max() <= inner * 1.5  # the seam is no sharper than the music


def test_mixer_keeps_the_voice_block_length_when_the_bed_runs_short() -> None:
    mixer = BedMixer()
    voice = np.zeros(BLOCK, np.int16)
    assert mixer.mix(voice, np.ones(100, np.float32) * 0.1).size == BLOCK
    assert mixer.mix(voice, np.ones(2 * BLOCK, np.float32) * 0.1).size == BLOCK


# --- fades ---------------------------------------------------------------------------------


def test_edge_envelope_block_by_block_is_the_whole_envelope() -> None:
    length, fade = 10_000, 960
    whole = edge_envelope(length, 0, length, fade, fade)
    blocks = np.concatenate(
        [edge_envelope(length, i, 480, fade, fade) for i in range(0, length, 480)]
    )[:length]
    assert np.array_equal(whole, blocks)
    assert whole[0] < 0.01 and whole[-1] < 0.01 and whole[length // 2] == 1.0
    assert np.abs(np.diff(whole)).max() < 4 / fade  # a glide, not a step
    assert not edge_envelope(length, length, 480).any()  # past the end: silence


def test_crossfade_keeps_the_length_and_the_power() -> None:
    a = np.ones(4800, np.float32) * 0.5
    b = np.ones(4800, np.float32) * 0.5
    joined = crossfade(a, b, 960)
    assert joined.size == 4800 + 4800 - 960
    rise = fade_curve(960)
    assert rise[0] < 0.01 and rise[-1] > 0.99
    # Uncorrelated material keeps its power through the join with equal-power curves.
    rng = np.random.default_rng(3)
    x, y = (
        rng.standard_normal(9600).astype(np.float32),
        rng.standard_normal(9600).astype(np.float32),
    )
    middle = crossfade(x, y, 4800)[4800:9600]
    assert abs(10 * np.log10(np.mean(middle**2))) < 0.5


def test_fader_glides_to_silence_for_a_cut() -> None:
    fader = Fader(1.0)
    fader.to(0.0, 0.05)  # 50 ms
    tone = (0.5 * np.sin(2 * np.pi * 440 * np.arange(BLOCK * 10) / SAMPLE_RATE)).astype(np.float32)
    out = np.concatenate([fader.apply(tone[i : i + BLOCK]) for i in range(0, tone.size, BLOCK)])
    assert fader.done and fader.gain == 0.0
    assert not out[BLOCK * 5 :].any()  # silent from 50 ms on
    assert np.abs(np.diff(out)).max() <= 2 * np.pi * 440 / SAMPLE_RATE * 0.5 * 1.05


def test_a_track_ends_where_its_sound_does_not_in_its_inaudible_ring_out() -> None:
    """A piece that rings out for seconds under -50 dBFS would leave that much dead air before
    the next item: it ends 50 ms after its last audible block. A quiet passage inside stays."""
    t = np.arange(6 * SAMPLE_RATE) / SAMPLE_RATE
    tone = 0.3 * np.sin(2 * np.pi * 440 * t)
    tone[2 * SAMPLE_RATE : 3 * SAMPLE_RATE] *= 1e-4  # a quiet bar in the middle (-80 dB)
    ring = 0.3 * np.exp(-t[: 4 * SAMPLE_RATE] * 3) * np.sin(2 * np.pi * 440 * t[: 4 * SAMPLE_RATE])
    x = np.concatenate([tone, ring]).astype(np.float32)
    out = trim_tail(x)
    # the ring falls 26 dB/s from -10 dBFS: under -50 dBFS after about 1.5 s
    assert 7.3 < out.size / SAMPLE_RATE < 7.8, out.size / SAMPLE_RATE
    assert np.array_equal(out, x[: out.size])  # nothing inside is touched
    assert np.sqrt(np.mean(out[-BLOCK:] ** 2)) < 10 ** (-48 / 20)  # the cut is inaudible
    assert trim_tail(np.zeros(SAMPLE_RATE, np.float32)).size == SAMPLE_RATE  # nothing to go by
