"""Listener posts waiting to air: claimed from Postgres, with Redis only as the doorbell.

Postgres is the truth: the host claims the oldest queued posts (`FOR UPDATE SKIP LOCKED`,
`claimed_by` this host, `claimed_until` a lease it renews every few seconds), holds at most a
small batch in memory, checks a post is still queued and still its own right before airing it,
and marks it aired with `... WHERE status = 'queued'`, so a post airs once. A host killed
mid-read leaves claims that expire after the lease; the next host takes them. A host that stops
releases its claims at once, except those of posts that aired and whose mark is not in Postgres
yet (or that it took and never put back): those leases run out instead, by when the mark is
written or waits in the host's spool file, which the next host writes before it claims anything.

Redis only rings the doorbell: the API adds `{"post_id": ...}` to the capped stream
`Keys.posts` (XADD MAXLEN ~), and the host, blocked in XREAD on it, claims at once instead of
at its next poll. Redis down, hanging or flushed costs at most one poll interval, never a post.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import redis.asyncio as aioredis

from agent.store.aired import AiredLog, Ref
from contract.events import PostStatusEvent, dump
from contract.keys import Keys
from core.outage import Outage, within
from db.posts import AiredPost, ClaimedPost

log = logging.getLogger("radio24.posts")

# The default station's names, for a queue made without the station's own (RADIO_ROOM's default).
DEFAULT_KEYS = Keys("radio24")
TAKEN_MAX_SECONDS = 300.0  # a post taken this long ago and never aired nor put back airs again


@dataclass(frozen=True)
class Post:
    post: ClaimedPost

    @property
    def quoted(self) -> str:
        """The post as quoted data for the model: JSON, never as instructions."""
        return json.dumps({"from": self.post.author, "text": self.post.text}, ensure_ascii=False)


class PostQueue:
    """The few posts this host has claimed and not yet aired, oldest first."""

    def __init__(
        self,
        redis: aioredis.Redis,
        aired: AiredLog,
        *,
        keys: Keys = DEFAULT_KEYS,
        consumer: str = "host",
        batch: int = 3,
        poll_seconds: float = 2.0,
        lease_seconds: float = 15.0,
        redis_timeout: float = 0.5,
        drain_seconds: float = 2.0,
    ) -> None:
        self._redis = redis
        self._aired = aired
        self._keys = keys
        # One claimer per queue: a second host (or this one restarted) never takes a post this
        # one holds until its lease has run out.
        self.claimer = f"{consumer}:{secrets.token_hex(4)}"
        self.batch = batch
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.redis_timeout = redis_timeout
        self.drain_seconds = drain_seconds  # the spool's last chance before the claims go
        self._waiting: deque[Post] = deque()
        self._taken: dict[UUID, tuple[Post, float]] = {}  # being aired, since (monotonic)
        self._marking: set[UUID] = set()  # aired, the mark still in the as-aired spool
        self._rung_at: bytes | str = "$"  # the last doorbell entry seen
        self._redis_outage = Outage(
            log, "posts: redis unavailable, polling postgres", "posts: redis answers again"
        )

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def take(self) -> Post | None:
        if not self._waiting:
            return None
        post = self._waiting.popleft()
        self._taken[post.post.id] = (post, time.monotonic())
        return post

    async def still_queued(self, post: Post) -> bool:
        """Right before airing: is the post still queued and still ours? (A producer may have
        hidden it.) When Postgres does not answer, the claim verified a moment ago stands:
        nobody can hide or take the post while Postgres is down."""
        ours = await self._aired.renew_claims(self.claimer, [post.post.id], self.lease_seconds)
        if ours is None or post.post.id in ours:
            return True
        self._taken.pop(post.post.id, None)
        log.info("post no longer queued; not aired", extra={"post_id": str(post.post.id)})
        return False

    def put_back(self, post: Post) -> None:
        """None of its reading reached the air (cut before it began, or the voice failed):
        the post goes to the front and airs next. A reading that had begun is marked aired
        instead, even when cut: a listener never hears the same post twice."""
        self._taken.pop(post.post.id, None)
        if all(p.post.id != post.post.id for p in self._waiting):
            self._waiting.appendleft(post)

    async def aired(self, post: Post, ref: Ref) -> bool:
        """Mark the post aired by the utterance `ref` (spooled while Postgres is down).
        False if it was no longer queued (it had aired already, or was hidden)."""
        self._taken.pop(post.post.id, None)
        outcome = await self._aired.mark_aired(
            post.post.id, ref, aired_at=datetime.now(UTC), after=self._tell_listener
        )
        if outcome == "spooled":
            # Still `queued` in Postgres until the spool writes the mark: keep holding its
            # claim (and never claim it again ourselves), or it would air a second time.
            self._marking.add(post.post.id)
        if outcome == "gone":
            log.info("post was no longer queued when marked", extra={"post_id": str(post.post.id)})
        return outcome != "gone"

    async def run(self) -> None:
        """Until cancelled: keep the claims fresh, claim more when there is room, wait for the
        doorbell (or the poll interval). Survives any outage; releases the claims on the way
        out so the next host takes them at once (cancel it once what aired is written or
        spooled: the claims of posts whose marks are still spooled are kept)."""
        try:
            while True:
                try:
                    await self._refresh()
                    await self._doorbell()
                except Exception:  # a bug here must not end the host's job: log, go on
                    log.exception("post queue step failed")
                    await asyncio.sleep(self.poll_seconds)
        finally:
            # Released, a post whose mark is not written yet is still queued: the next host
            # would claim it and air it again. The spool is given a moment first.
            await self._aired.drain(self.drain_seconds)
            keep = set(self._taken) | self._aired.unwritten_marks
            if await self._aired.release_claims(self.claimer, keep):
                log.info("post claims released", extra={"claimer": self.claimer, "kept": len(keep)})

    # --- inside ------------------------------------------------------------------------------

    async def _refresh(self) -> None:
        now = time.monotonic()
        for post_id, (post, since) in list(self._taken.items()):
            if now - since > TAKEN_MAX_SECONDS:  # the on-air side lost it: air it again
                log.warning(
                    "taken post never aired; back in the queue", extra={"post_id": str(post_id)}
                )
                self.put_back(post)
        if self._marking and self._aired.spooled == 0:
            self._marking.clear()  # the spool has written every mark
        held = [p.post.id for p in self._waiting] + list(self._taken) + list(self._marking)
        if held:
            ours = await self._aired.renew_claims(self.claimer, held, self.lease_seconds)
            if ours is None:
                return  # Postgres is down: keep what we hold and try again next time
            lost = [p for p in self._waiting if p.post.id not in ours]
            for p in lost:
                self._waiting.remove(p)
                log.info("post no longer ours; dropped", extra={"post_id": str(p.post.id)})
            held = [i for i in held if i in ours or i in self._marking]
        room = self.batch - len(self._waiting) - len(self._taken)
        if room <= 0:
            return
        claimed = await self._aired.claim_posts(
            self.claimer, room, self.lease_seconds, held, told=self._tell_listener
        )
        for queued in claimed or ():
            self._waiting.append(Post(queued))
        if claimed:
            log.info("posts claimed", extra={"count": len(claimed), "waiting": self.waiting})

    async def _doorbell(self) -> None:
        """Return when the doorbell rings, or after the poll interval (Redis down or not)."""
        started = time.monotonic()
        block = self.poll_seconds
        socket_timeout = self._redis.connection_pool.connection_kwargs.get("socket_timeout")
        if socket_timeout:  # a read blocked longer than the client's own timeout would fail
            block = min(block, socket_timeout * 0.8)
        block_ms = max(1, round(block * 1000))

        async def ring() -> Any:
            rung: dict[Any, Any] = {self._keys.posts: self._rung_at}  # redis-py's key type
            return await self._redis.xread(rung, count=100, block=block_ms)

        got = await self._redis_outage.attempt(
            lambda: within(self.poll_seconds + self.redis_timeout + 0.5, ring)
        )
        if got:
            self._rung_at = got[0][1][-1][0]
            return
        rest = self.poll_seconds - (time.monotonic() - started)
        if rest > 0 and self._redis_outage.down:  # refused at once: wait out the interval
            await asyncio.sleep(rest)

    async def _tell_listener(self, aired: AiredPost) -> None:
        event = PostStatusEvent(
            post_id=str(aired.id), listener_id=str(aired.author_id), status="aired"
        )

        async def publish() -> None:
            await self._redis.publish(self._keys.events, dump(event))

        try:
            await within(self.redis_timeout, publish)
        except Exception as exc:
            log.warning("post status not published", extra={"error": repr(exc)})
