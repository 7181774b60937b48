"""Producers ban and unban listeners. A banned listener gets nothing: every route answers 403
at once (the ban is read on each request), their open live-event sockets are closed on every API
instance, their waiting posts are hidden, and they are removed from the station room if they are
in it."""

from __future__ import annotations

import contextlib
import logging
import uuid

from fastapi import APIRouter, HTTPException, status
from livekit import api as lkapi
from pydantic import BaseModel, Field

from api.auth import people
from api.deps import HubDep, PoolDep, Producer, SettingsDep
from api.errors import SIGNED_IN
from api.settings import ApiSettings
from contract.events import BannedEvent, PostStatusEvent
from db import posts

log = logging.getLogger("radio24.api.listeners")
router = APIRouter(
    prefix="/api/listeners",
    tags=["listeners"],
    responses={
        **SIGNED_IN,
        404: {"description": "no such listener"},
        409: {"description": "staff cannot be banned"},
    },
)


class BanIn(BaseModel):
    reason: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class BanOut(BaseModel):
    id: uuid.UUID
    banned: bool
    hidden_posts: int = 0


async def _remove_from_room(settings: ApiSettings, identity: str) -> None:
    url = settings.livekit_url.replace("ws://", "http://").replace("wss://", "https://")
    with contextlib.suppress(Exception):  # not in the room, or LiveKit away: the ban stands
        async with lkapi.LiveKitAPI(
            url, settings.livekit_api_key, settings.livekit_api_secret.get_secret_value()
        ) as lk:
            await lk.room.remove_participant(
                lkapi.RoomParticipantIdentity(room=settings.radio_room, identity=identity)
            )


@router.post("/{listener_id}/ban", response_model=BanOut)
async def ban(
    listener_id: uuid.UUID,
    body: BanIn,
    producer: Producer,
    settings: SettingsDep,
    pool: PoolDep,
    hub: HubDep,
) -> BanOut:
    """Producers: ban a listener (staff cannot be banned)."""
    reason = body.reason or "banned by a producer"
    async with pool.connection() as conn, conn.transaction():
        row = await people.ban_listener(conn, id=listener_id, reason=reason)
        if row is None:
            exists = await people.person_by_id(conn, id=listener_id)
            if exists is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no such listener")
            raise HTTPException(status.HTTP_409_CONFLICT, "staff cannot be banned")
        hidden = await posts.hide_posts_of_banned(conn, listener_id)
    log.info(
        "listener banned",
        extra={
            "listener_id": str(listener_id),
            "producer_id": str(producer.id),
            "hidden": len(hidden),
        },
    )
    if not await hub.publish(BannedEvent(listener_id=str(listener_id))):
        hub.ban(str(listener_id))  # Redis away: at least this instance's sockets close
    for post_id in hidden:
        await hub.publish(
            PostStatusEvent(post_id=str(post_id), listener_id=str(listener_id), status="hidden")
        )
    await _remove_from_room(settings, str(listener_id))
    return BanOut(id=listener_id, banned=True, hidden_posts=len(hidden))


@router.delete("/{listener_id}/ban", response_model=BanOut)
async def unban(listener_id: uuid.UUID, producer: Producer, pool: PoolDep) -> BanOut:
    """Producers: lift a ban (hidden posts stay hidden; approve them one by one)."""
    async with pool.connection() as conn:
        row = await people.unban_listener(conn, id=listener_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such listener")
    log.info(
        "listener unbanned",
        extra={"listener_id": str(listener_id), "producer_id": str(producer.id)},
    )
    return BanOut(id=listener_id, banned=False)
