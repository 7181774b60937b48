"""Caption spoofing: any listener may send data (RPC needs it), so a listener could stream text on
`lk.transcription` with the host's `lk.segment_id` and rewrite the host's line for everyone, in
the ARIA live region screen readers read out. The page must show captions only from the host's
identity and from the caller who holds the floor, each keyed by its sender."""

from __future__ import annotations

import json

import pytest
from livekit import api as lkapi
from livekit import rtc

from tests.browser.conftest import Web, eventually

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(120)]

HOST_LINE = "The weather is fine today"
SEGMENT = {"lk.segment_id": "host-seg-1", "lk.transcription_final": "true"}


def _host_token(web: Web) -> str:
    """A participant with the host's identity (and its right to set its own attributes)."""
    lk = web.station.livekit
    grants = lkapi.VideoGrants(
        room_join=True, room=web.station.room, can_publish_data=True,
        can_update_own_metadata=True,
    )  # fmt: skip
    token = lkapi.AccessToken(lk.api_key, lk.api_secret).with_identity("host").with_grants(grants)
    return token.to_jwt()


async def _join(web: Web, identity_token: str) -> rtc.Room:
    room = rtc.Room()
    await room.connect(web.station.livekit.url, identity_token)
    return room


async def test_a_listener_cannot_rewrite_or_add_captions(web: Web) -> None:
    page = await web.listen("Mio")
    host = await _join(web, _host_token(web))  # stands in for the host's identity
    spoofer_who = await web.api.listener("Mallory")
    grant = (await web.api.client.post("/api/livekit/token", headers=spoofer_who.headers)).json()
    assert grant["host_identity"] == "host"
    spoofer = await _join(web, grant["token"])
    try:
        await host.local_participant.send_text(
            HOST_LINE, topic="lk.transcription", attributes=SEGMENT
        )
        host_line = page.locator("#captions li[data-speaker='host']")
        await eventually(
            lambda: host_line.filter(has_text=HOST_LINE).count(), 15, "the host's line shows"
        )

        # Not holding the floor: nothing a listener streams is shown, whatever it claims.
        await spoofer.local_participant.send_text(
            "SPOOFED by a listener", topic="lk.transcription", attributes=SEGMENT
        )
        writer = await spoofer.local_participant.stream_text(
            topic="lk.transcription", attributes=SEGMENT, sender_identity="host"
        )
        await writer.write("SPOOFED as the host")
        await writer.aclose()
        # A line the page must show arrives after the spoofs: by then they were handled.
        await host.local_participant.send_text(
            "next line", topic="lk.transcription", attributes={"lk.segment_id": "host-seg-2"}
        )
        await eventually(lambda: page.locator("#captions", has_text="next line").count(), 15,
                         "the host's next line shows")  # fmt: skip
        assert await page.locator("#captions", has_text="SPOOFED").count() == 0
        assert await host_line.filter(has_text=HOST_LINE).count() == 1

        # Holding the floor (the host's attribute says so), the caller's words show as theirs,
        # on a line of their own: the host's line keeps its text.
        floor = {"state": "held", "holder": grant["identity"], "holder_name": "Mallory"}
        await host.local_participant.set_attributes({"radio24.floor": json.dumps(floor)})
        await eventually(lambda: page.locator("#floor-line", has_text="Mallory").count(), 15,
                         "the page sees the floor held")  # fmt: skip
        await spoofer.local_participant.send_text(
            "caller words", topic="lk.transcription", attributes=SEGMENT
        )
        caller_line = page.locator("#captions li[data-speaker='caller']", has_text="caller words")
        await eventually(lambda: caller_line.count(), 15, "the floor holder's line shows")
        assert await host_line.filter(has_text=HOST_LINE).count() == 1
        assert await page.locator("#captions", has_text="SPOOFED").count() == 0
        await web.shot(page, "captions-after-spoofing")
    finally:
        await spoofer.disconnect()
        await host.disconnect()
