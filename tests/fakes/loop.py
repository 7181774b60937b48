"""An event loop on virtual time, for code whose waits are asyncio timers it does not let a test
inject (a retry's back-off, a probe's tick, a delayed revoke).

Whenever nothing is ready to run and a timer is pending, the loop's clock jumps to that timer
instead of sleeping, so `asyncio.sleep(0.5)` costs nothing and timers still fire in their order.
It polls I/O for a millisecond before each jump, so callbacks from threads (LiveKit's FFI,
`to_thread`) are not overtaken by a jump they were about to beat. Only the loop's clock moves:
`time.monotonic()` does not, so use it for code that times itself with asyncio alone.
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

T = TypeVar("T")
GRACE_SECONDS = 0.001


class _JumpingSelector(selectors.DefaultSelector):
    def __init__(self) -> None:
        super().__init__()
        self.skipped = 0.0

    def select(self, timeout: float | None = None) -> list[Any]:
        if timeout is None or timeout <= GRACE_SECONDS:
            return super().select(timeout)
        events = super().select(GRACE_SECONDS)
        if not events:
            self.skipped += timeout - GRACE_SECONDS
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._jumping = _JumpingSelector()
        super().__init__(self._jumping)

    def time(self) -> float:
        return super().time() + self._jumping.skipped


def run_in_virtual_time(main: Callable[[], Awaitable[T]]) -> T:
    """Run `main()` to its end on a fresh VirtualTimeLoop, as `asyncio.run` would."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        try:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()
