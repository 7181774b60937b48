"""The pages in a real browser against the real stack.

Debian's Chromium driven by Playwright (never Playwright's own browser download), with a fake
microphone that plays real speech from a WAV file; the API served by uvicorn on a free loopback
port in the test's event loop; the host, when a test needs it, as the real worker subprocess
with the fake Realtime server (the host tests' helpers, reused). Each test gets fresh browser
contexts (their own localStorage) and saves a screenshot of every page state it checks into
`test-artifacts/<test>/`.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import time
import wave
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from radio24 import rack
from tests.api.conftest import PASSWORD, Api, Who, add_staff, make_settings, served
from tests.conftest import LiveKit
from tests.host.conftest import (  # noqa: F401  (fixtures re-exported for the browser tests)
    RATE,
    Station,
    fake_realtime,
    realtime_station,
    speech_pcm,
)

WEB = rack.ROOT / "web"
CHROMIUM = "/usr/bin/chromium"
PHONE = {"width": 390, "height": 844}  # a phone-sized viewport: the listener page is phone-first
TIMEOUT_MS = 15_000


# --- the bundle and the browser --------------------------------------------------------------


def _sources_newer_than(stamp: Path) -> bool:
    built = stamp.stat().st_mtime
    sources = [*WEB.glob("*.html"), *WEB.glob("*.css"), *WEB.glob("*.webmanifest"),
               *WEB.glob("*.svg"), *WEB.glob("src/**/*.ts"), WEB / "build.mjs"]  # fmt: skip
    return any(p.stat().st_mtime > built for p in sources)


@pytest.fixture(scope="session")
def web_dist() -> Path:
    """`web/dist`, built now if it is missing or older than its sources (node_modules needed)."""
    index = WEB / "dist" / "index.html"
    if index.exists() and not _sources_newer_than(index):
        return index.parent
    if not (WEB / "node_modules").is_dir():
        pytest.fail("web/dist is not built and web/node_modules is missing: run `make setup`")
    result = subprocess.run(
        ["npm", "run", "build"], cwd=WEB, capture_output=True, text=True, timeout=180, check=False
    )
    if result.returncode != 0:
        pytest.fail(f"npm run build failed:\n{result.stdout}\n{result.stderr}")
    return index.parent


@pytest.fixture(scope="session")
def mic_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Real speech (espeak-ng) as the fake microphone: Chromium loops it while the mic is open."""
    pcm = speech_pcm()
    path = tmp_path_factory.mktemp("mic") / "caller.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm.tobytes())
    return path


@pytest.fixture(scope="session")
def chromium_path() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make setup` installs Debian's chromium")
    return CHROMIUM


@pytest.fixture(scope="session")
async def browser(web_dist: Path, mic_wav: Path, chromium_path: str) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=chromium_path,
            headless=True,
            timeout=60_000,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={mic_wav}",
                "--autoplay-policy=no-user-gesture-required",
                # Real host candidates for WebRTC on loopback, not mDNS names.
                "--disable-features=WebRtcHideLocalIpsWithMdns",
            ],
        )
        try:
            yield chromium
        finally:
            await chromium.close()


# --- the station as pages see it -------------------------------------------------------------


@pytest.fixture
def prompts_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The station's prompts for the host and the API: the English example station by default
    (the tests read the pages' English words); parametrize with `japanese` for the station's own."""
    source = rack.ROOT / "prompts"
    if getattr(request, "param", "english") == "english":
        source = source / "examples" / "english"
    folder = tmp_path / "prompts"
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("examples"))
    return folder


@dataclass
class Web:
    """The API on a real port (and, on request, the host) with helpers to open pages."""

    api: Api
    base: str
    station: Station
    browser: Browser
    artifacts: Path
    contexts: list[BrowserContext] = field(default_factory=list)
    shots: int = 0
    console: list[str] = field(default_factory=list)

    async def open(self, path: str = "/", *, phone: bool = True) -> Page:
        """A new browser (own storage, microphone allowed) on `path`."""
        context = await self.browser.new_context(
            viewport=PHONE if phone else {"width": 1280, "height": 900},
            permissions=["microphone"],
            base_url=self.base,
        )
        context.set_default_timeout(TIMEOUT_MS)
        self.contexts.append(context)
        page = await context.new_page()
        tag = f"page{len(self.contexts)}"
        page.on("console", lambda m: self.console.append(f"{tag} {m.type}: {m.text[:500]}"))
        page.on("pageerror", lambda e: self.console.append(f"{tag} pageerror: {e}"))
        await page.goto(path)
        return page

    async def listen(self, nickname: str) -> Page:
        """A listener who has joined with `nickname` (the page is connected to the room)."""
        page = await self.open("/")
        await page.fill("#nickname", nickname)
        await page.click("#join-button")
        await page.wait_for_selector("#player:not([hidden])")
        await page.wait_for_selector("#conn[data-state='connected']", timeout=30_000)
        return page

    async def producer(self, name: str = "alice") -> Who:
        add_staff(self.api.settings.database_url.get_secret_value(), name)
        return Who("", "", name)

    async def studio(self, name: str = "alice") -> Page:
        """A producer logged into the studio."""
        await self.producer(name)
        page = await self.open("/studio", phone=False)
        await page.fill("#username", name)
        await page.fill("#password", PASSWORD)
        await page.click("#login-button")
        await page.wait_for_selector("#desk:not([hidden])")
        return page

    async def shot(self, page: Page, name: str) -> Path:
        self.shots += 1
        path = self.artifacts / f"{self.shots:02d}-{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path

    async def start_host(self) -> None:
        """The real host worker (fake Realtime model) and the keeper that dispatches it."""
        self.station.start_worker()
        await self.station.start_keeper()

    async def close(self) -> None:
        for context in self.contexts:
            with contextlib.suppress(Exception):
                await context.close()
        (self.artifacts / "console.log").write_text("\n".join(self.console) + "\n")
        # The pages run under the API's Content-Security-Policy: anything it blocked is a bug.
        blocked = [line for line in self.console if "Content Security Policy" in line]
        assert blocked == [], "the page broke its own CSP:\n" + "\n".join(blocked)


@contextlib.asynccontextmanager
async def web_for(
    browser: Browser,
    station: Station,
    livekit: LiveKit,
    artifacts: Path,
    **overrides: Any,
) -> AsyncIterator[Web]:
    """The API (pages included) for `station`'s room and prompts, against `livekit`."""
    settings = make_settings(
        station.database_url,
        station.redis_url,
        livekit,
        radio_room=station.room,
        radio_prompts_dir=str(station.prompts),
        **overrides,
    )
    async with served(settings) as (api, base):
        w = Web(api, base, station, browser, artifacts)
        try:
            yield w
        finally:
            await w.close()


@pytest.fixture
async def web(
    browser: Browser,
    realtime_station: Station,  # noqa: F811  (the host tests' fixture, imported above)
    livekit_server: LiveKit,
    artifacts: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Web]:
    """The API for this test in the host helpers' station room (the host is not started)."""
    overrides: dict[str, Any] = getattr(request, "param", {}) or {}
    async with web_for(browser, realtime_station, livekit_server, artifacts, **overrides) as w:
        yield w


async def eventually(
    check: Callable[[], Awaitable[bool] | bool], within: float, what: str, step: float = 0.2
) -> None:
    """Wait until `check()` is true, or fail saying `what` did not happen."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} (not within {within:.0f} s)")
        await asyncio.sleep(step)
