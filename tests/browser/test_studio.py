"""The producers' studio: the queue is reviewed live, and listeners cannot get in."""

from __future__ import annotations

import json

import pytest

from contract.keys import Keys
from tests.browser.conftest import Web

pytestmark = pytest.mark.browser


async def test_a_producer_hides_and_approves_a_post_and_its_author_sees_it(web: Web) -> None:
    listener = await web.listen("Aoi")
    await listener.fill("#post-text", "Please say hello to my cat Tama!")
    await listener.click("#post-send")
    mine = listener.locator("#my-posts li").first
    await mine.wait_for()
    assert await mine.get_attribute("data-status") == "queued"

    studio = await web.studio("alice")
    row = studio.locator("#queue li", has_text="my cat Tama")
    await row.wait_for()
    assert "Aoi" in (await row.text_content() or "")
    await web.shot(studio, "studio-queue")

    await row.locator("button[data-action='hide']").click()
    # Hidden posts leave the queued view; the author's page follows through the event socket.
    await row.wait_for(state="detached")
    await listener.wait_for_selector("#my-posts li[data-status='hidden']")
    await web.shot(listener, "listener-sees-hidden")

    await studio.select_option("#queue-filter", "hidden")
    hidden = studio.locator("#queue li", has_text="my cat Tama")
    await hidden.wait_for()
    await web.shot(studio, "studio-hidden")
    await hidden.locator("button[data-action='approve']").click()
    await hidden.wait_for(state="detached")
    await listener.wait_for_selector("#my-posts li[data-status='queued']")

    await studio.select_option("#queue-filter", "queued")
    again = studio.locator("#queue li", has_text="my cat Tama")
    await again.wait_for()
    await again.locator("button[data-action='reject']").click()
    await again.wait_for(state="detached")
    await listener.wait_for_selector("#my-posts li[data-status='rejected']")
    await web.shot(studio, "studio-after-reject")


async def test_a_listener_cannot_open_the_studio(web: Web) -> None:
    page = await web.listen("Sora")
    await page.goto("/studio")
    await page.wait_for_selector("#login:not([hidden])")
    assert await page.is_hidden("#desk")
    error = await page.text_content("#login-error") or ""
    assert "producers only" in error, error
    await web.shot(page, "listener-refused")

    # The producer routes answer a listener's token with 403, whatever the page does.
    token = await page.evaluate("JSON.parse(localStorage.getItem('radio24.listener')).token")
    resp = await web.api.client.get(
        "/api/posts?status=queued", headers={"Authorization": f"Bearer {token}"}
    )
    assert resp.status_code == 403


async def test_the_studio_shows_the_schedule_and_a_wrong_password_in_words(web: Web) -> None:
    # What the host reports when a producer's edit does not load (agent/programme.py).
    problem = {
        "file": "schedule.yaml",
        "line": 7,
        "message": "segment 'mornin' has no file",
        "fix": "create segments/mornin.md or fix the name",
    }
    status = {"ok": False, "problems": [problem], "loaded_at": "2026-01-01T00:00:00+00:00"}
    await web.api.station.redis.set(Keys(web.station.room).prompts_status, json.dumps(status))

    await web.producer("bob")
    page = await web.open("/studio", phone=False)
    await page.fill("#username", "bob")
    await page.fill("#password", "not the password")
    await page.click("#login-button")
    # A function, not a string: the page's CSP forbids eval, which string predicates use.
    await page.wait_for_function(
        "() => document.querySelector('#login-error').textContent.length > 0"
    )
    assert "Wrong username or password" in (await page.text_content("#login-error") or "")
    await web.shot(page, "studio-wrong-password")

    await page.fill("#password", "correct horse battery")
    await page.click("#login-button")
    await page.wait_for_selector("#desk:not([hidden])")
    await page.wait_for_function("() => document.querySelector('#now-title').textContent !== '—'")
    # The problem as `radio24 prompts check` prints it: file, line, message and fix.
    printed = "schedule.yaml:7: segment 'mornin' has no file — create segments/mornin.md or fix"
    await page.wait_for_selector(f"#prompts-problems >> text={printed}")
    assert await page.get_attribute("#prompts-summary", "data-ok") == "false"
    await web.shot(page, "studio-desk")
