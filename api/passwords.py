"""Staff passwords: one argon2 hasher, and the pool the API checks sign-ins in.

The command line (`radio24 producer add`) hashes with `hasher`; the API verifies in
`PasswordChecker`, a small thread pool of its own, never the one the rest of the API shares, and
an unknown name costs the same check as a known one (`dummy_hash`), so neither the answer nor
its time tells which staff names exist.
"""

from __future__ import annotations

import asyncio
import functools
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import HTTPException, status

hasher = PasswordHasher()


@functools.cache
def dummy_hash() -> str:
    """Verified against when the username is unknown, so a wrong name costs as long as a wrong
    password and does not reveal which names exist."""
    return hasher.hash("radio24-no-such-user")


def _verify(password_hash: str, password: str) -> tuple[bool, bool]:
    """(matches, needs rehash); CPU-heavy on purpose, so it runs in the checker's threads."""
    try:
        hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False, False
    return True, hasher.check_needs_rehash(password_hash)


class PasswordChecker:
    """argon2 checks in a pool of their own (`concurrency` threads), with at most `queue` more
    waiting: past that a sign-in is refused at once (503) rather than piling up CPU work."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="argon2")
        self._room = concurrency + queue
        self._busy = 0

    async def verify(self, password_hash: str, password: str) -> tuple[bool, bool]:
        if self._busy >= self._room:
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "sign-in is busy: retry in a moment",
                {"Retry-After": "2"},
            )
        self._busy += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._pool, _verify, password_hash, password)
        finally:
            self._busy -= 1

    async def hash(self, password: str) -> str:
        return await asyncio.get_running_loop().run_in_executor(self._pool, hasher.hash, password)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
