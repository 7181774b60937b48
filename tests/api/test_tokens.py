"""LiveKit room tokens: listeners may hear and send data, never publish audio."""

from __future__ import annotations

import time

import pytest
from livekit import api as lkapi
from livekit import rtc

from tests.api.conftest import Api

pytestmark = pytest.mark.integration


async def test_listener_token_claims_subscribe_and_data_only(api: Api) -> None:
    listener = await api.listener("Mika")
    resp = await api.client.post("/api/livekit/token", headers=listener.headers)
    assert resp.status_code == 200
    body = resp.json()
    assert body["room"] == "radio24-test"
    assert body["identity"] == listener.id
    assert body["url"] == api.settings.livekit_url

    verifier = lkapi.TokenVerifier(
        api.settings.livekit_api_key, api.settings.livekit_api_secret.get_secret_value()
    )
    claims = verifier.verify(body["token"])
    assert claims.identity == listener.id
    assert claims.name == "Mika"
    grants = claims.video
    assert grants is not None
    assert grants.room_join is True
    assert grants.room == "radio24-test"
    assert grants.can_subscribe is True
    assert grants.can_publish_data is True
    assert grants.can_publish is False
    assert not grants.room_admin and not grants.room_create
    # Short-lived: within the configured TTL.
    ttl = api.settings.listener_token_ttl_seconds
    import jwt as pyjwt

    exp = pyjwt.decode(body["token"], options={"verify_signature": False})["exp"]
    assert time.time() < exp <= time.time() + ttl + 5


async def test_the_real_server_lets_the_listener_in_without_publish_permission(api: Api) -> None:
    listener = await api.listener("Kaz")
    body = (await api.client.post("/api/livekit/token", headers=listener.headers)).json()
    room = rtc.Room()
    await room.connect(body["url"], body["token"])
    try:
        me = room.local_participant
        assert me.identity == listener.id
        assert me.name == "Kaz"
        assert me.permissions.can_subscribe is True
        assert me.permissions.can_publish is False
    finally:
        await room.disconnect()


async def test_public_url_is_what_browsers_get(
    database_url: str, redis_url: str, livekit_server: object
) -> None:
    from tests.api.conftest import make_settings, running

    settings = make_settings(
        database_url,
        redis_url,
        livekit_server,  # type: ignore[arg-type]
        livekit_public_url="wss://radio.example/rtc",
    )
    async with running(settings) as api:
        listener = await api.listener()
        body = (await api.client.post("/api/livekit/token", headers=listener.headers)).json()
    assert body["url"] == "wss://radio.example/rtc"
