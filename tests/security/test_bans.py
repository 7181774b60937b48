"""Bans in the room: the LiveKit token lived 600 s and cannot be revoked, so a removed listener
rejoined with it. Now the API's room tokens are short (2 minutes by default), a banned listener
gets no new one (nor a live-event ticket), and an old one stops opening the room once it has
expired (livekit-server allows 60 s of clock leeway past `exp`: the bound is TTL + 60 s).

Not here: the host refusing a banned caller's `start_turn` (the host's side, tests/host), and
LiveKit's own refresh tokens: livekit-server hands every connected participant a 10-minute
token every 5 minutes, which a client could keep and rejoin with after its removal until it
expires; the host removing banned identities when they join closes that."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from livekit import rtc

from api.settings import ApiSettings
from tests.api.conftest import make_settings, running
from tests.conftest import LiveKit

pytestmark = [pytest.mark.integration, pytest.mark.timeout(90)]


def test_room_tokens_are_short_lived_by_default() -> None:
    assert ApiSettings(_env_file=None).listener_token_ttl_seconds <= 120  # type: ignore[call-arg]


async def test_a_banned_listener_cannot_rejoin_with_an_old_token(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    settings = make_settings(database_url, redis_url, livekit_server, listener_token_ttl_seconds=5)
    async with running(settings) as api:
        producer, troll = await api.producer(), await api.listener("Troll")
        grant = (await api.client.post("/api/livekit/token", headers=troll.headers)).json()
        room = rtc.Room()
        gone = asyncio.Event()
        room.on("disconnected", lambda *_: gone.set())
        await room.connect(grant["url"], grant["token"])
        try:
            resp = await api.client.post(
                f"/api/listeners/{troll.id}/ban", json={}, headers=producer.headers
            )
            assert resp.status_code == 200
            await asyncio.wait_for(gone.wait(), 10)  # removed from the room
        finally:
            await room.disconnect()
        # No new token, no live events.
        assert (
            await api.client.post("/api/livekit/token", headers=troll.headers)
        ).status_code == 403
        assert (await api.client.post("/api/ws/ticket", headers=troll.headers)).status_code == 403
        # The old token, kept by the client, as it is once its TTL and LiveKit's leeway have
        # passed: the same claims and signature key, the clock moved on.
        claims = jwt.decode(grant["token"], options={"verify_signature": False})
        assert claims["exp"] - time.time() <= 5 + 1
        shift = claims["exp"] - claims["nbf"] + 61 + time.time() - claims["nbf"]
        old = {**claims, **{k: int(claims[k] - shift) for k in ("exp", "nbf") if k in claims}}
        old_token = jwt.encode(old, livekit_server.api_secret, algorithm="HS256")
        again = rtc.Room()
        with pytest.raises(rtc.ConnectError):
            await again.connect(grant["url"], old_token)
        await again.disconnect()
        # While still fresh the same claims open the room: what the ban test above relies on.
        fresh = rtc.Room()
        await fresh.connect(grant["url"], jwt.encode(claims, livekit_server.api_secret, "HS256"))
        await fresh.disconnect()
