"""One step of a background loop whose parts (Postgres, Redis) may be down for a while.

The relay and the embedding worker retry forever; they should say once that a part is down and
once that it is back, not every tick, and must never swallow their own cancellation (some client
libraries turn a cancel into another exception).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

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
