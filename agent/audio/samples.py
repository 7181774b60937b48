"""The station's samples: 48 kHz mono, 10 ms blocks, float32 in [-1, 1) inside the chain and
int16 at its edges (LiveKit frames)."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 48_000
BLOCK = SAMPLE_RATE // 100  # 10 ms: the leveller's analysis step
INT16_SCALE = 32768.0


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def to_float(block: np.ndarray) -> np.ndarray:
    """int16 (LiveKit frames) or float blocks as float32 in [-1, 1)."""
    if block.dtype == np.int16:
        return block.astype(np.float32) / INT16_SCALE
    return block.astype(np.float32, copy=False)


def to_int16(block: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(block * INT16_SCALE), -32768, 32767).astype(np.int16)
