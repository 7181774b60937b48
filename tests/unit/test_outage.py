"""A background loop says once that a part is down and once that it is back, and its own
cancellation is never swallowed."""

from __future__ import annotations

import asyncio
import logging

import pytest

from db.outage import Outage


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
