"""Writing in from the listener page: the counter, the API's answers as sentences, the status."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Web

pytestmark = pytest.mark.browser


async def test_a_post_shows_queued_and_bad_posts_show_why(web: Web) -> None:
    page = await web.listen("Mika")
    await web.shot(page, "listener-joined")

    await page.fill("#post-text", "Good evening from Osaka! Play something calm?")
    assert "45" in (await page.text_content("#post-counter") or "")
    await page.click("#post-send")
    mine = page.locator("#my-posts li").first
    await mine.wait_for()
    assert await mine.get_attribute("data-status") == "queued"
    assert await page.get_attribute("#post-message", "data-kind") == "ok"
    await web.shot(page, "post-queued")

    await page.fill("#post-text", "x" * 501)
    assert await page.get_attribute("#post-counter", "data-over") == "true"
    await page.click("#post-send")
    await page.wait_for_selector("#post-message[data-kind='error']")
    message = await page.text_content("#post-message") or ""
    assert "501" in message and "500" in message, message
    await web.shot(page, "post-too-long")


@pytest.mark.parametrize("web", [{"api_post_rate_limit": 2}], indirect=True)
async def test_a_listener_writing_too_fast_is_told_when_to_retry(web: Web) -> None:
    page = await web.listen("Ren")
    for i in range(2):
        await page.fill("#post-text", f"Message number {i + 1}")
        await page.click("#post-send")
        await page.wait_for_selector(f"#my-posts li >> nth={i}")
    await page.fill("#post-text", "One more, too soon")
    await page.click("#post-send")
    await page.wait_for_selector("#post-message[data-kind='error']")
    message = await page.text_content("#post-message") or ""
    assert "too fast" in message and "seconds" in message, message
    # The text stays in the box for the retry.
    assert await page.input_value("#post-text") == "One more, too soon"
    await web.shot(page, "post-rate-limited")
