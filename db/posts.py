"""Listener posts in Postgres, and the one owner of their status machine.

    queued ──(host claims, airs)──▶ aired (final)
      │ ▲
      ▼ │ producers: approve / hide / reject (REVIEWS), and a ban hides what waits
    rejected, hidden

A post is stored `queued`, or `rejected` with the moderation's reason. Producers move it with
the actions of `REVIEWS` (each allowed only from the statuses it names); a banned author's queued
posts turn `hidden`. A host claims queued posts with a lease (`claim`, `renew_claims`,
`release_claims`) and marks one `aired` only while it is still queued (`mark_aired`), so a post
airs once. Every change of status is a function here over `db/queries/posts.sql`; the API and the
host call these and spell no status change themselves.

Each function takes an open psycopg async connection, so the caller chooses the pool, the
transaction and the time bound; rows are read the same whether the connection returns tuples
(the API's pool) or dicts (the host's).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, get_args
from uuid import UUID

from db.queries import load

Status = Literal["queued", "aired", "rejected", "hidden"]
STATUSES: tuple[Status, ...] = get_args(Status)
Action = Literal["approve", "hide", "reject"]


@dataclass(frozen=True)
class Move:
    """A producer's action: the status it gives, and the statuses it may take a post from."""

    to: Status
    leaves: tuple[Status, ...]


# Aired is final: no action takes a post from it.
REVIEWS: dict[Action, Move] = {
    "approve": Move("queued", ("rejected", "hidden")),
    "hide": Move("hidden", ("queued", "rejected")),
    "reject": Move("rejected", ("queued", "hidden")),
}
BANNED_REASON = "author banned"

queries = load("posts.sql")


# --- what the store answers -------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    """A post as its author sees it."""

    id: UUID
    status: Status
    reason: str | None
    text: str
    created_at: datetime
    aired_at: datetime | None = None


@dataclass(frozen=True, kw_only=True)
class ListedPost(Post):
    """A post as producers see it: with its author and when a host first claimed it."""

    author_id: UUID
    author: str
    author_banned: bool
    handed_to_host_at: datetime | None


@dataclass(frozen=True)
class Reviewed:
    """A review's outcome; `changed` False when the post already had the action's status."""

    id: UUID
    status: Status
    reason: str | None
    author_id: UUID | None
    changed: bool


@dataclass(frozen=True)
class ClaimedPost:
    """A queued post a host now holds, to air."""

    id: UUID
    text: str
    author: str
    author_id: UUID
    created_at: datetime


@dataclass(frozen=True)
class AiredPost:
    id: UUID
    author_id: UUID


@dataclass(frozen=True)
class Counts:
    by_status: dict[str, int]
    owed_to_host: int  # queued, never claimed by a host
    held_by_host: int  # queued, a host's lease running


class PostNotFound(LookupError):
    pass


class MoveRefused(ValueError):
    """The action may not take the post from its current status (aired is final)."""

    def __init__(self, action: Action, current: str) -> None:
        super().__init__(f"cannot {action} a post that is {current}")
        self.action = action
        self.current = current


def _values(row: Any) -> tuple[Any, ...]:
    return tuple(row.values()) if isinstance(row, Mapping) else tuple(row)


def _post(row: Any) -> Post:
    post_id, status, reason, created_at, text = _values(row)
    return Post(id=post_id, status=status, reason=reason, text=text, created_at=created_at)


# --- listeners' posts ---------------------------------------------------------------------------


async def insert(
    conn: Any,
    author_id: UUID,
    text: str,
    *,
    rejected: str | None = None,
    idempotency_key: str | None = None,
) -> Post | None:
    """Store a post: `queued`, or `rejected` with the reason moderation gave (`rejected`).
    None when a post with the same author and `idempotency_key` exists (a parallel retry)."""
    row = await queries.insert_post(
        conn,
        author_id=author_id,
        text=text,
        idempotency_key=idempotency_key,
        status="queued" if rejected is None else "rejected",
        reason=rejected,
    )
    return None if row is None else _post(row)


async def by_idempotency_key(conn: Any, author_id: UUID, idempotency_key: str) -> Post | None:
    row = await queries.post_by_idempotency_key(
        conn, author_id=author_id, idempotency_key=idempotency_key
    )
    return None if row is None else _post(row)


async def of_author(conn: Any, author_id: UUID, n: int) -> list[Post]:
    """A listener's own posts, newest first."""
    rows = [_values(r) async for r in queries.posts_of(conn, author_id=author_id, n=n)]
    return [
        Post(id=i, text=t, status=s, reason=r, created_at=c, aired_at=a)
        for i, t, s, r, c, a in rows
    ]


async def listing(
    conn: Any, status: Status | None, before: datetime | None, n: int
) -> list[ListedPost]:
    """Every post (or those of one status), newest first, created before `before`."""
    rows = [_values(r) async for r in queries.list_posts(conn, status=status, before=before, n=n)]
    return [
        ListedPost(
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


async def counts(conn: Any) -> Counts:
    """Posts by status, and the host's share of the queued ones (for the metrics)."""
    by_status: dict[str, int] = {}
    async for row in queries.posts_by_status(conn):
        status, n = _values(row)
        by_status[status] = int(n)
    owed = await queries.owed_to_host(conn)
    held = await queries.held_by_host(conn)
    return Counts(
        by_status=by_status,
        owed_to_host=int(_values(owed)[0] or 0) if owed is not None else 0,
        held_by_host=int(_values(held)[0] or 0) if held is not None else 0,
    )


# --- producers' decisions -------------------------------------------------------------------


async def review(
    conn: Any, post_id: UUID, action: Action, reason: str | None, reviewed_by: UUID
) -> Reviewed:
    """Apply a producer's action. A post already in the action's status is left as it is
    (`changed` False); `PostNotFound`, or `MoveRefused` when the action may not take the post
    from its status. Back to queued clears the reason; otherwise it is given or said."""
    move = REVIEWS[action]
    why = None if move.to == "queued" else (reason or f"{move.to} by a producer")
    row = await queries.review_post(
        conn,
        id=post_id,
        status=move.to,
        reason=why,
        reviewed_by=reviewed_by,
        from_statuses=list(move.leaves),
    )
    if row is not None:
        _, author_id, status, new_reason = _values(row)
        return Reviewed(post_id, status, new_reason, author_id, changed=True)
    current = await queries.post_status(conn, id=post_id)
    if current is None:
        raise PostNotFound(post_id)
    [status] = _values(current)
    if status == move.to:
        return Reviewed(post_id, move.to, None, None, changed=False)
    raise MoveRefused(action, status)


async def hide_posts_of_banned(
    conn: Any, author_id: UUID, reason: str = BANNED_REASON
) -> list[UUID]:
    """A banned author's queued posts turn hidden, never to air; their ids."""
    return [
        _values(r)[0]
        async for r in queries.hide_queued_posts_of(conn, author_id=author_id, reason=reason)
    ]


# --- the host's side: claimed with a lease, aired once ----------------------------------------


async def claim(
    conn: Any, claimer: str, n: int, lease_seconds: float, held: Sequence[UUID]
) -> list[ClaimedPost]:
    """Up to `n` queued posts nobody holds (or whose lease ran out, or `claimer`'s own, except
    `held`), oldest first, now claimed by `claimer` for `lease_seconds`."""
    rows = [
        _values(r)
        async for r in queries.claim_posts(
            conn, claimer=claimer, n=n, lease_seconds=lease_seconds, held=list(held)
        )
    ]
    posts = [
        ClaimedPost(id=i, text=t, author_id=aid, author=au, created_at=c)
        for i, t, aid, au, c in rows
    ]
    return sorted(posts, key=lambda p: (p.created_at, str(p.id)))


async def renew_claims(
    conn: Any, claimer: str, ids: Sequence[UUID], lease_seconds: float
) -> set[UUID]:
    """The posts among `ids` still queued and still `claimer`'s, their lease extended."""
    return {
        _values(r)[0]
        async for r in queries.renew_claims(
            conn, claimer=claimer, ids=list(ids), lease_seconds=lease_seconds
        )
    }


async def release_claims(conn: Any, claimer: str, keep: Sequence[UUID] = ()) -> None:
    """The host is leaving: its queued posts are free for the next host at once, except `keep`
    (aired, the mark not yet written: released, they would be claimed and aired again)."""
    await queries.release_claims(conn, claimer=claimer, keep=list(keep))


async def mark_aired(conn: Any, post_id: UUID, ref: UUID, aired_at: datetime) -> AiredPost | None:
    """Mark a post aired by the utterance `ref`; None when it was no longer queued (aired
    before, hidden, rejected), so a post delivered twice airs once."""
    row = await queries.mark_post_aired(conn, id=post_id, ref=ref, aired_at=aired_at)
    if row is None:
        return None
    post, author = _values(row)
    return AiredPost(post, author)
