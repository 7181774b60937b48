"""The model's circuit breaker: offline at once after a failure, probing with back-off."""

from __future__ import annotations

from agent.voice.breaker import BreakerState, ModelBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_failure_opens_and_the_next_lines_skip_the_model() -> None:
    clock = Clock()
    breaker = ModelBreaker(clock, first_backoff=2, max_backoff=16)
    assert breaker.allows_model()
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    assert not breaker.allows_model()  # no fallback wait for the lines that follow
    assert not breaker.probe_due()
    clock.now = 2.0
    assert breaker.probe_due()


def test_a_good_probe_lets_one_line_try_and_a_good_line_closes() -> None:
    clock = Clock()
    breaker = ModelBreaker(clock, first_backoff=2)
    breaker.failed()
    clock.now = 2
    breaker.probed(True)
    assert breaker.state is BreakerState.HALF_OPEN and breaker.allows_model()
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED


def test_back_off_doubles_while_failing_and_is_capped() -> None:
    clock = Clock()
    breaker = ModelBreaker(clock, first_backoff=2, max_backoff=8)
    breaker.failed()
    waits = []
    for _ in range(4):
        start = clock.now
        while not breaker.probe_due():
            clock.now += 0.5
        waits.append(clock.now - start)
        breaker.probed(False)
    assert waits == [2, 4, 8, 8]
    # A probe that passes but a line that then fails goes on backing off from there.
    while not breaker.probe_due():
        clock.now += 0.5
    breaker.probed(True)
    breaker.failed()
    assert breaker.state is BreakerState.OPEN
    start = clock.now
    while not breaker.probe_due():
        clock.now += 0.5
    assert clock.now - start == 8
