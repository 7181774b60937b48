"""The listener page's connection: its state is shown, an outage is said in words, and the page
comes back by itself when the station does."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
from pathlib import Path

import pytest
from playwright.async_api import Browser

from radio24 import rack
from tests.browser.conftest import Station, web_for
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
