"""The listener page against the live host: hearing it, calling in, and a post going to air.

The host is the real worker with the fake Realtime model; the caller's microphone is Chromium's
fake device playing real speech. The fake model answers a caller differently from its own talk,
so the reply in the captions proves the call was heard.
"""

from __future__ import annotations

import pytest

from tests.browser.conftest import Web, eventually
from tests.fakes.realtime_server import ReplyContext

pytestmark = [pytest.mark.browser, pytest.mark.timeout(300)]

ANSWER = "Thanks for your call, lovely to hear you."
TALK = "This is radio twenty four, on air all night."
HOST_AUDIO = "() => Number(document.querySelector('#level').dataset.level) > 0.02"


def _answer(ctx: ReplyContext) -> str:
    return ANSWER if ctx.last_user_text else TALK


def _script(web: Web) -> None:
    """The fake model talks on its own until a caller has spoken, then answers the call."""
    fake = web.station.fake
    assert fake is not None
    fake.reply = _answer


async def test_a_listener_hears_the_host_and_calls_in(web: Web) -> None:
    _script(web)
    fake = web.station.fake
    assert fake is not None
    await web.start_host()
    caller = await web.listen("Kai")

    # The level meter moves with the host's voice.
    await caller.wait_for_function(HOST_AUDIO, timeout=90_000, polling=100)
    await web.shot(caller, "listener-hears-host")
    await caller.wait_for_selector("#captions li[data-speaker='host']", timeout=30_000)

    other = await web.listen("Yui")
    await other.wait_for_function(HOST_AUDIO, timeout=30_000, polling=100)

    # Hold the big button: the floor is ours, the fake microphone goes on air.
    button = await caller.locator("#ptt").bounding_box()
    assert button is not None
    heard_before = fake.audio_bytes_received()
    await caller.mouse.move(button["x"] + button["width"] / 2, button["y"] + button["height"] / 2)
    await caller.mouse.down()
    await caller.wait_for_selector("#ptt[data-state='onair']", timeout=20_000)
    assert "s left" in (await caller.text_content("#ptt-label") or "")
    await web.shot(caller, "caller-on-air")

    # Another listener sees the floor busy, and is told so when they press (Space bar).
    await other.wait_for_selector("#ptt[data-state='busy']", timeout=10_000)
    await other.keyboard.down("Space")
    await other.wait_for_function(
        "() => document.querySelector('#ptt-status').textContent.includes('Busy')", timeout=15_000
    )
    await other.keyboard.up("Space")
    await web.shot(other, "second-listener-busy")

    # The fake model hears the caller (24 kHz PCM16: 48,000 bytes a second).
    await eventually(
        lambda: fake.audio_bytes_received() - heard_before > 2 * 48_000,
        20,
        "the fake model received two seconds of the caller's audio",
    )
    assert not await caller.locator("#captions", has_text=ANSWER).count()
    commits = fake.commits
    await caller.mouse.up()
    await eventually(lambda: fake.commits > commits, 15, "the caller's turn was committed")

    # The host answers on air, and the answer shows in the captions (an ARIA live region).
    await caller.wait_for_selector(f"#captions li[data-speaker='host'] >> text={ANSWER}",
                                   timeout=30_000)  # fmt: skip
    assert await caller.get_attribute("#captions", "aria-live") == "polite"
    await caller.wait_for_selector("#ptt[data-state='idle']")
    await web.shot(caller, "caller-answered")
    await other.wait_for_selector(f"#captions >> text={ANSWER}", timeout=15_000)
    await other.wait_for_selector("#ptt[data-state='idle']")

    # A caller who leaves the page mid-turn frees the floor for the others.
    await caller.mouse.down()
    await caller.wait_for_selector("#ptt[data-state='onair']", timeout=20_000)
    await other.wait_for_selector("#ptt[data-state='busy']", timeout=10_000)
    await caller.close()
    await other.wait_for_selector("#ptt[data-state='idle']", timeout=15_000)
    await web.shot(other, "floor-free-after-caller-left")


async def test_a_post_goes_from_queued_to_aired_on_the_listeners_page(web: Web) -> None:
    _script(web)
    page = await web.listen("Hana")
    await page.fill("#post-text", "Greetings from Sapporo, it is snowing here!")
    await page.click("#post-send")
    await page.wait_for_selector("#my-posts li[data-status='queued']")
    await web.shot(page, "post-queued-before-host")

    await web.start_host()
    await page.wait_for_selector("#my-posts li[data-status='aired']", timeout=120_000)
    await web.shot(page, "post-aired")
