"""Listener posts: sent by listeners, read back by their authors, reviewed by producers.

A post is taken in by the mailbag (`api/mailbag.py`: rate limit, moderation, Postgres, the
host's doorbell, live events); its statuses and their moves are `db.posts`'
(`queued → aired | rejected | hidden`). Redis down: the post is stored and airs (201). Postgres
down or hanging: 503 with Retry-After, and nothing was stored or sent.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, Response, status
from pydantic import BaseModel, Field, field_validator

from api import moderation
from api.deps import CurrentPerson, MailbagDep, PoolDep, Producer
from api.errors import SIGNED_IN
from api.mailbag import KeyReused, TooManyPosts
from api.screener import ModerationUnavailable
from db import posts

router = APIRouter(
    prefix="/api/posts",
    tags=["posts"],
    responses={
        **SIGNED_IN,
        404: {"description": "no such post"},
        409: {"description": "the post cannot make that move, or the key was reused"},
        429: {"description": "too many posts (Retry-After)"},
    },
)

PostStatus = posts.Status


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


def _out(post: posts.Post) -> PostOut:
    return PostOut(
        id=post.id,
        status=post.status,
        reason=post.reason,
        text=post.text,
        created_at=post.created_at,
        aired_at=post.aired_at,
    )


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
    mailbag: MailbagDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> PostOut:
    """Send a post to the host. `status` is `queued`, or `rejected` with the reason when
    moderation refuses it. Listeners may send a few posts a minute (429 with Retry-After).
    201 means stored: it airs even if the live-event service (Redis) is down. 503 (with
    Retry-After) means the database is unavailable and nothing was stored: send it again,
    with the same Idempotency-Key if you set one."""
    try:
        taken = await mailbag.take(person, body.text, idempotency_key)
    except TooManyPosts as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, str(exc), {"Retry-After": str(exc.retry_after)}
        ) from None
    except ModerationUnavailable:
        # Moderation must not fail open: nothing is stored, the listener sends it again.
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "moderation is unavailable right now; your post was not stored, send it again",
            {"Retry-After": "30"},
        ) from None
    except KeyReused:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            "Idempotency-Key already used for a different post: use a new key for new text",
        ) from None
    if taken.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return _out(taken.post)


@router.get("/mine", response_model=list[PostOut])
async def my_posts(
    person: CurrentPerson, pool: PoolDep, limit: Annotated[int, Query(ge=1, le=100)] = 50
) -> list[PostOut]:
    """Your own posts, newest first, with their status (and the reason when rejected)."""
    async with pool.connection() as conn:
        mine = await posts.of_author(conn, person.id, limit)
    return [_out(p) for p in mine]


@router.get("", response_model=list[ReviewedPostOut])
async def list_posts(
    _: Producer,
    pool: PoolDep,
    status_: Annotated[PostStatus | None, Query(alias="status")] = None,
    before: Annotated[datetime | None, Query(description="page: created before this time")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> list[ReviewedPostOut]:
    """Producers: posts newest first, optionally of one status; page with `before`."""
    if before is not None and before.tzinfo is None:
        raise HTTPException(422, "before needs a timezone, e.g. 2026-01-01T00:00:00Z")
    async with pool.connection() as conn:
        listed = await posts.listing(conn, status_, before, limit)
    return [
        ReviewedPostOut(
            id=p.id,
            text=p.text,
            status=p.status,
            reason=p.reason,
            created_at=p.created_at,
            aired_at=p.aired_at,
            author_id=p.author_id,
            author=p.author,
            author_banned=p.author_banned,
            handed_to_host_at=p.handed_to_host_at,
        )
        for p in listed
    ]


class ReviewIn(BaseModel):
    action: posts.Action
    reason: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class ReviewOut(BaseModel):
    id: uuid.UUID
    status: PostStatus
    reason: str | None


@router.patch("/{post_id}", response_model=ReviewOut)
async def review_post(
    post_id: uuid.UUID, body: ReviewIn, producer: Producer, mailbag: MailbagDep
) -> ReviewOut:
    """Producers: approve (back to the queue), hide or reject a post. An aired post is final."""
    try:
        reviewed = await mailbag.review(post_id, body.action, body.reason, producer)
    except posts.PostNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such post") from None
    except posts.MoveRefused as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return ReviewOut(id=post_id, status=reviewed.status, reason=reviewed.reason)
