"""Who is asking: guest listeners by nickname, producers by password, and the API's own tokens.

Tokens are JWTs (HS256, `API_JWT_SECRET`) that name the person; the role and the ban are read
from Postgres on every request, so a ban or a demotion takes effect at once, not at expiry.

Sign-in is counted before any password is checked: per client address and per account name,
atomically in Redis, right or wrong, known name or not, and refused when Redis cannot count. The
argon2 checks run in a small pool of their own, never in the thread pool the rest of the API
shares, and an unknown name costs the same check as a known one, so neither the answer nor its
time tells which staff names exist. Guest nicknames are open to anyone (they may repeat); only
the station's own names and their look-alikes are refused, and the same moderation as posts
applies to them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field, field_validator

from api import limits, screener
from api.moderation import clean_nickname
from api.queries import queries
from api.state import Station, StationDep

Role = Literal["listener", "producer", "admin"]
STAFF: tuple[Role, ...] = ("producer", "admin")
ISSUER = AUDIENCE = "radio24"
ALGORITHM = "HS256"

hasher = PasswordHasher()
log = logging.getLogger("radio24.api.auth")


@functools.cache
def _dummy_hash() -> str:
    """Verified against when the username is unknown, so a wrong name costs as long as a wrong
    password and does not reveal which names exist."""
    return hasher.hash("radio24-no-such-user")


router = APIRouter(prefix="/api", tags=["auth"])
_bearer = HTTPBearer(auto_error=False, description="The token from /api/session or /api/auth/login")


@dataclass(frozen=True)
class Person:
    id: uuid.UUID
    nickname: str
    role: Role

    @property
    def staff(self) -> bool:
        return self.role in STAFF


def issue_token(
    secret: str, person: Person, ttl: int, *, now: float | None = None
) -> tuple[str, int]:
    """A signed token for `person`, and its expiry (Unix seconds)."""
    issued = int(time.time() if now is None else now)
    expires = issued + ttl
    claims = {
        "sub": str(person.id),
        "role": person.role,
        "name": person.nickname,
        "iat": issued,
        "exp": expires,
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM), expires


def read_claims(secret: str, token: str) -> dict[str, Any]:
    """The claims of a valid token; `jwt.InvalidTokenError` for anything else (forged, expired,
    another algorithm including `none`, another audience)."""
    return jwt.decode(
        token,
        secret,
        algorithms=[ALGORITHM],
        audience=AUDIENCE,
        issuer=ISSUER,
        options={"require": ["sub", "exp", "iat"]},
    )


def read_token(secret: str, token: str) -> uuid.UUID:
    """The person id a valid token names; `jwt.InvalidTokenError` as for `read_claims`."""
    claims = read_claims(secret, token)
    try:
        return uuid.UUID(str(claims["sub"]))
    except ValueError as exc:
        raise jwt.InvalidTokenError("subject is not a person id") from exc


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": "Bearer"})


async def person_for_token(station: StationDep, token: str | None) -> Person:
    """The person behind a bearer token: 401 when it is missing or invalid, 403 when banned."""
    if not token:
        raise _unauthorized("sign in first: send Authorization: Bearer <token>")
    try:
        person_id = read_token(station.settings.api_jwt_secret.get_secret_value(), token)
    except jwt.ExpiredSignatureError:
        raise _unauthorized("token expired: sign in again") from None
    except jwt.InvalidTokenError:
        raise _unauthorized("invalid token") from None
    return await person_by_id(station, person_id)


async def person_by_id(station: Station, person_id: uuid.UUID) -> Person:
    """The person as Postgres has them now: 401 when gone, 403 when banned."""
    async with station.pool.connection() as conn:
        row = await queries.person_by_id(conn, id=person_id)
    if row is None:
        raise _unauthorized("unknown person: sign in again")
    if row[3] is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "banned from this station")
    return Person(row[0], row[1], row[2])


async def _current_person(
    station: StationDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Person:
    return await person_for_token(station, credentials.credentials if credentials else None)


CurrentPerson = Annotated[Person, Depends(_current_person)]


def require(*roles: Role) -> Callable[..., Awaitable[Person]]:
    async def check(person: CurrentPerson) -> Person:
        if person.role not in roles:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs role: {' or '.join(roles)}")
        return person

    return check


Producer = Annotated[Person, Depends(require("producer", "admin"))]


# --- Routes ------------------------------------------------------------------------------------


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


def _token_out(station: StationDep, person: Person, ttl: int) -> TokenOut:
    token, expires = issue_token(station.settings.api_jwt_secret.get_secret_value(), person, ttl)
    return TokenOut(
        token=token,
        expires_at=datetime.fromtimestamp(expires, UTC),
        person=PersonOut(id=person.id, nickname=person.nickname, role=person.role),
    )


def client_address(request: Request) -> str:
    """The client's address: the socket's peer, or what a trusted proxy said it was
    (API_TRUSTED_PROXIES; the middleware in api/main.py has already rewritten it then)."""
    return request.client.host if request.client else "?"


def _too_many(detail: str, decision: limits.Decision) -> HTTPException:
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS, detail, {"Retry-After": str(decision.retry_after)}
    )


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
async def start_session(body: SessionIn, request: Request, station: StationDep) -> TokenOut:
    """Become a guest listener under a nickname; returns the API token for the other routes.
    New sessions are limited per client address (429 with Retry-After). The nickname passes
    the same moderation as posts (422 naming why when refused)."""
    settings = station.settings
    decision = await limits.hit(
        station.redis,
        f"session:{client_address(request)}",
        settings.api_session_rate_limit,
        settings.api_session_rate_window_seconds,
    )
    if not decision.allowed:
        raise _too_many("too many new sessions from this address: wait and retry", decision)
    try:
        verdict = await screener.screen(station, body.nickname)
    except screener.ModerationUnavailable:
        raise _MODERATION_AWAY from None
    if not verdict.allowed:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"nickname refused ({verdict.reason}): choose another",
        )
    async with station.pool.connection() as conn:
        row = await queries.insert_listener(conn, nickname=body.nickname)
    person = Person(row[0], row[1], row[2])
    station.metrics.sessions.inc()
    return _token_out(station, person, station.settings.api_session_ttl_seconds)


class LoginIn(BaseModel):
    username: str = Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")
    password: str = Field(min_length=1, max_length=1024)


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


def _checker(request: Request) -> PasswordChecker:
    checker = getattr(request.app.state, "password_checker", None)
    if checker is None:
        settings = request.app.state.station.settings
        checker = PasswordChecker(settings.api_login_concurrency, settings.api_login_queue)
        request.app.state.password_checker = checker
    return checker  # type: ignore[no-any-return]


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
async def login(body: LoginIn, request: Request, station: StationDep) -> Any:
    """A producer or admin signs in with the username and password set by `radio24 producer add`."""
    settings = station.settings
    window = settings.api_login_rate_window_seconds
    # Counted before the password, right or wrong, known name or not: a guesser over either
    # limit learns nothing more, and a parallel burst is counted one by one.
    counters = (
        (f"login:address:{client_address(request)}", settings.api_login_rate_limit),
        (f"login:account:{body.username.casefold()}", settings.api_login_account_rate_limit),
    )
    for key, limit in counters:
        try:
            decision = await limits.hit(station.redis, key, limit, window, fail_open=False)
        except limits.Unavailable:
            raise _SIGN_IN_AWAY from None
        if not decision.allowed:
            raise _too_many("too many sign-in attempts: wait and retry", decision)
    async with station.pool.connection() as conn:
        row = await queries.staff_by_name(conn, name=body.username)
    checker = _checker(request)
    ok, rehash = await checker.verify(row[3] if row else _dummy_hash(), body.password)
    if not ok or row is None:
        raise _unauthorized("wrong username or password")
    if row[4] is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this account is disabled")
    if rehash:
        new_hash = await checker.hash(body.password)
        async with station.pool.connection() as conn:
            await queries.set_password_hash(conn, id=row[0], password_hash=new_hash)
    person = Person(row[0], row[1], row[2])
    log.info("staff signed in", extra={"person_id": str(person.id), "role": person.role})
    return _token_out(station, person, settings.api_producer_ttl_seconds)


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
