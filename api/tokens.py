"""LiveKit room tokens for listeners: subscribe and data only.

A listener never gets a publish grant from the API: the host grants the microphone (LiveKit's
update-participant API) only while the caller holds the push-to-talk floor. The identity is the
person's id, so the host can tie a caller's turn to the listener; the display name is the
nickname. The TTL is short: a client asks again when it reconnects.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from fastapi import APIRouter
from livekit import api as lkapi
from pydantic import BaseModel

from api.auth import CurrentPerson, Person
from api.settings import ApiSettings
from api.state import StationDep

router = APIRouter(prefix="/api/livekit", tags=["livekit"])


class LiveKitTokenOut(BaseModel):
    url: str
    token: str
    room: str
    identity: str
    expires_at: datetime


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


@router.post("/token", response_model=LiveKitTokenOut)
async def livekit_token(person: CurrentPerson, station: StationDep) -> LiveKitTokenOut:
    """A token to join the station room as a listener (hear the host, send data, no audio)."""
    settings = station.settings
    token, ttl = room_token(settings, person)
    return LiveKitTokenOut(
        url=settings.livekit_public_url or settings.livekit_url,
        token=token,
        room=settings.radio_room,
        identity=str(person.id),
        expires_at=datetime.now(UTC) + timedelta(seconds=ttl),
    )
