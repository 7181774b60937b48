"""The model's circuit breaker: after one failure the host goes offline at once.

While the Realtime model is failing, trying it for every line costs the listener a fallback wait
each time (dead air). The breaker opens on the first failure, so lines go to the offline voice
with no wait; a background probe checks the model with growing back-off; a good probe lets one
line try the model on air (half-open), and a good line closes the breaker again. Pure: the
clock is injected, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

Clock = Callable[[], float]


class BreakerState(StrEnum):
    CLOSED = "closed"  # the model voices the lines
    OPEN = "open"  # the offline voice does, while a probe waits its turn
    HALF_OPEN = "half_open"  # a probe passed: the next line tries the model


class ModelBreaker:
    def __init__(self, clock: Clock, *, first_backoff: float = 2.0, max_backoff: float = 60.0):
        self._clock = clock
        self._first = first_backoff
        self._max = max_backoff
        self._backoff = first_backoff
        self._state = BreakerState.CLOSED
        self._probe_at = 0.0
        self.failures = 0

    @property
    def state(self) -> BreakerState:
        return self._state

    def allows_model(self) -> bool:
        """May the next line try the model on air?"""
        return self._state is not BreakerState.OPEN

    def failed(self) -> None:
        """A line (or a probe) failed: open, and wait longer before the next probe."""
        if self._state is BreakerState.CLOSED:
            self._backoff = self._first
        else:
            self._backoff = min(self._backoff * 2, self._max)
        self._state = BreakerState.OPEN
        self._probe_at = self._clock() + self._backoff
        self.failures += 1

    def succeeded(self) -> None:
        """A line aired from the model: closed again."""
        self._state = BreakerState.CLOSED
        self._backoff = self._first

    def probe_due(self) -> bool:
        return self._state is BreakerState.OPEN and self._clock() >= self._probe_at

    def probed(self, ok: bool) -> None:
        if self._state is not BreakerState.OPEN:
            return
        if ok:
            self._state = BreakerState.HALF_OPEN
        else:
            self.failed()
