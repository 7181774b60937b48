"""Listener posts waiting to air, handed over by the API through a Redis stream.

Postgres is the truth and Redis the doorbell: the API adds `{"post_id": ...}` to the stream
`radio24:posts`; the host reads it in consumer group `host`, looks the post up in Postgres (only a
post still `queued` airs), airs it, marks it aired with `... WHERE status = 'queued'` and only then
acknowledges the entry. A post delivered twice, or left pending by a host that was killed, is
therefore aired once: a restarted host claims the pending entries back (XAUTOCLAIM) first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from dataclasses import dataclass
from uuid import UUID

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from agent.aired import AiredLog, QueuedPost

log = logging.getLogger("radio24.posts")

STREAM = "radio24:posts"
GROUP = "host"
EVENTS = "radio24:events"


@dataclass(frozen=True)
class Post:
    entry_id: str
    post: QueuedPost

    @property
    def quoted(self) -> str:
        """The post as quoted data for the model: JSON, never as instructions."""
        return json.dumps({"from": self.post.author, "text": self.post.text}, ensure_ascii=False)


class PostQueue:
    """Posts the host has been handed and not yet aired, oldest first."""

    def __init__(
        self, redis: aioredis.Redis, aired: AiredLog, *, consumer: str = "host", batch: int = 10
    ) -> None:
        self._redis = redis
        self._aired = aired
        self._consumer = consumer
        self._batch = batch
        self._waiting: deque[Post] = deque()
        self._held: set[str] = set()  # entry ids waiting or being aired
        self._posts: dict[str, str] = {}  # post id -> the entry that carries it here
        self._changed = asyncio.Event()

    @property
    def waiting(self) -> int:
        return len(self._waiting)

    def take(self) -> Post | None:
        return self._waiting.popleft() if self._waiting else None

    async def still_queued(self, post: Post) -> bool:
        """Check Postgres right before airing (a producer may have hidden it meanwhile)."""
        if await self._aired.queued_post(str(post.post.id)) is not None:
            return True
        await self._ack(post.entry_id)
        self._posts.pop(str(post.post.id), None)
        return False

    def put_back(self, post: Post) -> None:
        """Airing failed: the post goes to the front and airs next time."""
        self._waiting.appendleft(post)

    async def aired(self, post: Post, utterance_id: int) -> bool:
        """Mark the post aired by this utterance, then acknowledge it. False if it had aired."""
        row = await self._aired.mark_aired(post.post.id, utterance_id)
        await self._ack(post.entry_id)
        self._posts.pop(str(post.post.id), None)
        if row is None:
            return False
        event = {
            "type": "post_status",
            "post_id": str(post.post.id),
            "listener_id": str(row["author_id"]),
            "status": "aired",
        }
        with contextlib.suppress(Exception):
            await self._redis.publish(EVENTS, json.dumps(event))
        return True

    async def run(self) -> None:
        """Read the stream until cancelled: first what this host left pending, then new entries."""
        await self._ensure_group()
        await self._reclaim()
        backlog: str | None = "0"  # our own pending entries first, from the start
        while True:
            try:
                got = await self._redis.xreadgroup(
                    GROUP,
                    self._consumer,
                    {STREAM: backlog or ">"},
                    count=self._batch,
                    block=None if backlog else 1000,
                )
            except ResponseError as e:
                if "NOGROUP" not in str(e):
                    raise
                await self._ensure_group()  # the stream was deleted under us
                continue
            except (aioredis.ConnectionError, OSError):
                log.warning("redis unavailable; retrying", exc_info=True)
                await asyncio.sleep(1.0)
                continue
            entries = got[0][1] if got else []
            if backlog is not None and not entries:
                backlog = None
                continue
            for entry_id, fields in entries:
                await self._admit(_text(entry_id), fields)
            if backlog is not None:
                backlog = _text(entries[-1][0])

    async def _admit(self, entry_id: str, fields: dict[bytes | str, bytes | str]) -> None:
        if entry_id in self._held:
            return
        raw = fields.get(b"post_id") or fields.get("post_id")
        post_id = _text(raw) if raw else ""
        try:
            post_id = str(UUID(post_id))
        except ValueError:
            log.warning("malformed post entry dropped", extra={"entry": entry_id})
            await self._ack(entry_id)
            return
        if post_id in self._posts:  # delivered twice: the copy we hold airs, this one is done
            await self._ack(entry_id)
            return
        post = await self._aired.queued_post(post_id) if post_id else None
        if post is None:  # malformed, already aired, hidden or rejected: nothing to air
            await self._ack(entry_id)
            return
        self._held.add(entry_id)
        self._posts[post_id] = entry_id
        self._waiting.append(Post(entry_id, post))
        self._changed.set()

    async def _ack(self, entry_id: str) -> None:
        self._held.discard(entry_id)
        await self._redis.xack(STREAM, GROUP, entry_id)

    async def _ensure_group(self) -> None:
        try:
            await self._redis.xgroup_create(STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as e:
            if "BUSYGROUP" not in str(e):
                raise

    async def _reclaim(self) -> None:
        """Take over entries another (dead) host consumer left pending."""
        cursor: bytes | str = "0-0"
        while True:
            # Redis 6.2 answers [cursor, entries], 7.x adds deleted ids: never unpack exactly.
            reply = await self._redis.xautoclaim(
                STREAM, GROUP, self._consumer, min_idle_time=0, start_id=cursor, count=100
            )
            cursor = reply[0]
            if _text(cursor) == "0-0":
                return


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
