"""The as-aired log: what the host said, what callers said and what music played, in Postgres.

Radio keeps a log of what went out; radio24's is the `utterances` table. Every host utterance
(text, segment, start, end, interrupted, mode), every caller turn (identity, duration,
transcript) and every music item (file, title, artist, start, duration) lands here, and a post
is marked aired with the utterance that aired it. Model usage is summed per hour here too, for
cost. The SQL lives in `db/queries/host.sql`.

Postgres may be down or hang; the host must keep talking. Every method returns within about
`timeout` seconds and never raises. A write that cannot be made now is kept, in order, in a
bounded spool in memory and written when Postgres answers again; each row is named by a `ref`
the host makes (a UUID), so a row can be referred to (`set_text`, a post's utterance) before it
is written, and a write repeated after a lost answer is still one row.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from core.outage import within
from db import posts
from db.pool import BoundedPool
from db.queries import load

log = logging.getLogger("radio24.aired")

QUERIES = load("host.sql")

T = TypeVar("T")
Ref = UUID  # names one row of the as-aired log, made by the host before the row is written
Conn = psycopg.AsyncConnection[Any]
Marked = Literal["aired", "spooled", "gone", "lost"]

# Errors that say "Postgres is not answering now", as opposed to a write that can never work.
TRANSIENT: tuple[type[BaseException], ...] = (
    psycopg.OperationalError,
    psycopg.InterfaceError,
    psycopg.errors.ReadOnlySqlTransaction,  # a failover left us on a replica for a moment
    PoolTimeout,
    TimeoutError,
    OSError,
)
PROBE_EVERY = 2.0  # while Postgres is down, a read tries again at most this often (seconds)


def open_pool(database_url: str, *, timeout: float = 1.5) -> AsyncConnectionPool:
    """The job's one connection pool (opened by the caller, closed at shutdown).

    Connections time out (connect, statement, checkout) and are checked before use, so a
    restarted Postgres costs no failed write; the pool retries a lost server every few seconds
    rather than backing off for minutes (`reconnect_timeout`).
    """
    return BoundedPool(
        database_url,
        min_size=1,
        max_size=4,
        open=False,
        timeout=timeout,
        reconnect_timeout=5,
        check=AsyncConnectionPool.check_connection,
        kwargs={
            "row_factory": dict_row,
            "connect_timeout": 3,
            "options": "-c statement_timeout=5000 -c idle_in_transaction_session_timeout=10000",
        },
    )


@dataclass
class _Write:
    """One write for the log, kept until Postgres has taken it."""

    name: str
    run: Callable[[Conn], Awaitable[Any]]
    after: Callable[[Any], Awaitable[None]] | None = None  # told the result once written


class AiredLog:
    def __init__(
        self, pool: AsyncConnectionPool, *, timeout: float = 1.5, spool_size: int = 10_000
    ) -> None:
        self._pool = pool
        self.timeout = timeout
        self.spool_size = spool_size
        self._spool: deque[_Write] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._empty = asyncio.Event()
        self._empty.set()
        self._down = False
        self._tried_at = 0.0
        self.dropped = 0  # writes refused because the spool was full

    # --- the as-aired log --------------------------------------------------------------------

    async def host_utterance(
        self,
        *,
        text: str,
        segment: str | None,
        mode: str,
        started_at: datetime,
        ended_at: datetime,
        interrupted: bool,
    ) -> Ref:
        ref = uuid4()
        values = {
            "ref": ref,
            "text": text,
            "segment": segment,
            "mode": mode,
            "started_at": started_at,
            "ended_at": ended_at,
            "interrupted": interrupted,
        }
        await self._write(
            _Write("host_utterance", lambda c: QUERIES.record_host_utterance(c, **values))
        )
        return ref

    async def caller_turn(
        self,
        *,
        identity: str,
        text: str,
        segment: str | None,
        started_at: datetime,
        ended_at: datetime,
    ) -> Ref:
        ref = uuid4()
        values = {
            "ref": ref,
            "identity": identity,
            "text": text,
            "segment": segment,
            "started_at": started_at,
            "ended_at": ended_at,
        }
        await self._write(_Write("caller_turn", lambda c: QUERIES.record_caller_turn(c, **values)))
        return ref

    async def music(
        self,
        *,
        file: str,
        title: str | None,
        artist: str | None,
        segment: str | None,
        started_at: datetime,
        duration_seconds: float,
    ) -> Ref:
        """A music item (track, jingle, bed) that went on air, for the music-use report."""
        ref = uuid4()
        values = {
            "ref": ref,
            "file": file,
            "title": title,
            "artist": artist,
            "segment": segment,
            "started_at": started_at,
            "duration_ms": round(max(duration_seconds, 0.0) * 1000),
        }
        await self._write(_Write("music", lambda c: QUERIES.record_music(c, **values)))
        return ref

    async def set_text(self, ref: Ref, text: str) -> None:
        """The transcript of a caller turn, which may still be in the spool (it goes after)."""
        await self._write(
            _Write("set_text", lambda c: QUERIES.set_utterance_text(c, ref=ref, text=text))
        )

    async def add_usage(
        self,
        model: str,
        *,
        audio_in: int,
        audio_out: int,
        text_in: int,
        text_out: int,
        at: datetime | None = None,
    ) -> None:
        """Add usage to the hour of `at` (the station clock; now by default)."""
        hour = (at or datetime.now(UTC)).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        values = {
            "hour": hour,
            "model": model,
            "audio_in": audio_in,
            "audio_out": audio_out,
            "text_in": text_in,
            "text_out": text_out,
        }
        await self._write(_Write("usage", lambda c: QUERIES.add_model_usage(c, **values)))

    async def recent_lines(self, n: int) -> list[str]:
        """The host's latest lines, oldest first; [] when Postgres does not answer."""

        async def read(conn: Conn) -> list[str]:
            return [r["text"] async for r in QUERIES.recent_host_lines(conn, n=n)]

        rows = await self._read("recent_lines", read)
        return list(reversed(rows)) if rows is not None else []

    # --- posts: claimed, renewed and marked aired (for agent/store/posts.py) ----------------------

    async def claim_posts(
        self, claimer: str, n: int, lease_seconds: float, held: list[UUID]
    ) -> list[posts.ClaimedPost] | None:
        """Up to `n` queued posts, oldest first, now claimed by `claimer`; None when down."""

        return await self._read(
            "claim_posts", lambda c: posts.claim(c, claimer, n, lease_seconds, held)
        )

    async def renew_claims(
        self, claimer: str, ids: list[UUID], lease_seconds: float
    ) -> set[UUID] | None:
        """The posts among `ids` still queued and still ours (lease extended); None when down."""

        return await self._read(
            "renew_claims", lambda c: posts.renew_claims(c, claimer, ids, lease_seconds)
        )

    async def release_claims(self, claimer: str) -> bool:
        async def release(conn: Conn) -> bool:
            await posts.release_claims(conn, claimer)
            return True

        return bool(await self._read("release_claims", release, probe=True))

    async def mark_aired(
        self,
        post_id: UUID,
        ref: Ref,
        *,
        aired_at: datetime,
        after: Callable[[posts.AiredPost], Awaitable[None]] | None = None,
    ) -> Marked:
        """Mark a post aired by the utterance `ref`: `aired` now, `spooled` for later, `gone`
        when it was no longer queued (aired before, hidden), `lost` if it could not be kept.
        `after` is told the post once it is marked (now or from the spool)."""

        async def told(aired: posts.AiredPost | None) -> None:
            if aired is not None and after is not None:
                await after(aired)

        write = _Write("mark_aired", lambda c: posts.mark_aired(c, post_id, ref, aired_at), told)
        outcome, row = await self._write(write)
        if outcome == "written":
            return "aired" if row is not None else "gone"
        return outcome

    # --- the spool ---------------------------------------------------------------------------

    @property
    def spooled(self) -> int:
        """Writes waiting for Postgres."""
        return len(self._spool)

    async def flushed(self) -> None:
        """Return when the spool is empty (bound it with `asyncio.timeout`)."""
        await self._empty.wait()

    async def aclose(self, drain: float = 2.0) -> None:
        """Stop writing: give the spool `drain` seconds, then stop (what is left is logged)."""
        if self._spool:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), drain)
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        if self._spool:
            log.error("as-aired writes lost at shutdown", extra={"count": len(self._spool)})

    async def _write(self, write: _Write) -> tuple[Literal["written", "spooled", "lost"], Any]:
        if not self._spool:
            try:
                row = await self._attempt(write)
            except TRANSIENT as exc:
                self._failed(write.name, exc)
            except Exception as exc:
                _refused(write.name, exc)
                return "lost", None
            else:
                await _tell(write, row)
                return "written", row
        return self._keep(write), None

    def _keep(self, write: _Write) -> Literal["spooled", "lost"]:
        if len(self._spool) >= self.spool_size:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 100 == 0:
                log.error(
                    "as-aired spool full: write dropped",
                    extra={"what": write.name, "dropped": self.dropped},
                )
            return "lost"
        self._spool.append(write)
        self._empty.clear()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_spool(), name="as-aired-spool")
        return "spooled"

    async def _flush_spool(self) -> None:
        delay = 0.5
        written = 0
        while self._spool:
            write = self._spool[0]
            try:
                row = await self._attempt(write)
            except TRANSIENT as exc:
                self._failed(write.name, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            except Exception as exc:
                _refused(write.name, exc)
                row = None
                write.after = None
            self._spool.popleft()
            written += 1
            delay = 0.5
            await _tell(write, row)
        self._empty.set()
        log.info("as-aired spool written", extra={"count": written})

    # --- one call to Postgres ----------------------------------------------------------------

    async def _attempt(self, write: _Write) -> Any:
        async def step() -> Any:
            async with self._pool.connection(timeout=self.timeout) as conn:
                return await write.run(conn)

        self._tried_at = time.monotonic()
        result = await within(self.timeout, step)
        if self._down:
            log.info("as-aired log: postgres answers again")
        self._down = False
        return result

    async def _read(
        self, name: str, run: Callable[[Conn], Awaitable[T]], *, probe: bool = False
    ) -> T | None:
        """A read (or a write whose loss is harmless) made now or never: None when down.
        While Postgres is known to be down, only one try per PROBE_EVERY pays the timeout
        (`probe` tries anyway: the caller is a background loop)."""
        if self._down and not probe and time.monotonic() - self._tried_at < PROBE_EVERY:
            return None
        try:
            return await self._attempt(_Write(name, run))
        except TRANSIENT as exc:
            self._failed(name, exc)
        except Exception as exc:
            _refused(name, exc)
        return None

    def _failed(self, name: str, exc: BaseException) -> None:
        if not self._down:
            log.warning(
                "as-aired log: postgres unavailable, keeping writes",
                extra={"what": name, "error": repr(exc)},
            )
        self._down = True


async def _tell(write: _Write, row: Any) -> None:
    if write.after is None:
        return
    try:
        await write.after(row)
    except Exception:
        log.warning("after-write step failed", extra={"what": write.name}, exc_info=True)


def _refused(name: str, exc: Exception) -> None:
    """A write Postgres will never take (a bug or bad data): logged and dropped, not retried."""
    log.error(
        "as-aired write refused",
        extra={"what": name, "error": type(exc).__name__, "sqlstate": getattr(exc, "sqlstate", "")},
    )
