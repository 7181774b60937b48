"""Quantiles of timings where a miss (`math.inf`) stays in the figure, never dropped.

numpy's linear quantile turns any interpolation that touches an infinity into NaN, even when the
weight on it is zero: the median of [100, 120, inf] came out NaN, and was reported as a miss.
Here a quantile that lands on a value is that value, one that interpolates towards a miss is a
miss, and the rest is numpy's default (linear) method.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np


def quantile(values: Sequence[float], q: float) -> float:
    """The q-quantile (0 ≤ q ≤ 1) of `values`, misses included; nan for no values."""
    if not values:
        return math.nan
    ordered = np.sort(np.asarray(values, dtype=np.float64))
    position = q * (ordered.size - 1)
    low = math.floor(position)
    weight = position - low
    below = float(ordered[low])
    if weight == 0:
        return below
    above = float(ordered[low + 1])
    return math.inf if math.isinf(above) else below + (above - below) * weight
