"""One step of a background loop whose parts (Postgres, Redis) may be down, or hang, for a while.

The host's post queue and the embedding worker retry forever; they should say once that a part
is down and once that it is back, not every tick, and must never swallow their own cancellation
(some client libraries turn a cancel into another exception). `within` bounds one call to a part
that may hang (a stopped Redis or Postgres accepts connections and never answers);
`db.pool.BoundedPool` does the same for taking a connection from a psycopg pool.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Outage:
    def __init__(self, log: logging.Logger, down_message: str, up_message: str) -> None:
        self.log = log
        self.down_message = down_message
        self.up_message = up_message
        self.down = False

    async def attempt(self, step: Callable[[], Awaitable[T]]) -> T | None:
        """Run `step`; on failure log (once per outage) and return None."""
        try:
            result = await step()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # a client library ate the cancel
                raise asyncio.CancelledError from exc
            if not self.down:
                self.log.warning(self.down_message, extra={"error": repr(exc)})
            self.down = True
            return None
        if self.down:
            self.log.info(self.up_message)
        self.down = False
        return result


_abandoned: set[asyncio.Task[object]] = set()


async def within(seconds: float, step: Callable[[], Awaitable[T]]) -> T:
    """Run `step` but return (TimeoutError) after `seconds` even if the part hangs.

    `asyncio.timeout` is not enough against a stopped server: cancelling a psycopg query first
    asks the server to cancel it and waits up to 10 s for the answer. The step runs in its own
    task; on timeout it is cancelled and left to finish its cleanup in the background.
    """
    task: asyncio.Task[T] = asyncio.ensure_future(step())
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except asyncio.CancelledError:
        _abandon(task)
        raise
    if not done:
        _abandon(task)
        raise TimeoutError(f"no answer within {seconds} s")
    return task.result()


def _abandon(task: asyncio.Task[T]) -> None:
    task.cancel()
    keep_until_done(task)


def keep_until_done(task: asyncio.Task[Any]) -> None:
    """Hold a task no one awaits until it ends (the loop keeps only weak references)."""
    _abandoned.add(task)
    task.add_done_callback(_forget)


def _forget(task: asyncio.Task[object]) -> None:
    _abandoned.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: an abandoned step's error is not news
