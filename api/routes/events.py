"""Live events for pages: `WS /api/ws` (the snapshot, then the segment, the floor, what plays,
the listener count and the status changes of the listener's own posts), and the one-time ticket
a page opens it with (`POST /api/ws/ticket`). The fan-out itself is `api/hub.py`."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import jwt
from fastapi import APIRouter, HTTPException, WebSocket, status
from pydantic import BaseModel

from api.auth import person_by_id, person_for_token, read_claims
from api.deps import Credentials, CurrentPerson, HubDep, KeysDep, PoolDep, RedisDep, SettingsDep
from api.hub import CLOSE_FORBIDDEN, CLOSE_UNAUTHORIZED
from api.tickets import issue_ticket, redeem_ticket
from core.errors import REDIS_DOWN

router = APIRouter(prefix="/api/ws", tags=["events"])


class TicketOut(BaseModel):
    ticket: str
    expires_at: datetime


@router.post(
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
    person: CurrentPerson,
    credentials: Credentials,
    settings: SettingsDep,
    keys: KeysDep,
    redis: RedisDep,
) -> TicketOut:
    """A one-time ticket for `WS /api/ws?ticket=...`, valid for a few seconds."""
    token = credentials.credentials if credentials else ""  # CurrentPerson checked it
    claims = read_claims(settings.api_jwt_secret.get_secret_value(), token)
    ttl = settings.api_ws_ticket_ttl_seconds
    try:
        ticket = await issue_ticket(redis, keys, str(person.id), float(claims["exp"]), ttl)
    except REDIS_DOWN:
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE,
            "live events are unavailable right now: retry shortly",
            {"Retry-After": "5"},
        ) from None
    return TicketOut(ticket=ticket, expires_at=datetime.fromtimestamp(time.time() + ttl, UTC))


@router.websocket("")
async def events(
    ws: WebSocket,
    settings: SettingsDep,
    keys: KeysDep,
    redis: RedisDep,
    pool: PoolDep,
    hub: HubDep,
    ticket: str | None = None,
) -> None:
    """Live events. Authenticate with `?ticket=` (one-time, from `POST /api/ws/ticket`: browsers
    cannot set headers on a WebSocket) or an `Authorization: Bearer` header. An API token in
    the URL is refused: URLs end up in logs. The first message is a snapshot of the public
    state."""
    header = ws.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else None
    await ws.accept()
    secret = settings.api_jwt_secret.get_secret_value()
    try:
        if "token" in ws.query_params:
            raise HTTPException(401, "send a ticket from POST /api/ws/ticket, not the token")
        if token:
            person = await person_for_token(secret, pool, token)
            # Valid a moment ago; it may expire in between, which is the same answer.
            expires_at = float(read_claims(secret, token)["exp"])
        else:
            try:
                redeemed = await redeem_ticket(redis, keys, ticket or "")
            except REDIS_DOWN:
                redeemed = None
            if redeemed is None:
                raise HTTPException(401, "ticket unknown, used or expired: ask for a new one")
            person_id, expires_at = redeemed
            person = await person_by_id(pool, uuid.UUID(person_id))
    except HTTPException as exc:
        code = CLOSE_FORBIDDEN if exc.status_code == 403 else CLOSE_UNAUTHORIZED
        await ws.close(code, str(exc.detail))
        return
    except jwt.InvalidTokenError:
        await ws.close(CLOSE_UNAUTHORIZED, "token expired: sign in again")
        return
    await hub.serve(ws, person, expires_at)
