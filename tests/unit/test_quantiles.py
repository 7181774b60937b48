"""The benchmarks' quantiles: a miss counts, a finite quantile is never turned into one."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench.quantiles import quantile


def test_a_quantile_that_lands_on_a_value_is_that_value_even_beside_a_miss() -> None:
    assert quantile([100.0, 120.0, math.inf], 0.5) == 120.0
    assert quantile([100.0] * 19 + [math.inf], 0.5) == 100.0


def test_interpolating_towards_a_miss_is_a_miss() -> None:
    assert quantile([100.0] * 19 + [math.inf], 0.95) == math.inf
    assert quantile([math.inf, math.inf], 0.5) == math.inf


@pytest.mark.parametrize("q", [0.0, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0])
def test_without_misses_it_is_numpys_linear_quantile(q: float) -> None:
    values = [float(v) for v in np.random.default_rng(7).gamma(2.0, 40.0, size=57)]
    assert quantile(values, q) == pytest.approx(float(np.quantile(values, q)))
