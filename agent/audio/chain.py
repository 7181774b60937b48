"""The live audio chain: everything the host puts on air leaves at one loudness under one ceiling.

Listeners' players and streaming services expect about -16 LUFS integrated with true peaks at or
below -1 dBTP (EBU R128 / AES TD1004); an AI voice, a producer's MP3 and a generated jingle each
arrive at their own level (files are brought to it whole by `agent.audio.prepare`). The live
pieces here bring the rest together, built on well-kept libraries:

- `SpeechChain` (live voice, 10/20 ms blocks): a slow leveller toward the target (BS.1770
  K-weighting, gated so pauses do not pull the gain up) and the true-peak limiter.
- `TalkLeveller`: a slow trim on the voice with its bed, so talk, pauses and bed included,
  integrates to the target as listeners receive it, after the limiter (files are measured
  whole already).
- `TruePeakLimiter`: FFmpeg's look-ahead `alimiter` run at 4x the sample rate (the oversampling
  BS.1770 uses to define true peak), through PyAV's filter graph.
- `BedMixer`: a bed ducked under speech with smooth attack and release, then the limiter
  (`Loop` plays a prepared bed round and round). The same mixer with `open_db=0` lowers a
  track's intro under the host's voice when the host talks over it.
- `Fader` and `edge_envelope`: short fades for item starts, ends and cuts, so nothing clicks.

Pure signal processing: no LiveKit, no event loop, no clock. Blocks are numpy arrays, mono.
"""

from __future__ import annotations

import itertools
from collections import deque
from fractions import Fraction

import av
import numpy as np
from scipy.signal import lfilter

from agent.audio.measure import OVERSAMPLE, k_weighting, lufs_to_power, power_to_lufs
from agent.audio.samples import BLOCK, SAMPLE_RATE, db_to_gain, to_float, to_int16

# The limiter works on the oversampled signal; going back to 48 kHz can move a peak by a few
# hundredths of a dB on speech and music (a few tenths on white noise), so it aims this far
# under the ceiling. Measured in tests/unit/test_sound.py.
LIMIT_MARGIN_DB = 0.3
_LOOKAHEAD_MS = 5.0
_RELEASE_MS = 80.0
# The resampler holds back a few dozen samples; a primed output buffer keeps every block whole.
_PRIME = 64


class TruePeakLimiter:
    """A streaming look-ahead limiter that keeps true peaks at or under the ceiling.

    `process` returns as many samples as it is given, `latency` samples late (about 6 ms).
    """

    def __init__(self, ceiling_dbtp: float = -1.0, *, release_ms: float = _RELEASE_MS) -> None:
        rate = SAMPLE_RATE * OVERSAMPLE
        limit = db_to_gain(ceiling_dbtp - LIMIT_MARGIN_DB)
        graph = av.filter.Graph()
        source = graph.add_abuffer(
            format="flt", sample_rate=SAMPLE_RATE, layout="mono", time_base=Fraction(1, SAMPLE_RATE)
        )
        chain = [
            source,
            graph.add("aresample", str(rate)),
            # level=0: no automatic make-up gain; asc=0: plain release, no programme shaping.
            graph.add(
                "alimiter",
                f"limit={limit:.6f}:attack={_LOOKAHEAD_MS}:release={release_ms}"
                ":level=0:asc=0:latency=0",
            ),
            graph.add("aresample", str(SAMPLE_RATE)),
            graph.add("aformat", "sample_fmts=flt:channel_layouts=mono"),
            graph.add("abuffersink"),
        ]
        for a, b in itertools.pairwise(chain):
            a.link_to(b)
        graph.configure()
        self._graph = graph
        self._pts = 0
        self._out: deque[np.ndarray] = deque([np.zeros(_PRIME, np.float32)])
        self._queued = _PRIME
        self.latency = _PRIME + int(SAMPLE_RATE * _LOOKAHEAD_MS / 1000)

    def process(self, block: np.ndarray) -> np.ndarray:
        """float32 in, float32 out, same length."""
        x = to_float(block)
        n = x.size
        if n == 0:
            return x
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(x).reshape(1, -1), format="flt", layout="mono"
        )
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._pts
        self._pts += n
        self._graph.push(frame)
        while True:
            try:
                out = self._graph.pull()
            except (av.BlockingIOError, av.EOFError):
                break
            samples = out.to_ndarray().reshape(-1)
            self._out.append(samples)
            self._queued += samples.size
        if self._queued < n:  # never seen in steady state; keeps the block whole regardless
            self._out.appendleft(np.zeros(n - self._queued, np.float32))
            self._queued = n
        return self._take(n)

    def _take(self, n: int) -> np.ndarray:
        parts, need = [], n
        while need:
            head = self._out[0]
            if head.size <= need:
                parts.append(self._out.popleft())
                need -= head.size
            else:
                parts.append(head[:need])
                self._out[0] = head[need:]
                need = 0
        self._queued -= n
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def run(self, x: np.ndarray) -> np.ndarray:
        """A whole array at once, delay removed: for files."""
        step = SAMPLE_RATE
        padded = np.concatenate([to_float(x), np.zeros(self.latency, np.float32)])
        out = [self.process(padded[i : i + step]) for i in range(0, padded.size, step)]
        return np.concatenate(out)[self.latency :]


class SpeechChain:
    """Live speech to the station's loudness: `process(int16 block) -> int16 block`.

    The leveller follows the speech's K-weighted loudness over a few seconds (gated, so pauses
    and breaths do not move it) and moves its gain slowly, at most `slew_db_per_s`, so speech
    never pumps; the limiter catches what the gain cannot. The gain is a function of the sample
    position only (it changes on a fixed 10 ms grid, ramped sample by sample), so any block size
    gives the same output and nothing steps at a block join.
    """

    def __init__(
        self,
        target_lufs: float = -16.0,
        ceiling_dbtp: float = -1.0,
        *,
        initial_gain_db: float = 0.0,
        max_gain_db: float = 20.0,
        slew_db_per_s: float = 2.0,
        settle_db_per_s: float = 12.0,
        settle_s: float = 2.0,
        window_s: float = 3.0,
    ) -> None:
        self.target_lufs = target_lufs
        self.max_gain_db = max_gain_db
        self._slew = slew_db_per_s / 100  # dB per 10 ms step
        self._settle = settle_db_per_s / 100
        self._settle_steps = int(settle_s * 100)
        self._alpha = 0.01 / window_s
        self._b, self._a = k_weighting()
        self._zi = np.zeros(self._a.size - 1)
        self._recent: deque[float] = deque(maxlen=40)  # 400 ms of 10 ms powers: momentary
        self._recent_sum = 0.0
        self._level: float | None = None  # mean-square power of the speech, K-weighted
        self._active_steps = 0
        self._gain_db = initial_gain_db
        self._from = self._to = db_to_gain(initial_gain_db)
        self._pos = 0  # samples into the current 10 ms step
        self._power = 0.0
        self.limiter = TruePeakLimiter(ceiling_dbtp)

    @property
    def gain_db(self) -> float:
        return self._gain_db

    @property
    def latency(self) -> int:
        return self.limiter.latency

    def process(self, block: np.ndarray) -> np.ndarray:
        limited = self.limiter.process(self.level(block))
        return to_int16(limited) if block.dtype == np.int16 else limited

    def level(self, block: np.ndarray) -> np.ndarray:
        """The leveller alone (float32 out, no delay): for a mix that limits once, after
        the sum."""
        x = to_float(block)
        out = np.empty_like(x)
        done = 0
        while done < x.size:
            take = min(BLOCK - self._pos, x.size - done)
            piece = x[done : done + take]
            weighted, self._zi = lfilter(self._b, self._a, piece, zi=self._zi)
            self._power += float(np.dot(weighted, weighted))
            steps = np.arange(self._pos + 1, self._pos + take + 1, dtype=np.float32) / BLOCK
            out[done : done + take] = piece * (self._from + (self._to - self._from) * steps)
            self._pos += take
            done += take
            if self._pos == BLOCK:
                self._step(self._power / BLOCK)
                self._pos, self._power = 0, 0.0
        return out

    def _step(self, power: float) -> None:
        """Every 10 ms: update the speech level and move the gain one step toward the target."""
        if len(self._recent) == self._recent.maxlen:
            self._recent_sum -= self._recent[0]
        self._recent.append(power)
        self._recent_sum += power
        momentary = max(0.0, self._recent_sum) / len(self._recent)
        loud = power_to_lufs(momentary)
        speech = loud > -55 and (self._level is None or loud > power_to_lufs(self._level) - 20)
        if speech:
            if self._level is None:
                self._level = momentary
            else:
                alpha = self._alpha * (4 if self._active_steps < self._settle_steps else 1)
                self._level += alpha * (momentary - self._level)
            self._active_steps += 1
            want = self.target_lufs - power_to_lufs(self._level)
            want = min(self.max_gain_db, max(-self.max_gain_db, want))
            rate = self._settle if self._active_steps < self._settle_steps else self._slew
            self._gain_db += min(rate, max(-rate, want - self._gain_db))
        self._from, self._to = self._to, db_to_gain(self._gain_db)


class TalkLeveller:
    """The talk's loudness controller: a slow trim on the voice with its bed, so a stretch of
    talk reaches listeners at the target as their meter integrates it.

    Files are brought to the target as a whole when they are prepared, limiter included; the
    voice's leveller aims its speech at it before the limiter and leaves pauses out, as it must
    to stay steady. What airs of the talk reads up to about 1 LU under the target: the pauses
    inside and between lines and the bed that fills them count toward BS.1770's integrated
    loudness, and the one limiter takes the offline voice's sharp peaks off (its lines over
    the house bed, mixed offline: -15.9 LUFS before the limiter, -17.0 after).

    A broadcast chain closes that with a slow programme AGC. This one reads what aired
    (`heard`, after the limiter) as BS.1770-4 integrates it (400 ms K-weighted blocks every
    100 ms, absolute gate -70 LUFS, relative gate -10 LU) over the last `window_s` of talk,
    its own gain taken out so the figure does not chase itself, and moves toward the
    difference at most `slew_db_per_s`, within +-`max_gain_db` (a trim: the voice is levelled
    already). Blocks with a track in them do not count (the track was measured when it was
    prepared), and the gain moves only while speech is on (the last 400 ms within `active_lu`
    of the target), so a bed alone between lines, a silence or a track never makes it swell.

    Hand-written because the library controllers look ahead: FFmpeg's `loudnorm` (dynamic
    mode) holds 3 s and `dynaudnorm` seconds, a delay on every reply and on a caller's cut.
    This one adds no delay; its meter is pyloudnorm's BS.1770 filters.
    """

    def __init__(
        self,
        target_lufs: float = -16.0,
        *,
        window_s: float = 20.0,
        slew_db_per_s: float = 0.5,
        max_gain_db: float = 3.0,
        least_s: float = 3.0,
        active_lu: float = 8.0,
    ) -> None:
        self.target_lufs = target_lufs
        self.max_gain_db = max_gain_db
        self._slew = slew_db_per_s / 100  # dB per 10 ms
        self._least = int(least_s * 10)  # gated blocks before the first move
        self._active = lufs_to_power(target_lufs - active_lu)
        self._b, self._a = k_weighting()
        self._zi = np.zeros(self._a.size - 1)
        self._steps: deque[float] = deque(maxlen=40)  # 10 ms powers: one 400 ms block
        self._blocks: deque[float] = deque(maxlen=int(window_s * 10))  # audible block powers
        self._count = 0
        self._want = 0.0
        self._gain_db = 0.0
        self._gain = 1.0
        self._moving = False  # speech is on: the gain may move

    @property
    def gain_db(self) -> float:
        return self._gain_db

    @property
    def measured_lufs(self) -> float:
        """The talk as it aired over the window, without the trim (-inf before there is
        enough)."""
        gated = self._gated()
        return power_to_lufs(gated) if gated is not None else float("-inf")

    def level(self, talk: np.ndarray) -> np.ndarray:
        """The talk trimmed (float32). The gain moves 0.005 dB per 10 ms at most: far too
        little a step to be heard, so it needs no ramp."""
        return to_float(talk) * np.float32(self._gain)

    def heard(self, aired: np.ndarray, talk: bool) -> None:
        """Every 10 ms: the block that aired (after the limiter); `talk`: no track was in it."""
        weighted, self._zi = lfilter(self._b, self._a, to_float(aired), zi=self._zi)
        if not talk:
            self._steps.clear()  # a block is counted only if it was all talk
            self._moving = False
            return
        self._steps.append(float(np.mean(weighted * weighted)) / (self._gain * self._gain))
        self._count += 1
        if self._count % 10 == 0 and len(self._steps) == self._steps.maxlen:  # every 100 ms
            block = sum(self._steps) / len(self._steps)
            if block > lufs_to_power(-70.0):
                self._blocks.append(block)
            gated = self._gated()
            self._moving = gated is not None and block * self._gain**2 > self._active
            if self._moving and gated is not None:
                want = self.target_lufs - power_to_lufs(gated)
                self._want = min(self.max_gain_db, max(-self.max_gain_db, want))
        if self._moving:
            self._gain_db += min(self._slew, max(-self._slew, self._want - self._gain_db))
            self._gain = db_to_gain(self._gain_db)

    def _gated(self) -> float | None:
        """BS.1770-4's gated mean power of the window's blocks (None while fewer than
        `least_s` of blocks pass the relative gate)."""
        blocks = np.fromiter(self._blocks, float, len(self._blocks))
        passed = blocks[blocks > np.mean(blocks) / 10.0] if blocks.size else blocks  # -10 LU
        return float(np.mean(passed)) if passed.size >= self._least else None


class BedMixer:
    """The bed under the voice: `mix(voice | None, bed | None) -> int16 block`.

    While speech is present the bed sits `duck_db` under its prepared level (voice and bed are
    both prepared to the station's loudness, so that is how far under the voice it is); between
    phrases it comes back to `open_db`. The gain glides, never steps: `attack_ms` going down,
    `release_ms` coming back, after `hold_ms` of quiet so it does not bounce between words.
    The sum passes the true-peak limiter.
    """

    def __init__(
        self,
        ceiling_dbtp: float = -1.0,
        *,
        duck_db: float = -20.0,
        open_db: float = -10.0,
        attack_ms: float = 80.0,
        release_ms: float = 900.0,
        hold_ms: float = 400.0,
        speech_dbfs: float = -45.0,
    ) -> None:
        self.duck_db = duck_db
        self.open_db = open_db
        span = open_db - duck_db
        self._down = span / (attack_ms * SAMPLE_RATE / 1000)  # dB per sample
        self._up = span / (release_ms * SAMPLE_RATE / 1000)
        self._hold = int(hold_ms * SAMPLE_RATE / 1000)
        self._threshold = db_to_gain(speech_dbfs)
        self._quiet = self._hold  # samples since speech was last heard
        self._gain_db = open_db
        self.limiter = TruePeakLimiter(ceiling_dbtp)

    @property
    def bed_gain_db(self) -> float:
        return self._gain_db

    def mix(self, voice: np.ndarray | None, bed: np.ndarray | None) -> np.ndarray:
        v = None if voice is None else to_float(voice)
        b = None if bed is None else to_float(bed)
        # The voice sets the block's length; a bed block that is short (the end of its loop)
        # is padded with silence, a long one cut.
        n = v.size if v is not None else (b.size if b is not None else 0)
        if n == 0:
            return np.zeros(0, np.int16)
        if b is not None and b.size != n:
            b = np.concatenate([b[:n], np.zeros(max(0, n - b.size), np.float32)])
        out = np.zeros(n, np.float32) if v is None else v.copy()
        ducked = self.duck(v if v is not None else np.zeros(n, np.float32), b)
        if ducked is not None:
            out += ducked
        return to_int16(self.limiter.process(out))

    def duck(self, key: np.ndarray, bed: np.ndarray | None) -> np.ndarray | None:
        """The bed at its ducking gain for this block (float32, no limiter), keyed by `key`
        (the speech, or anything the bed must sit under); None without a bed. For a mix that
        limits once, after the sum."""
        v, b, n = to_float(key), None if bed is None else to_float(bed), key.size
        speaking = float(np.sqrt(np.mean(v * v))) > self._threshold if n else False
        self._quiet = 0 if speaking else self._quiet + n
        target = self.duck_db if self._quiet < self._hold else self.open_db
        start = self._gain_db
        if target < start:
            end = max(target, start - self._down * n)
        else:
            end = min(target, start + self._up * n)
        self._gain_db = end
        if b is None:
            return None
        ramp = np.linspace(start, end, n + 1, dtype=np.float32)[1:]
        return b * np.power(10.0, ramp / 20.0, dtype=np.float32)


class Loop:
    """A prepared bed played round and round: `next(n)` gives its next n samples, wrapping
    from the end to the start without a gap (the house bed is made to join seamlessly)."""

    def __init__(self, sound: np.ndarray) -> None:
        if sound.size == 0:
            raise ValueError("a loop needs some sound")
        self.sound = to_float(sound)
        self.position = 0

    def next(self, n: int) -> np.ndarray:
        out = np.empty(n, np.float32)
        done = 0
        while done < n:
            take = min(n - done, self.sound.size - self.position)
            out[done : done + take] = self.sound[self.position : self.position + take]
            done += take
            self.position = (self.position + take) % self.sound.size
        return out


# ---------------------------------------------------------------------------------------------
# Fades


def fade_curve(n: int) -> np.ndarray:
    """A raised-cosine rise from 0 to 1 over n samples (reverse it to fall)."""
    if n <= 0:
        return np.ones(0, np.float32)
    t = (np.arange(n, dtype=np.float64) + 0.5) / n
    return (0.5 - 0.5 * np.cos(np.pi * t)).astype(np.float32)


def edge_envelope(
    length: int, start: int, count: int, fade_in: int = 0, fade_out: int = 0
) -> np.ndarray:
    """Gains for samples [start, start+count) of an item `length` samples long, faded at its
    edges: multiply each block of the item by it as it airs."""
    pos = np.arange(start, start + count)
    gain = np.ones(count, np.float32)
    if fade_in > 0:
        rise = fade_curve(fade_in)
        inside = pos < fade_in
        gain[inside] = rise[pos[inside]]
    if fade_out > 0:
        fall = fade_curve(fade_out)[::-1]
        tail = (pos >= length - fade_out) & (pos < length)
        gain[tail] *= fall[pos[tail] - (length - fade_out)]
    gain[pos >= length] = 0.0
    return gain


def crossfade(outgoing: np.ndarray, incoming: np.ndarray, samples: int) -> np.ndarray:
    """Join two prepared items, overlapping the last and first `samples` with equal-power fades
    (two unrelated sounds keep their loudness through the join)."""
    a, b = to_float(outgoing), to_float(incoming)
    n = min(samples, a.size, b.size)
    if n == 0:
        return np.concatenate([a, b])
    rise = np.sin(0.5 * np.pi * fade_curve(n))
    fall = np.sin(0.5 * np.pi * fade_curve(n)[::-1])
    middle = a[a.size - n :] * fall + b[:n] * rise
    return np.concatenate([a[: a.size - n], middle.astype(np.float32), b[n:]])


class Fader:
    """A gain that glides to a new value over a given time: fades for cuts and bed changes.

    `fader.to(0.0, 0.3)` then `fader.apply(block)` for each block; `done` when it got there.
    """

    def __init__(self, gain: float = 1.0) -> None:
        self.gain = gain
        self._target = gain
        self._step = 0.0

    def to(self, gain: float, seconds: float) -> None:
        self._target = gain
        samples = max(1, int(seconds * SAMPLE_RATE))
        self._step = abs(gain - self.gain) / samples

    @property
    def done(self) -> bool:
        return self.gain == self._target

    def apply(self, block: np.ndarray) -> np.ndarray:
        x = to_float(block)
        n = x.size
        out: np.ndarray
        if self.done:
            out = x * np.float32(self.gain)
        else:
            direction = 1.0 if self._target > self.gain else -1.0
            ramp: np.ndarray = self.gain + direction * self._step * np.arange(1, n + 1)
            ramp = (
                np.minimum(ramp, self._target) if direction > 0 else np.maximum(ramp, self._target)
            )
            self.gain = float(ramp[-1])
            out = x * ramp.astype(np.float32)
        return to_int16(out) if block.dtype == np.int16 else out.astype(np.float32)
