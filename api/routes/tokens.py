"""LiveKit room tokens for listeners (subscribe and data only).

A listener never gets a publish grant from the API: the host grants the microphone (LiveKit's
update-participant API) only while the caller holds the push-to-talk floor. The identity is the
person's id, so the host can tie a caller's turn to the listener; the display name is the
nickname. A room token only lets its holder join, and cannot be revoked, so it lives
`LISTENER_TOKEN_TTL_SECONDS` (2 minutes by default): the page asks for a fresh one every time it
(re)joins, and a banned listener's old token soon stops opening the room. (The live-event
socket's tickets are in `api/routes/events.py`.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from livekit import api as lkapi
from pydantic import BaseModel

from api.auth import Person
from api.deps import CurrentPerson, SettingsDep
from api.settings import ApiSettings

router = APIRouter(prefix="/api/livekit", tags=["livekit"])


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
async def livekit_token(person: CurrentPerson, settings: SettingsDep) -> LiveKitTokenOut:
    """A short-lived token to join the station room as a listener (hear the host, send data,
    no audio). Ask again for each join: it expires within minutes."""
    token, ttl = room_token(settings, person)
    return LiveKitTokenOut(
        url=settings.livekit_public_url or settings.livekit_url,
        token=token,
        room=settings.radio_room,
        identity=str(person.id),
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
        host_identity=settings.host_identity,
    )
