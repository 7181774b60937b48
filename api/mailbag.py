"""The mailbag: how a listener's post comes in, and how a producer's decision goes out.

A post is taken in named steps (`Mailbag.take`): a retry with its Idempotency-Key answers the
post stored before (`earlier`); the producers' blocklist is read (Postgres, so a database that
is down refuses the post before it costs the listener one of their posts of the minute); then
`rate_limit` (Redis), `moderate` (the blocklist, then OpenAI's moderation when set), `store`
(Postgres: queued, or rejected with the reason), `ring` (the host's doorbell, and the embedding
worker) and `publish` (the post's status to its author's pages). Postgres is the truth: Redis down
costs the post nothing (stored and aired, 201); Postgres down or moderation away means nothing
was stored (503). The statuses and their moves are `db.posts`'.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from api import limits, moderation
from api.auth import Person
from api.doorbell import Doorbell
from api.hub import EventHub
from api.metrics import Metrics
from api.screener import Screener
from api.settings import ApiSettings
from contract.events import PostStatusEvent
from contract.keys import Keys
from db import posts

log = logging.getLogger("radio24.api.posts")


class TooManyPosts(Exception):
    """Over the listener's posts per window."""

    def __init__(self, limit: int, window: int, retry_after: int) -> None:
        super().__init__(f"too many posts: {limit} per {window} s; retry in {retry_after} s")
        self.retry_after = retry_after


class KeyReused(Exception):
    """The Idempotency-Key names an earlier post with another text."""


@dataclass(frozen=True)
class Taken:
    post: posts.Post
    replayed: bool = False  # the post an earlier request with the same key stored


class Mailbag:
    def __init__(
        self,
        *,
        settings: ApiSettings,
        pool: AsyncConnectionPool,
        redis: aioredis.Redis,
        keys: Keys,
        metrics: Metrics,
        screener: Screener,
        doorbell: Doorbell,
        hub: EventHub,
        embed_wake: asyncio.Event,
    ) -> None:
        self.settings = settings
        self.pool = pool
        self.redis = redis
        self.keys = keys
        self.metrics = metrics
        self.screener = screener
        self.doorbell = doorbell
        self.hub = hub
        self.embed_wake = embed_wake

    # --- a post comes in ----------------------------------------------------------------------

    async def take(self, author: Person, text: str, idempotency_key: str | None) -> Taken:
        """Take a listener's post in; `TooManyPosts`, `api.screener.ModerationUnavailable`
        (nothing stored) or `KeyReused` when it cannot be."""
        if idempotency_key is not None:
            earlier = await self.earlier(author, text, idempotency_key)
            if earlier is not None:
                return earlier
        terms = await self.screener.blocklist()  # before the rate limit (see the module's notes)
        await self.rate_limit(author)
        verdict = await self.moderate(text, terms)
        taken = await self.store(author, text, idempotency_key, verdict)
        if taken.replayed:
            return taken
        if taken.post.status == "queued":
            await self.ring(taken.post.id)
        await self.publish(taken.post.id, author.id, taken.post.status)
        return taken

    async def earlier(self, author: Person, text: str, idempotency_key: str) -> Taken | None:
        """The post a request with this key stored before, if any."""
        async with self.pool.connection() as conn:
            post = await posts.by_idempotency_key(conn, author.id, idempotency_key)
        return None if post is None else self._replayed(post, text)

    async def rate_limit(self, author: Person) -> None:
        """Listeners may send a few posts per window (Redis; let through when it is away);
        staff are not limited."""
        if author.staff:
            return
        settings = self.settings
        decision = await limits.hit(
            self.redis,
            self.keys.rate_limit(f"posts:{author.id}"),
            settings.api_post_rate_limit,
            settings.api_post_rate_window_seconds,
        )
        if not decision.allowed:
            raise TooManyPosts(
                settings.api_post_rate_limit,
                settings.api_post_rate_window_seconds,
                decision.retry_after,
            )

    async def moderate(self, text: str, blocklist: list[str]) -> moderation.Verdict:
        """The blocklist, then OpenAI's moderation; `ModerationUnavailable` never fails open."""
        verdict = moderation.blocklist_verdict(text, blocklist)
        if verdict.allowed:
            verdict = await self.screener.openai_verdict(text)
        return verdict

    async def store(
        self,
        author: Person,
        text: str,
        idempotency_key: str | None,
        verdict: moderation.Verdict,
    ) -> Taken:
        """Postgres: the post, queued or rejected with the reason."""
        async with self.pool.connection() as conn:
            post = await posts.insert(
                conn,
                author.id,
                text,
                rejected=None if verdict.allowed else verdict.reason,
                idempotency_key=idempotency_key,
            )
            if post is None:  # the same key raced in from a parallel retry
                assert idempotency_key is not None
                raced = await posts.by_idempotency_key(conn, author.id, idempotency_key)
                assert raced is not None
                return self._replayed(raced, text)
        self.metrics.posts_created.labels(post.status).inc()
        log.info(
            "post stored",
            extra={"post_id": str(post.id), "status": post.status, "person_id": str(author.id)},
        )
        return Taken(post)

    async def ring(self, post_id: uuid.UUID) -> None:
        """A queued post: wake the host (best effort) and the embedding worker."""
        await self.doorbell.ring(post_id)
        self.embed_wake.set()

    async def publish(self, post_id: uuid.UUID, author_id: uuid.UUID, status: str) -> None:
        """The post's status to its author's pages and the producers' (best effort)."""
        await self.hub.publish(
            PostStatusEvent(post_id=str(post_id), listener_id=str(author_id), status=status)
        )

    def _replayed(self, post: posts.Post, text: str) -> Taken:
        if post.text != text:
            raise KeyReused
        self.metrics.posts_created.labels("replayed").inc()
        return Taken(post, replayed=True)

    # --- a producer's decision goes out ------------------------------------------------------

    async def review(
        self, post_id: uuid.UUID, action: posts.Action, reason: str | None, producer: Person
    ) -> posts.Reviewed:
        """Apply a producer's action (`db.posts.review`: `PostNotFound`, `MoveRefused`); a post
        that changed is handed to the host again when queued, and its author told."""
        async with self.pool.connection() as conn:
            reviewed = await posts.review(conn, post_id, action, reason, producer.id)
        if not reviewed.changed:
            return reviewed
        log.info(
            "post reviewed",
            extra={
                "post_id": str(post_id),
                "status": reviewed.status,
                "producer_id": str(producer.id),
            },
        )
        if reviewed.status == "queued":
            await self.ring(post_id)
        await self.publish(post_id, reviewed.author_id, reviewed.status)  # type: ignore[arg-type]
        return reviewed
