"""Files made ready for air: decoded, at the station's loudness, under its true-peak ceiling.

`prepare` (music, jingles, beds, idents): PyAV decodes and resamples to 48 kHz mono, pyloudnorm
(ITU-R BS.1770-4) measures, a gain brings the file to the target and the true-peak limiter
holds the ceiling; the inaudible end of its tail is trimmed. CPU-bound: callers run it in a
thread; `PreparedSounds` caches it. No LiveKit, no event loop.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path

import av
import numpy as np

from agent.audio.chain import LIMIT_MARGIN_DB, TruePeakLimiter
from agent.audio.measure import integrated_loudness, true_peak_db
from agent.audio.samples import BLOCK, SAMPLE_RATE, db_to_gain
from programme.model import LONGEST_SECONDS

# A prepared file ends where it last reaches this level, plus a moment (see `trim_tail`).
TAIL_FLOOR_DB = -50.0
TAIL_KEEP = SAMPLE_RATE // 20  # 50 ms


class MediaError(Exception):
    """A file cannot be prepared for air; the message says why, for the as-aired log."""


def decode(path: str | os.PathLike[str]) -> np.ndarray:
    """Any file FFmpeg reads, as 48 kHz mono float32."""
    pieces: list[np.ndarray] = []
    samples, longest = 0, LONGEST_SECONDS * SAMPLE_RATE
    resampler = av.AudioResampler(format="flt", layout="mono", rate=SAMPLE_RATE)
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise MediaError("the file has no sound in it")
            stream = container.streams.audio[0]
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    pieces.append(out.to_ndarray().reshape(-1))
                    samples += pieces[-1].size
                if samples > longest:
                    raise MediaError(f"the file is longer than {LONGEST_SECONDS // 60} minutes")
            for out in resampler.resample(None):
                pieces.append(out.to_ndarray().reshape(-1))
    except (av.FFmpegError, OSError) as exc:
        raise MediaError(f"the file cannot be decoded ({type(exc).__name__})") from exc
    if not pieces:
        raise MediaError("the file holds no sound")
    return np.concatenate(pieces).astype(np.float32, copy=False)


def prepare(
    path: str | os.PathLike[str], target_lufs: float = -16.0, ceiling_dbtp: float = -1.0
) -> np.ndarray:
    """Decode a file and bring it to the station's loudness under its true-peak ceiling.

    Returns 48 kHz mono float32. Raises `MediaError` for a file that cannot air (undecodable,
    silent). Takes about a second per few minutes of audio: run it in a thread.
    """
    x = decode(path)
    return trim_tail(normalise(x, target_lufs, ceiling_dbtp))


def trim_tail(x: np.ndarray, floor_db: float = TAIL_FLOOR_DB) -> np.ndarray:
    """`x` without the inaudible end of its tail: the next item starts where this one fades
    under `floor_db` (10 ms RMS, dBFS, at the station's loudness) for good, as a playout
    system's cue-out point does. The house band's tracks ring out for 3.5-3.8 s under -50 dBFS:
    without this, every track ended in that much dead air. Only the end is trimmed: a
    producer's `intro` seconds count from the file's start."""
    n = x.size // BLOCK
    if n == 0:
        return x
    rms = np.sqrt(np.mean(np.square(x[: n * BLOCK].reshape(n, BLOCK), dtype=np.float64), axis=1))
    audible = np.flatnonzero(rms >= db_to_gain(floor_db))
    if audible.size == 0:
        return x
    return x[: (int(audible[-1]) + 1) * BLOCK + TAIL_KEEP]  # a slice past the end is all of x


def normalise(x: np.ndarray, target_lufs: float, ceiling_dbtp: float) -> np.ndarray:
    """Gain to the target integrated loudness, then limit; repeat while limiting cost loudness."""
    loudness = integrated_loudness(x)
    if not np.isfinite(loudness) or loudness < -70:
        raise MediaError("the file is silent")
    gain_db = target_lufs - loudness
    # A gain alone moves loudness and peak by exactly itself: most files need nothing else,
    # and measuring once halves the time a cold track keeps the air waiting.
    if true_peak_db(x) + gain_db <= ceiling_dbtp - LIMIT_MARGIN_DB:
        return (x * db_to_gain(gain_db)).astype(np.float32)
    y = x
    for _ in range(4):
        y = (x * db_to_gain(gain_db)).astype(np.float32)
        if true_peak_db(y) > ceiling_dbtp - LIMIT_MARGIN_DB:
            y = TruePeakLimiter(ceiling_dbtp).run(y)
        reached = integrated_loudness(y)
        if abs(reached - target_lufs) <= 0.2:
            break
        gain_db += target_lufs - reached
    over = true_peak_db(y) - ceiling_dbtp
    if over > 0:  # the last hundredths of a dB the oversampled limiter can leave
        y = (y * db_to_gain(-over - 0.01)).astype(np.float32)
    return y


class PreparedSounds:
    """Prepared files kept in memory, least recently used out first; safe across threads.

    Keyed by path, modification time and size, so a producer's replaced file is prepared anew.
    """

    def __init__(
        self, target_lufs: float = -16.0, ceiling_dbtp: float = -1.0, max_bytes: int = 256 << 20
    ) -> None:
        self.target_lufs = target_lufs
        self.ceiling_dbtp = ceiling_dbtp
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[str, int, int], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: str | os.PathLike[str]) -> np.ndarray:
        stat = Path(path).stat()
        key = (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        sound = prepare(path, self.target_lufs, self.ceiling_dbtp)
        sound.setflags(write=False)
        with self._lock:
            self._items[key] = sound
            while sum(s.nbytes for s in self._items.values()) > self.max_bytes and self._items:
                self._items.popitem(last=False)
        return sound

    def __len__(self) -> int:
        return len(self._items)
