"""Listener posts: written, moderated, stored, handed to the host; reviewed by producers.

Status flow: `queued → aired | rejected | hidden`. Postgres is the source of truth: a post is
stored (rejected ones too, with the reason) and only then is the host's doorbell rung
(api/queue.py); the host claims it from Postgres. Redis down: the post is stored and airs
(201). Postgres down or hanging: 503 with Retry-After, and nothing was stored or sent.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, Field, field_validator

from api import limits, moderation, screener
from api.auth import CurrentPerson, Producer
from api.events import post_status_event, publish
from api.queries import queries
from api.state import Station, StationDep

log = logging.getLogger("radio24.api.posts")
router = APIRouter(prefix="/api/posts", tags=["posts"])

PostStatus = Literal["queued", "aired", "rejected", "hidden"]


class PostIn(BaseModel):
    text: str = Field(examples=["Good morning from Osaka! Play something calm?"])

    @field_validator("text")
    @classmethod
    def _text(cls, value: str) -> str:
        return moderation.clean_post_text(value)


class PostOut(BaseModel):
    id: uuid.UUID
    status: PostStatus
    reason: str | None = None
    text: str
    created_at: datetime
    aired_at: datetime | None = None


class ReviewedPostOut(PostOut):
    author_id: uuid.UUID
    author: str
    author_banned: bool
    handed_to_host_at: datetime | None = None


def _post(row: Any) -> PostOut:
    post_id, status_, reason, created_at, text = row
    return PostOut(id=post_id, status=status_, reason=reason, text=text, created_at=created_at)


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=128,
        pattern=r"^[\x21-\x7e]+$",
        description="Any unique string per post; a retry with the same key returns the same post",
    ),
]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=PostOut,
    responses={
        503: {"description": "The database or moderation is unavailable; nothing was stored"}
    },
)
async def create_post(
    body: PostIn,
    person: CurrentPerson,
    station: StationDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> PostOut:
    """Send a post to the host. `status` is `queued`, or `rejected` with the reason when
    moderation refuses it. Listeners may send a few posts a minute (429 with Retry-After).
    201 means stored: it airs even if the live-event service (Redis) is down. 503 (with
    Retry-After) means the database is unavailable and nothing was stored: send it again,
    with the same Idempotency-Key if you set one."""
    settings = station.settings
    if idempotency_key is not None:
        async with station.pool.connection() as conn:
            row = await queries.post_by_idempotency_key(
                conn, author_id=person.id, idempotency_key=idempotency_key
            )
        if row is not None:
            return _replayed(row, body, response, station)
    # The blocklist (Postgres) before the rate limit (Redis): a database that is down refuses
    # the post before it costs the listener one of their posts of the minute.
    terms = await screener.blocklist(station)
    if not person.staff:
        decision = await limits.hit(
            station.redis,
            f"posts:{person.id}",
            settings.api_post_rate_limit,
            settings.api_post_rate_window_seconds,
        )
        if not decision.allowed:
            raise HTTPException(
                status.HTTP_429_TOO_MANY_REQUESTS,
                f"too many posts: {settings.api_post_rate_limit} per "
                f"{settings.api_post_rate_window_seconds} s; retry in {decision.retry_after} s",
                {"Retry-After": str(decision.retry_after)},
            )
    verdict = moderation.blocklist_verdict(body.text, terms)
    if verdict.allowed:
        try:
            verdict = await screener.openai_verdict(station, body.text)
        except screener.ModerationUnavailable:
            # Moderation must not fail open: nothing is stored, the listener sends it again.
            raise HTTPException(
                status.HTTP_503_SERVICE_UNAVAILABLE,
                "moderation is unavailable right now; your post was not stored, send it again",
                {"Retry-After": "30"},
            ) from None
    async with station.pool.connection() as conn:
        row = await queries.insert_post(
            conn,
            author_id=person.id,
            text=body.text,
            idempotency_key=idempotency_key,
            status="queued" if verdict.allowed else "rejected",
            reason=verdict.reason,
        )
        if row is None:  # the same key raced in from a parallel retry
            row = await queries.post_by_idempotency_key(
                conn, author_id=person.id, idempotency_key=idempotency_key
            )
            return _replayed(row, body, response, station)
    post = _post(row)
    station.metrics.posts_created.labels(post.status).inc()
    log.info(
        "post stored",
        extra={"post_id": str(post.id), "status": post.status, "person_id": str(person.id)},
    )
    if post.status == "queued":
        await station.doorbell.ring(post.id)
        station.embed_wake.set()
    await publish(station.redis, post_status_event(post.id, person.id, post.status))
    return post


def _replayed(row: Any, body: PostIn, response: Response, station: Station) -> PostOut:
    post = _post(row)
    if post.text != body.text:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "Idempotency-Key already used for a different post: use a new key for new text",
        )
    station.metrics.posts_created.labels("replayed").inc()
    response.headers["Idempotent-Replayed"] = "true"
    return post


@router.get("/mine", response_model=list[PostOut])
async def my_posts(
    person: CurrentPerson, station: StationDep, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> list[PostOut]:
    """Your own posts, newest first, with their status (and the reason when rejected)."""
    async with station.pool.connection() as conn:
        rows = [r async for r in queries.posts_of(conn, author_id=person.id, n=limit)]
    return [
        PostOut(id=i, text=t, status=s, reason=r, created_at=c, aired_at=a)
        for i, t, s, r, c, a in rows
    ]


@router.get("", response_model=list[ReviewedPostOut])
async def list_posts(
    _: Producer,
    station: StationDep,
    status_: Annotated[PostStatus | None, Query(alias="status")] = None,
    before: Annotated[datetime | None, Query(description="page: created before this time")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ReviewedPostOut]:
    """Producers: posts newest first, optionally of one status; page with `before`."""
    if before is not None and before.tzinfo is None:
        raise HTTPException(422, "before needs a timezone, e.g. 2026-01-01T00:00:00Z")
    async with station.pool.connection() as conn:
        rows = [r async for r in queries.list_posts(conn, status=status_, before=before, n=limit)]
    return [
        ReviewedPostOut(
            id=i,
            text=t,
            status=s,
            reason=r,
            created_at=c,
            aired_at=a,
            author_id=aid,
            author=au,
            author_banned=ab,
            handed_to_host_at=eq,
        )
        for i, t, s, r, c, a, aid, au, ab, eq in rows
    ]


class ReviewIn(BaseModel):
    action: Literal["approve", "hide", "reject"]
    reason: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class ReviewOut(BaseModel):
    id: uuid.UUID
    status: PostStatus
    reason: str | None


# action → (new status, statuses it may leave). Aired is final.
REVIEWS: dict[str, tuple[PostStatus, tuple[PostStatus, ...]]] = {
    "approve": ("queued", ("rejected", "hidden")),
    "hide": ("hidden", ("queued", "rejected")),
    "reject": ("rejected", ("queued", "hidden")),
}


@router.patch("/{post_id}", response_model=ReviewOut)
async def review_post(
    post_id: uuid.UUID, body: ReviewIn, producer: Producer, station: StationDep
) -> ReviewOut:
    """Producers: approve (back to the queue), hide or reject a post. An aired post is final."""
    target, sources = REVIEWS[body.action]
    reason = None if target == "queued" else (body.reason or f"{target} by a producer")
    async with station.pool.connection() as conn:
        row = await queries.review_post(
            conn,
            id=post_id,
            status=target,
            reason=reason,
            reviewed_by=producer.id,
            from_statuses=list(sources),
        )
        if row is None:
            current = await queries.post_status(conn, id=post_id)
    if row is None:
        if current is None:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "no such post")
        if current == target:
            return ReviewOut(id=post_id, status=target, reason=None)
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"cannot {body.action} a post that is {current}"
        )
    _, author_id, new_status, new_reason = row
    log.info(
        "post reviewed",
        extra={"post_id": str(post_id), "status": new_status, "producer_id": str(producer.id)},
    )
    if new_status == "queued":
        await station.doorbell.ring(post_id)
        station.embed_wake.set()
    await publish(station.redis, post_status_event(post_id, author_id, new_status))
    return ReviewOut(id=post_id, status=new_status, reason=new_reason)
