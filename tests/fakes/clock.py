"""A clock the test moves by hand, for code that takes an injected clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


class FakeClock:
    """Timezone-aware wall time that only moves when told; call it like `datetime.now`.

    It moves in real time: started in a zone with clock changes, half an hour on from 01:30 BST
    on the night the clocks go back is 01:00 GMT (aware arithmetic within one zone would say
    02:00 and skip the repeated hour)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware start")
        self._now = start
        self._start = start

    def __call__(self) -> datetime:
        return self._now

    def now(self) -> datetime:
        return self._now

    def monotonic(self) -> float:
        """Seconds since the start, for code that measures durations."""
        return (self._now.astimezone(UTC) - self._start.astimezone(UTC)).total_seconds()

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        """Move forward by `delta` or by timedelta keywords (`seconds=5`, `hours=1`)."""
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("time only moves forward")
        self._now = (self._now.astimezone(UTC) + step).astimezone(self._now.tzinfo)
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("FakeClock needs a timezone-aware time")
        self._now = when
