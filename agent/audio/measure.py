"""Loudness and peak as listeners' meters read them: ITU-R BS.1770-4 (pyloudnorm's filters).

Integrated loudness in LUFS, true peak in dBTP (4x oversampled, BS.1770-4 Annex 2), and the
K-weighting filter for the live leveller's running measurement. Pure: numpy arrays in, numbers
out.
"""

from __future__ import annotations

import numpy as np
import pyloudnorm
from scipy.signal import resample_poly

from agent.audio.samples import SAMPLE_RATE, to_float

OVERSAMPLE = 4  # BS.1770-4 Annex 2: true peak is measured on a 4x oversampled signal


def integrated_loudness(samples: np.ndarray, rate: int = SAMPLE_RATE) -> float:
    """BS.1770-4 integrated loudness in LUFS (-inf for silence)."""
    x = to_float(samples).astype(np.float64)
    shortest = int(0.4 * rate) + 1  # one gating block
    if x.size < shortest:
        x = np.concatenate([x, np.zeros(shortest - x.size)])
    return float(pyloudnorm.Meter(rate).integrated_loudness(x))


def true_peak_db(samples: np.ndarray) -> float:
    """The highest sample or inter-sample peak in dBTP (4x oversampled, in chunks)."""
    x = to_float(samples)
    if x.size == 0:
        return float("-inf")
    pad, step, peak = 64, 1 << 16, 0.0
    for start in range(0, x.size, step):
        lo, hi = max(0, start - pad), min(x.size, start + step + pad)
        up = resample_poly(x[lo:hi].astype(np.float64), OVERSAMPLE, 1)
        inner = up[(start - lo) * OVERSAMPLE : (min(x.size, start + step) - lo) * OVERSAMPLE]
        peak = max(peak, float(np.max(np.abs(inner))))
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


def power_to_lufs(power: float) -> float:
    """A K-weighted mean-square power as loudness (LUFS)."""
    return -0.691 + 10.0 * np.log10(power) if power > 0 else float("-inf")


def lufs_to_power(lufs: float) -> float:
    return float(10.0 ** ((lufs + 0.691) / 10.0))


def k_weighting() -> tuple[np.ndarray, np.ndarray]:
    """pyloudnorm's two BS.1770 K-weighting stages as one filter, to run block by block."""
    meter = pyloudnorm.Meter(SAMPLE_RATE)
    shelf, high_pass = meter._filters["high_shelf"], meter._filters["high_pass"]
    b = np.convolve(shelf.b, high_pass.b) * shelf.passband_gain * high_pass.passband_gain
    return b, np.convolve(shelf.a, high_pass.a)
