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

With a spool folder, the spool outlives the process: every spooled write but model usage (a sum,
which a second replay would add twice) is also a line in this host's spool file (`spool.py`).
A host that dies, or stops while Postgres is still down, leaves its file; the next host of the
station takes it over before it claims any post, and claims none until the file's writes are in
Postgres: a post whose "aired" mark is in the file is then aired (and no longer queued) before
anyone can claim it again. Replayed, a mark for a post that is no longer queued is "gone".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, TypeVar
from uuid import UUID, uuid4

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent.store import spool
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
COMPACT_AT = 100  # the spool file is rewritten once this many of its lines, and most, are written


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
    line: str | None = None  # the write as a spool file line (None: it cannot be replayed)
    post_id: UUID | None = None  # the post a "mark aired" write names
    filed: bool = False  # in this host's spool file
    source: spool.Orphan | None = None  # taken over from a dead host's spool file


# The writes a spool file may hold: each names its row, so replaying one changes nothing the
# second time. Their fields, as the queries name them.
_REPLAYABLE: dict[str, tuple[Callable[..., Awaitable[Any]], frozenset[str]]] = {
    "host_utterance": (
        QUERIES.record_host_utterance,
        frozenset({"ref", "text", "segment", "mode", "started_at", "ended_at", "interrupted"}),
    ),
    "caller_turn": (
        QUERIES.record_caller_turn,
        frozenset({"ref", "identity", "text", "segment", "started_at", "ended_at"}),
    ),
    "music": (
        QUERIES.record_music,
        frozenset({"ref", "file", "title", "artist", "segment", "started_at", "duration_ms"}),
    ),
    "set_text": (QUERIES.set_utterance_text, frozenset({"ref", "text"})),
    "mark_aired": (posts.mark_aired, frozenset({"post_id", "ref", "aired_at"})),
}
_UUIDS = frozenset({"ref", "post_id"})
_TIMES = frozenset({"started_at", "ended_at", "aired_at"})


def _replayable(
    name: str, values: dict[str, Any], after: Callable[[Any], Awaitable[None]] | None = None
) -> _Write:
    run, _ = _REPLAYABLE[name]
    # ASCII: no line break nor lone surrogate of a listener's text can break the file's lines.
    line = json.dumps({"kind": name, "values": values}, default=_encoded)
    return _Write(name, lambda c: run(c, **values), after, line=line, post_id=values.get("post_id"))


def _encoded(value: Any) -> str:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _from_line(line: str) -> _Write | None:
    """A write read back from a spool file; None for a line cut short or not ours."""
    try:
        data = json.loads(line)
        name, raw = data["kind"], data["values"]
        _, fields = _REPLAYABLE[name]
        if not isinstance(raw, dict) or raw.keys() != fields:
            return None
        values = {k: _decoded(k, v) for k, v in raw.items()}
    except (ValueError, KeyError, TypeError):
        return None
    return _replayable(name, values)


def _decoded(field: str, value: Any) -> Any:
    if field in _UUIDS or field in _TIMES:
        if not isinstance(value, str):
            raise TypeError(field)
        if field in _UUIDS:
            return UUID(value)
        at = datetime.fromisoformat(value)
        if at.tzinfo is None:
            raise ValueError(field)
        return at
    if value is not None and not isinstance(value, str | int | float | bool):
        raise TypeError(field)
    return value


class AiredLog:
    def __init__(
        self,
        pool: AsyncConnectionPool,
        *,
        timeout: float = 1.5,
        spool_size: int = 10_000,
        spool_dir: Path | None = None,
    ) -> None:
        """`spool_dir`: the station's spool folder, shared by its hosts on this machine (None:
        the spool is kept in memory only)."""
        self._pool = pool
        self.timeout = timeout
        self.spool_size = spool_size
        self._spool: deque[_Write] = deque()
        self._flusher: asyncio.Task[None] | None = None
        self._empty = asyncio.Event()
        self._empty.set()
        self._retry = asyncio.Event()  # try the spool's next write now, not after the back-off
        self._spool_dir = spool_dir
        self._file = spool.SpoolFile(spool_dir) if spool_dir is not None else None
        self._filed = 0  # writes in the spool that are in our file
        self._orphans: list[spool.Orphan] = []  # dead hosts' files whose writes are spooled
        self._orphans_left = False  # a dead host's file not taken over yet (the spool full)
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
        await self._write(_replayable("host_utterance", values))
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
        await self._write(_replayable("caller_turn", values))
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
        await self._write(_replayable("music", values))
        return ref

    async def set_text(self, ref: Ref, text: str) -> None:
        """The transcript of a caller turn, which may still be in the spool (it goes after)."""
        await self._write(_replayable("set_text", {"ref": ref, "text": text}))

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
        self,
        claimer: str,
        n: int,
        lease_seconds: float,
        held: list[UUID],
        *,
        told: Callable[[posts.AiredPost], Awaitable[None]] | None = None,
    ) -> list[posts.ClaimedPost] | None:
        """Up to `n` queued posts, oldest first, now claimed by `claimer`; None when down.

        First, the spool files of dead hosts are taken over; None too until their writes are
        in Postgres: their "aired" marks name posts whose claims run out, which claimed now
        would air a second time. `told` is told each post such a mark turns aired."""
        self._take_over(told)
        if self._orphans or self._orphans_left:
            return None
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

    async def release_claims(self, claimer: str, keep: Collection[UUID] = ()) -> bool:
        """Let the next host take `claimer`'s queued posts, except `keep`."""

        async def release(conn: Conn) -> bool:
            await posts.release_claims(conn, claimer, list(keep))
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

        values = {"post_id": post_id, "ref": ref, "aired_at": aired_at}
        outcome, row = await self._write(_replayable("mark_aired", values, told))
        if outcome == "written":
            return "aired" if row is not None else "gone"
        return outcome

    # --- the spool ---------------------------------------------------------------------------

    @property
    def spooled(self) -> int:
        """Writes waiting for Postgres."""
        return len(self._spool)

    @property
    def unwritten_marks(self) -> set[UUID]:
        """Posts whose "aired" mark is still in the spool."""
        return {w.post_id for w in self._spool if w.post_id is not None}

    async def flushed(self) -> None:
        """Return when the spool is empty (bound it with `asyncio.timeout`)."""
        await self._empty.wait()

    async def drain(self, seconds: float) -> bool:
        """Try the spool now and give it up to `seconds` to reach Postgres; True once empty."""
        if self._spool:
            self._retry.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._empty.wait(), seconds)
        return not self._spool

    async def aclose(self, drain: float = 2.0) -> None:
        """Stop writing: give the spool `drain` seconds, then stop. What is left stays in the
        spool file for the next host (what cannot be replayed is logged as lost)."""
        await self.drain(drain)
        if self._flusher is not None:
            self._flusher.cancel()
            await asyncio.gather(self._flusher, return_exceptions=True)
            self._flusher = None
        if self._file is not None:
            self._rewrite_file()
            if self._file is not None:
                self._file.close()
                self._file = None
        for orphan in self._orphans:
            orphan.release()  # its file stays, whole, for the next host
        self._orphans.clear()
        kept = sum(1 for w in self._spool if w.filed or w.source is not None)
        if kept:
            log.warning(
                "as-aired writes left in the spool file for the next host", extra={"count": kept}
            )
        if len(self._spool) > kept:
            log.error("as-aired writes lost at shutdown", extra={"count": len(self._spool) - kept})

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
        self._file_write(write)
        self._start_flusher()
        return "spooled"

    def _start_flusher(self) -> None:
        self._empty.clear()
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_spool(), name="as-aired-spool")

    async def _flush_spool(self) -> None:
        delay = 0.5
        written = 0
        while self._spool:
            write = self._spool[0]
            try:
                row = await self._attempt(write)
            except TRANSIENT as exc:
                self._failed(write.name, exc)
                await self._back_off(delay)
                delay = min(delay * 2, 5.0)
                continue
            except Exception as exc:
                _refused(write.name, exc)
                row = None
                write.after = None
            self._spool.popleft()
            self._written(write)
            written += 1
            delay = 0.5
            await _tell(write, row)
        self._empty.set()
        log.info("as-aired spool written", extra={"count": written})

    async def _back_off(self, delay: float) -> None:
        """Wait `delay` seconds before the next try, or less if `drain` asks for one now."""
        # asyncio.wait, not wait_for: on 3.11 wait_for can drop a cancel that arrives as the
        # event is set, and `aclose` would wait for this task for ever.
        waiter = asyncio.ensure_future(self._retry.wait())
        try:
            await asyncio.wait({waiter}, timeout=delay)
        finally:
            waiter.cancel()
            self._retry.clear()

    # --- the spool file ----------------------------------------------------------------------

    def _file_write(self, write: _Write) -> None:
        if self._file is None or write.line is None or write.source is not None:
            return
        try:
            self._file.append(write.line)
        except OSError as exc:
            self._file_failed(exc)
            return
        write.filed = True
        self._filed += 1

    def _written(self, write: _Write) -> None:
        """`write` is in Postgres (or refused for good): out of the file when the file has
        mostly written lines, and a dead host's file removed once all of it is written."""
        if write.filed:
            self._filed -= 1
        orphan = write.source
        if orphan is not None:
            orphan.pending -= 1
            if orphan.pending == 0:
                self._orphans.remove(orphan)
                with contextlib.suppress(OSError):
                    orphan.remove()
                log.info("dead host's spool written", extra={"file": orphan.path.name})
        file = self._file
        if (
            file is not None
            and file.lines
            and (self._filed == 0 or file.lines >= max(COMPACT_AT, 2 * self._filed))
        ):
            self._rewrite_file()

    def _rewrite_file(self) -> None:
        if self._file is None:
            return
        try:
            self._file.rewrite([w.line for w in self._spool if w.filed and w.line is not None])
        except OSError as exc:
            self._file_failed(exc)

    def _file_failed(self, exc: OSError) -> None:
        """The disk refused: the spool goes on in memory only (a dead host's file stays)."""
        assert self._file is not None
        log.error(
            "as-aired spool file not writable; the spool is kept in memory only",
            extra={"file": str(self._file.path), "error": repr(exc)},
        )
        with contextlib.suppress(OSError):
            self._file.close()
        self._file = None
        for write in self._spool:
            write.filed = False
        self._filed = 0

    def _take_over(self, told: Callable[[posts.AiredPost], Awaitable[None]] | None) -> None:
        """Spool the writes of dead hosts' files (each file stays, locked to this host, until
        all of its writes are in Postgres). A line cut short or not ours is skipped."""
        self._orphans_left = False
        if self._spool_dir is None:
            return
        for orphan in spool.orphans(self._spool_dir):
            if len(self._spool) >= self.spool_size:
                orphan.release()
                self._orphans_left = True
                continue
            try:
                lines = orphan.lines()
            except OSError as exc:
                log.warning(
                    "dead host's spool file unreadable",
                    extra={"file": orphan.path.name, "error": repr(exc)},
                )
                orphan.release()
                self._orphans_left = True
                continue
            writes = []
            for number, line in enumerate(lines, start=1):
                if not line.strip():
                    continue
                write = _from_line(line)
                if write is None:
                    log.warning(
                        "spool file line skipped: cut short or not a write",
                        extra={"file": orphan.path.name, "line": number},
                    )
                    continue
                write.source = orphan
                if write.post_id is not None:
                    write.after = _replayed_mark(write.post_id, told)
                writes.append(write)
            if not writes:
                with contextlib.suppress(OSError):
                    orphan.remove()
                continue
            orphan.pending = len(writes)
            self._orphans.append(orphan)
            self._spool.extend(writes)
            self._start_flusher()
            log.info(
                "dead host's spool taken over",
                extra={"file": orphan.path.name, "count": len(writes)},
            )

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


def _replayed_mark(
    post_id: UUID, told: Callable[[posts.AiredPost], Awaitable[None]] | None
) -> Callable[[Any], Awaitable[None]]:
    async def after(aired: posts.AiredPost | None) -> None:
        if aired is None:
            log.info("replayed mark: post no longer queued", extra={"post_id": str(post_id)})
        elif told is not None:
            await told(aired)

    return after


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
