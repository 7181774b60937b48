"""LiveKit room tokens for listeners (subscribe and data only), and the one-time tickets pages
trade for the live-event WebSocket.

A listener never gets a publish grant from the API: the host grants the microphone (LiveKit's
update-participant API) only while the caller holds the push-to-talk floor. The identity is the
person's id, so the host can tie a caller's turn to the listener; the display name is the
nickname. A room token only lets its holder join, and cannot be revoked, so it lives
`LISTENER_TOKEN_TTL_SECONDS` (2 minutes by default): the page asks for a fresh one every time it
(re)joins, and a banned listener's old token soon stops opening the room.

Browsers cannot set headers on a WebSocket, and a URL ends up in access logs, proxies and the
browser's history; so the page never puts its API token in the socket's URL. It asks
`POST /api/ws/ticket` (with the token in the Authorization header) for a random ticket that
Redis keeps for `API_WS_TICKET_TTL_SECONDS` and that opens one connection once.
"""

from __future__ import annotations

import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import redis.asyncio as aioredis
from fastapi import APIRouter, Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials
from livekit import api as lkapi
from pydantic import BaseModel

from api.auth import CurrentPerson, Person, _bearer, read_claims
from api.events import REDIS_DOWN
from api.settings import ApiSettings
from api.state import StationDep

router = APIRouter(prefix="/api/livekit", tags=["livekit"])
tickets = APIRouter(prefix="/api/ws", tags=["events"])

TICKET_PREFIX = "radio24:ws-ticket:"


class LiveKitTokenOut(BaseModel):
    url: str
    token: str
    room: str
    identity: str
    expires_at: datetime
    # The host's participant identity: the only one (with the floor holder) whose captions the
    # page shows.
    host_identity: str


def listener_grants(room: str) -> lkapi.VideoGrants:
    return lkapi.VideoGrants(
        room_join=True,
        room=room,
        can_subscribe=True,
        can_publish=False,
        can_publish_data=True,
    )


def room_token(settings: ApiSettings, person: Person) -> tuple[str, int]:
    ttl = settings.listener_token_ttl_seconds
    token = (
        lkapi.AccessToken(settings.livekit_api_key, settings.livekit_api_secret.get_secret_value())
        .with_identity(str(person.id))
        .with_name(person.nickname)
        .with_ttl(timedelta(seconds=ttl))
        .with_grants(listener_grants(settings.radio_room))
        .to_jwt()
    )
    return token, ttl


@router.post(
    "/token",
    response_model=LiveKitTokenOut,
    responses={
        401: {"description": "no valid token"},
        403: {"description": "banned"},
        503: {"description": "the database is unavailable (Retry-After)"},
    },
)
async def livekit_token(person: CurrentPerson, station: StationDep) -> LiveKitTokenOut:
    """A short-lived token to join the station room as a listener (hear the host, send data,
    no audio). Ask again for each join: it expires within minutes."""
    settings = station.settings
    token, ttl = room_token(settings, person)
    return LiveKitTokenOut(
        url=settings.livekit_public_url or settings.livekit_url,
        token=token,
        room=settings.radio_room,
        identity=str(person.id),
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
        host_identity=settings.host_identity,
    )


# --- WebSocket tickets ---------------------------------------------------------------------------


class TicketOut(BaseModel):
    ticket: str
    expires_at: datetime


async def issue_ticket(
    redis: aioredis.Redis, person_id: str, token_expires_at: float, ttl: int
) -> str:
    """A random one-time ticket for `person_id`'s next WebSocket; the connection it opens ends
    when the API token it was bought with expires (`token_expires_at`, Unix seconds)."""
    ticket = secrets.token_urlsafe(32)
    record = json.dumps({"person_id": person_id, "token_expires_at": token_expires_at})
    await redis.set(TICKET_PREFIX + ticket, record, ex=ttl, nx=True)
    return ticket


async def redeem_ticket(redis: aioredis.Redis, ticket: str) -> tuple[str, float] | None:
    """(person id, token expiry) of a ticket, which this call uses up; None when unknown,
    expired or used. Redis errors propagate (the socket is refused)."""
    if not ticket or len(ticket) > 128:
        return None
    raw = await redis.getdel(TICKET_PREFIX + ticket)
    if raw is None:
        return None
    record = json.loads(raw)
    return str(record["person_id"]), float(record["token_expires_at"])


_Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


@tickets.post(
    "/ticket",
    response_model=TicketOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        401: {"description": "no valid token"},
        403: {"description": "banned"},
        503: {"description": "Redis is unavailable (Retry-After)"},
    },
)
async def ws_ticket(
    person: CurrentPerson, credentials: _Credentials, station: StationDep
) -> TicketOut:
    """A one-time ticket for `WS /api/ws?ticket=...`, valid for a few seconds."""
    settings = station.settings
    token = credentials.credentials if credentials else ""  # CurrentPerson checked it
    claims = read_claims(settings.api_jwt_secret.get_secret_value(), token)
    ttl = settings.api_ws_ticket_ttl_seconds
    try:
        ticket = await issue_ticket(station.redis, str(person.id), float(claims["exp"]), ttl)
    except REDIS_DOWN:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "live events are unavailable right now: retry shortly",
            {"Retry-After": "5"},
        ) from None
    return TicketOut(ticket=ticket, expires_at=datetime.fromtimestamp(time.time() + ttl, UTC))
