"""Signing in: guest listeners by nickname, producers by password; and who a token is.

Sign-in is counted before any password is checked: per client address and per account name,
atomically in Redis, right or wrong, known name or not, and refused when Redis cannot count. The
argon2 checks run in a pool of their own (`api.passwords`), and an unknown name costs the same
check as a known one. Guest nicknames are open to anyone (they may repeat); only the station's
own names and their look-alikes are refused, and the same moderation as posts applies to them.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field, field_validator

from api import limits
from api.auth import Person, Role, issue_token, people, unauthorized
from api.deps import (
    CurrentPerson,
    KeysDep,
    MetricsDep,
    PasswordsDep,
    PoolDep,
    RedisDep,
    ScreenerDep,
    SettingsDep,
)
from api.errors import too_many
from api.moderation import clean_nickname
from api.passwords import dummy_hash
from api.screener import ModerationUnavailable
from api.settings import ApiSettings

log = logging.getLogger("radio24.api.auth")
router = APIRouter(prefix="/api", tags=["auth"])


class SessionIn(BaseModel):
    nickname: str = Field(max_length=200, examples=["Mika"])

    @field_validator("nickname")
    @classmethod
    def _nickname(cls, value: str) -> str:
        return clean_nickname(value)


class PersonOut(BaseModel):
    id: uuid.UUID
    nickname: str
    role: Role


class TokenOut(BaseModel):
    token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    person: PersonOut


def _token_out(settings: ApiSettings, person: Person, ttl: int) -> TokenOut:
    token, expires = issue_token(settings.api_jwt_secret.get_secret_value(), person, ttl)
    return TokenOut(
        token=token,
        expires_at=datetime.fromtimestamp(expires, UTC),
        person=PersonOut(id=person.id, nickname=person.nickname, role=person.role),
    )


def client_address(request: Request) -> str:
    """The client's address: the socket's peer, or what a trusted proxy said it was
    (API_TRUSTED_PROXIES; the middleware in api/middleware.py has already rewritten it then)."""
    return request.client.host if request.client else "?"


_MODERATION_AWAY = HTTPException(
    status.HTTP_503_SERVICE_UNAVAILABLE,
    "the station cannot check nicknames right now: retry in a minute",
    {"Retry-After": "30"},
)


@router.post(
    "/session",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenOut,
    responses={
        422: {"description": "the nickname is invalid, reserved, or refused by moderation"},
        429: {"description": "too many new sessions from this address (Retry-After)"},
        503: {"description": "moderation or the database is unavailable (Retry-After)"},
    },
)
async def start_session(
    body: SessionIn,
    request: Request,
    settings: SettingsDep,
    keys: KeysDep,
    redis: RedisDep,
    pool: PoolDep,
    screener: ScreenerDep,
    metrics: MetricsDep,
) -> TokenOut:
    """Become a guest listener under a nickname; returns the API token for the other routes.
    New sessions are limited per client address (429 with Retry-After). The nickname passes
    the same moderation as posts (422 naming why when refused)."""
    decision = await limits.hit(
        redis,
        keys.rate_limit(f"session:{client_address(request)}"),
        settings.api_session_rate_limit,
        settings.api_session_rate_window_seconds,
    )
    if not decision.allowed:
        raise too_many(
            "too many new sessions from this address: wait and retry", decision.retry_after
        )
    try:
        verdict = await screener.screen(body.nickname)
    except ModerationUnavailable:
        raise _MODERATION_AWAY from None
    if not verdict.allowed:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"nickname refused ({verdict.reason}): choose another",
        )
    async with pool.connection() as conn:
        row = await people.insert_listener(conn, nickname=body.nickname)
    person = Person(row[0], row[1], row[2])
    metrics.sessions.inc()
    return _token_out(settings, person, settings.api_session_ttl_seconds)


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    password: str = Field(min_length=1, max_length=1024)


_SIGN_IN_AWAY = HTTPException(
    status.HTTP_503_SERVICE_UNAVAILABLE,
    "sign-in is unavailable right now (its attempt counter is away): retry shortly",
    {"Retry-After": "5"},
)


@router.post(
    "/auth/login",
    response_model=TokenOut,
    responses={
        401: {"description": "wrong username or password (the same answer for both)"},
        403: {"description": "this account is disabled"},
        429: {"description": "too many attempts from this address or for this name"},
        503: {"description": "sign-in cannot count attempts or is busy (Retry-After)"},
    },
)
async def login(
    body: LoginIn,
    request: Request,
    settings: SettingsDep,
    keys: KeysDep,
    redis: RedisDep,
    pool: PoolDep,
    checker: PasswordsDep,
) -> Any:
    """A producer or admin signs in with the username and password set by `radio24 producer add`."""
    window = settings.api_login_rate_window_seconds
    # Counted before the password, right or wrong, known name or not: a guesser over either
    # limit learns nothing more, and a parallel burst is counted one by one.
    counters = (
        (f"login:address:{client_address(request)}", settings.api_login_rate_limit),
        (f"login:account:{body.username.casefold()}", settings.api_login_account_rate_limit),
    )
    for name, limit in counters:
        try:
            decision = await limits.hit(
                redis, keys.rate_limit(name), limit, window, fail_open=False
            )
        except limits.Unavailable:
            raise _SIGN_IN_AWAY from None
        if not decision.allowed:
            raise too_many("too many sign-in attempts: wait and retry", decision.retry_after)
    async with pool.connection() as conn:
        row = await people.staff_by_name(conn, name=body.username)
    ok, rehash = await checker.verify(row[3] if row else dummy_hash(), body.password)
    if not ok or row is None:
        raise unauthorized("wrong username or password")
    if row[4] is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this account is disabled")
    if rehash:
        new_hash = await checker.hash(body.password)
        async with pool.connection() as conn:
            await people.set_password_hash(conn, id=row[0], password_hash=new_hash)
    person = Person(row[0], row[1], row[2])
    log.info("staff signed in", extra={"person_id": str(person.id), "role": person.role})
    return _token_out(settings, person, settings.api_producer_ttl_seconds)


@router.get(
    "/me",
    response_model=PersonOut,
    responses={
        401: {"description": "no valid token: sign in"},
        403: {"description": "banned"},
        503: {"description": "the database is unavailable (Retry-After)"},
    },
)
async def me(person: CurrentPerson) -> PersonOut:
    """Who this token belongs to."""
    return PersonOut(id=person.id, nickname=person.nickname, role=person.role)
