"""The psycopg pool every process opens: its checkout bounded in time (see core.outage)."""

from __future__ import annotations

import asyncio
from typing import Any

from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.outage import keep_until_done


class BoundedPool(AsyncConnectionPool):
    """A psycopg pool whose checkout (with its liveness check) is bounded in time.

    A frozen Postgres passes no connection check and never fails one either: the check waits
    for ever. Here the wait ends after the pool's `timeout` with `PoolTimeout`, as for a
    Postgres that is down; a connection the abandoned checkout gets later goes back to the pool.
    """

    async def getconn(self, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (the pool API)
        wait = self.timeout if timeout is None else timeout
        task = asyncio.ensure_future(super().getconn(wait))
        try:
            done, _ = await asyncio.wait({task}, timeout=wait + 0.25)
        except asyncio.CancelledError:
            self._let_go(task)
            raise
        if not done:
            self._let_go(task)
            raise PoolTimeout(f"no database connection within {wait:.1f} s")
        return task.result()

    def _let_go(self, task: asyncio.Task[Any]) -> None:
        task.cancel()

        def returned(t: asyncio.Task[Any]) -> None:
            if t.cancelled() or t.exception() is not None:
                return
            keep_until_done(asyncio.ensure_future(self.putconn(t.result())))

        keep_until_done(task)
        task.add_done_callback(returned)
