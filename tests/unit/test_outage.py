"""A background loop says once that a part is down and once that it is back, its own
cancellation is never swallowed, and a call to a part that hangs returns on time."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.outage import Outage, within


async def test_logs_one_warning_per_outage_and_one_recovery(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage(logging.getLogger("t"), "down", "up")
    answers = iter([ConnectionError(), ConnectionError(), 3, ConnectionError(), 4])

    async def step() -> int:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    with caplog.at_level(logging.INFO, logger="t"):
        results = [await outage.attempt(step) for _ in range(5)]
    assert results == [None, None, 3, None, 4]
    assert [r.message for r in caplog.records] == ["down", "up", "down", "up"]


async def test_a_cancel_turned_into_another_error_still_cancels() -> None:
    outage = Outage(logging.getLogger("t"), "down", "up")
    started = asyncio.Event()

    async def step() -> None:
        try:
            started.set()
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            raise ConnectionError("the client library ate the cancel") from None

    async def loop() -> None:
        while True:
            await outage.attempt(step)

    task = asyncio.create_task(loop())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)


async def test_within_returns_the_answer_or_its_error() -> None:
    async def answer() -> int:
        await asyncio.sleep(0.01)
        return 42

    async def broken() -> None:
        raise ValueError("no")

    assert await within(1, answer) == 42
    with pytest.raises(ValueError, match="no"):
        await within(1, broken)


async def test_within_gives_up_on_time_even_when_the_step_is_slow_to_cancel() -> None:
    """psycopg, cancelled mid-query, waits for the server to confirm: the caller must not."""
    cleaned = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            await asyncio.sleep(1.0)  # cleanup that outlives the deadline
            cleaned.set()
            raise

    loop = asyncio.get_running_loop()
    started = loop.time()
    with pytest.raises(TimeoutError):
        await within(0.2, stubborn)
    assert loop.time() - started < 0.6
    await asyncio.wait_for(cleaned.wait(), 3)  # the abandoned step still finished its cleanup


async def test_within_passes_the_callers_cancel_on() -> None:
    stopped = asyncio.Event()

    async def long() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            stopped.set()

    task = asyncio.create_task(within(5, long))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.wait_for(stopped.wait(), 1)
