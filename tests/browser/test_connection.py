"""The listener page's connection: its state is shown, an outage is said in words, and the page
comes back by itself when the station does, unless the station has banned the listener."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest
from livekit import api as lkapi
from playwright.async_api import Browser, Response
from playwright.async_api import TimeoutError as PlaywrightTimeout

from radio24 import rack
from tests.browser.conftest import Station, Web, web_for
from tests.conftest import LiveKit

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


async def test_the_page_says_the_station_is_unreachable_and_reconnects(
    browser: Browser, realtime_station: Station, parts_dir: Path, artifacts: Path
) -> None:
    # A LiveKit of this test's own, so it can be stopped and started again on the same ports.
    port, tcp = rack.free_port(), rack.free_port()
    udp = 46000 + secrets.randbelow(60) * 60
    lk = LiveKit(f"ws://127.0.0.1:{port}", "testkey", secrets.token_hex(24), port)

    def start() -> subprocess.Popen[bytes]:
        proc = rack.popen(rack.livekit(port, tcp, udp, lk.api_key, lk.api_secret),
                          parts_dir / f"livekit-{port}.log")  # fmt: skip
        rack.wait_port(port, 30, proc)
        return proc

    proc = start()
    try:
        async with web_for(browser, realtime_station, lk, artifacts) as web:
            page = await web.listen("Mio")
            await web.shot(page, "connected")

            # The station's media server dies (SIGKILL: a graceful stop waits 15 s for listeners).
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
            await page.wait_for_selector("#conn[data-state='reconnecting']", timeout=30_000)
            await page.wait_for_selector("#unreachable:not([hidden])", timeout=60_000)
            text = await page.text_content("#unreachable") or ""
            assert "can't be reached" in text, text
            await web.shot(page, "unreachable")

            proc = start()
            await page.wait_for_selector("#conn[data-state='connected']", timeout=60_000)
            assert await page.is_hidden("#unreachable")
            await web.shot(page, "reconnected")
    finally:
        rack.stop(proc)


async def test_a_banned_listener_s_page_stops_asking_for_a_room_token(web: Web) -> None:
    """The room drops a listener who has been banned meanwhile (by a producer on another API
    instance, whose event never reached this page's socket). The page asks for a new room
    token once, is refused with 403, says so, and asks no more: retrying would only be
    refused again, every few seconds, for as long as the tab stays open."""
    page = await web.listen("Troll")
    asked: list[tuple[float, int]] = []

    def on_response(response: Response) -> None:
        if response.url.endswith("/api/livekit/token"):
            asked.append((time.monotonic(), response.status))

    page.on("response", on_response)
    with psycopg.connect(web.station.database_url) as conn:
        (identity,) = conn.execute(
            "UPDATE people SET banned_at = now() WHERE nickname = 'Troll' RETURNING id"
        ).fetchone()  # type: ignore[misc]
    livekit = web.station.api()
    try:
        await livekit.room.remove_participant(
            lkapi.RoomParticipantIdentity(room=web.station.room, identity=str(identity))
        )
    finally:
        await livekit.aclose()
    removed = time.monotonic()

    try:
        await page.wait_for_selector("#join-error:has-text('no longer listen')", timeout=20_000)
    except PlaywrightTimeout:
        raise AssertionError(f"the page never said it is banned; token answers: {asked}") from None
    assert [status for _, status in asked] == [403], asked
    await web.shot(page, "banned")
    # The page's back-off would have asked again after about 1, 2 and 4 s.
    await asyncio.sleep(10)
    assert [status for _, status in asked] == [403], f"the page asked again: {asked}"
    assert await page.get_attribute("#conn", "data-state") == "offline"
    assert await page.is_visible("#join-button"), "the join form is not back"
    assert asked[0][0] >= removed
