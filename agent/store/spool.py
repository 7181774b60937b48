"""The as-aired spool on disk: writes Postgres has not taken yet outlive the host process.

The as-aired log (`aired.py`) keeps what Postgres could not take in memory, in order; every such
write that names its row (a `ref`, so writing it twice changes nothing) is also appended here as
one JSON line, to one file per host process (`SpoolFile`) in the station's folder under
`HOST_SPOOL_DIR`. The file is removed once the spool is empty, rewritten when most of its lines
are written, and rewritten with what is left when the host stops: a temporary file renamed over
it, so it is never half written. Appended lines reach the file at once (not `fsync`ed: the file
outlives the process, not the machine); a line cut short by a kill is skipped when it is read.

Each process holds an exclusive `flock` on a `.lock` beside its file for its whole life; the
kernel lets go of it when the process ends, however it ends. A host that can take that lock
knows the file's host is gone (`orphans`): it takes the file over, writes its lines into
Postgres and removes the file once they are all written. Until then the file stays locked, so a
second host never takes it too; if the taker dies as well, the next one takes it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import socket
from pathlib import Path

LOCK = ".lock"
LINES = ".jsonl"


def _lock(path: Path) -> int | None:
    """An open descriptor holding `path`'s exclusive lock; None while another process holds it
    (or removed the file between our open and our lock: the lock would be on nothing)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held, there = os.fstat(fd), os.stat(path)
        if (held.st_dev, held.st_ino) != (there.st_dev, there.st_ino):
            raise FileNotFoundError(path)
    except OSError:
        os.close(fd)
        return None
    return fd


class SpoolFile:
    """This process's file: the spooled writes, one JSON line each (made on first use)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        name = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.path = folder / f"{name}{LINES}"
        self.lines = 0  # lines in the file now, written or not
        self._lock: int | None = None
        self._fd: int | None = None

    def append(self, line: str) -> None:
        """Add one write's line (raises OSError when the file cannot be written)."""
        if self._fd is None:
            self._hold()
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        data = (line + "\n").encode()
        if os.write(self._fd, data) != len(data):  # a full disk: the line is cut, stop here
            raise OSError(f"spool line cut short: {self.path}")
        self.lines += 1

    def rewrite(self, lines: list[str]) -> None:
        """The file holds `lines` only, at once (none: the file is removed)."""
        self._close_lines()
        if not lines:
            self.path.unlink(missing_ok=True)
            self.lines = 0
            return
        self._hold()
        _replace(self.path, lines)
        self.lines = len(lines)

    def close(self) -> None:
        """The process is leaving: a file with lines stays for the next host."""
        self._close_lines()
        if self._lock is not None:
            if self.lines == 0:
                self.path.with_suffix(LOCK).unlink(missing_ok=True)
            os.close(self._lock)
            self._lock = None

    def _hold(self) -> None:
        # A fresh name: only a host tidying up a lock with no file beside it can get in the
        # way, and only for a moment.
        for _ in range(3):
            if self._lock is not None:
                return
            self.folder.mkdir(parents=True, exist_ok=True)
            self._lock = _lock(self.path.with_suffix(LOCK))
        if self._lock is None:
            raise OSError(f"spool lock not taken: {self.path.with_suffix(LOCK)}")

    def _close_lines(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Orphan:
    """A spool file whose host process is gone, taken over (and locked) by this process."""

    def __init__(self, path: Path, lock: int) -> None:
        self.path = path
        self._lock: int | None = lock
        self.pending = 0  # its writes not yet in Postgres

    def lines(self) -> list[str]:
        text = self.path.read_text(encoding="utf-8", errors="replace")
        return text.split("\n")

    def remove(self) -> None:
        """Every line is in Postgres: the file goes, then its lock."""
        self.path.unlink(missing_ok=True)
        self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)
        self.path.with_suffix(LOCK).unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        """Leave the file for another host (this one is stopping)."""
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None


def orphans(folder: Path) -> list[Orphan]:
    """The spool files in `folder` whose process is gone, now held by this one (a file this
    process holds already, its own or one it took over, stays locked to it and is skipped)."""
    found: list[Orphan] = []
    try:
        paths = sorted(folder.glob(f"*{LINES}"))
    except OSError:
        return found
    for path in paths:
        lock_path = path.with_suffix(LOCK)
        try:
            lock = _lock(lock_path)
        except OSError:
            continue
        if lock is None:
            continue  # its process is alive
        if not path.exists():  # another host wrote it and removed it meanwhile
            lock_path.unlink(missing_ok=True)
            os.close(lock)
            continue
        found.append(Orphan(path, lock))
    for lock_path in folder.glob(f"*{LOCK}"):  # left by a host killed with nothing spooled
        if lock_path.with_suffix(LINES).exists():
            continue
        with contextlib.suppress(OSError):
            lock = _lock(lock_path)
            if lock is not None:
                lock_path.unlink(missing_ok=True)
                os.close(lock)
    return found


def _replace(path: Path, lines: list[str]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            out.write("".join(f"{line}\n" for line in lines))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
