"""Who is asking: people as Postgres has them now, and the API's own tokens.

Tokens are JWTs (HS256, `API_JWT_SECRET`) that name the person; the role and the ban are read
from Postgres on every request (`person_by_id`), so a ban or a demotion takes effect at once, not
at expiry. The routes that hand tokens out are in `api/routes/session.py`; the dependencies that
read them (`CurrentPerson`, `Producer`) in `api/deps.py`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from fastapi import HTTPException, status
from psycopg_pool import AsyncConnectionPool

from db.queries import load

Role = Literal["listener", "producer", "admin"]
STAFF: tuple[Role, ...] = ("producer", "admin")
ISSUER = AUDIENCE = "radio24"
ALGORITHM = "HS256"

people = load("people.sql")


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


def unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, {"WWW-Authenticate": "Bearer"})


async def person_for_token(secret: str, pool: AsyncConnectionPool, token: str | None) -> Person:
    """The person behind a bearer token: 401 when it is missing or invalid, 403 when banned."""
    if not token:
        raise unauthorized("sign in first: send Authorization: Bearer <token>")
    try:
        person_id = read_token(secret, token)
    except jwt.ExpiredSignatureError:
        raise unauthorized("token expired: sign in again") from None
    except jwt.InvalidTokenError:
        raise unauthorized("invalid token") from None
    return await person_by_id(pool, person_id)


async def person_by_id(pool: AsyncConnectionPool, person_id: uuid.UUID) -> Person:
    """The person as Postgres has them now: 401 when gone, 403 when banned."""
    async with pool.connection() as conn:
        row = await people.person_by_id(conn, id=person_id)
    if row is None:
        raise unauthorized("unknown person: sign in again")
    if row[3] is not None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "banned from this station")
    return Person(row[0], row[1], row[2])
