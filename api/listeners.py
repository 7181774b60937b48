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

from api.auth import Producer
from api.events import banned_event, post_status_event, publish
from api.queries import queries
from api.state import Station, StationDep

log = logging.getLogger("radio24.api.listeners")
router = APIRouter(prefix="/api/listeners", tags=["listeners"])


class BanIn(BaseModel):
    reason: str | None = Field(default=None, max_length=200, pattern=r"^[^\x00-\x1f\x7f]*$")


class BanOut(BaseModel):
    id: uuid.UUID
    banned: bool
    hidden_posts: int = 0


async def _remove_from_room(station: Station, identity: str) -> None:
    settings = station.settings
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
    listener_id: uuid.UUID, body: BanIn, producer: Producer, station: StationDep
) -> BanOut:
    """Producers: ban a listener (staff cannot be banned)."""
    reason = body.reason or "banned by a producer"
    async with station.pool.connection() as conn, conn.transaction():
        row = await queries.ban_listener(conn, id=listener_id, reason=reason)
        if row is None:
            exists = await queries.person_by_id(conn, id=listener_id)
            if exists is None:
                raise HTTPException(status.HTTP_404_NOT_FOUND, "no such listener")
            raise HTTPException(status.HTTP_409_CONFLICT, "staff cannot be banned")
        hidden = [
            r[0]
            async for r in queries.hide_queued_posts_of(
                conn, author_id=listener_id, reason="author banned"
            )
        ]
    log.info(
        "listener banned",
        extra={
            "listener_id": str(listener_id),
            "producer_id": str(producer.id),
            "hidden": len(hidden),
        },
    )
    if not await publish(station.redis, banned_event(listener_id)):
        station.hub.ban(str(listener_id))  # Redis away: at least this instance's sockets close
    for post_id in hidden:
        await publish(station.redis, post_status_event(post_id, listener_id, "hidden"))
    await _remove_from_room(station, str(listener_id))
    return BanOut(id=listener_id, banned=True, hidden_posts=len(hidden))


@router.delete("/{listener_id}/ban", response_model=BanOut)
async def unban(listener_id: uuid.UUID, producer: Producer, station: StationDep) -> BanOut:
    """Producers: lift a ban (hidden posts stay hidden; approve them one by one)."""
    async with station.pool.connection() as conn:
        row = await queries.unban_listener(conn, id=listener_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such listener")
    log.info(
        "listener unbanned",
        extra={"listener_id": str(listener_id), "producer_id": str(producer.id)},
    )
    return BanOut(id=listener_id, banned=False)
