"""The studio framed by another origin (clickjacking a producer into banning or approving): every
page says `frame-ancestors 'none'` (and X-Frame-Options), and a real browser refuses to show the
studio inside another site's frame."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Web

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.timeout(90)]


async def test_another_origin_cannot_frame_the_studio(web: Web) -> None:
    for path in ("/", "/studio", "/api/schedule"):
        resp = await web.api.client.get(path)
        csp = resp.headers.get("content-security-policy", "")
        assert "frame-ancestors 'none'" in csp, path
        assert resp.headers.get("x-frame-options") == "DENY", path
        assert resp.headers.get("x-content-type-options") == "nosniff", path
    assert (
        "script-src 'self'"
        in (await web.api.client.get("/studio")).headers["content-security-policy"]
    )

    page = await web.open("/studio", phone=False)  # the studio itself renders
    await page.wait_for_selector("#username")
    # An attacker's page on another origin (served by the browser's router) frames it.
    evil = "http://attacker.test/"
    await page.context.route(
        evil,
        lambda route: route.fulfill(
            content_type="text/html",
            body=f'<h1>win a prize</h1><iframe id="f" src="{web.base}/studio"></iframe>',
        ),
    )
    await page.goto(evil)
    await page.wait_for_load_state("load")
    await page.wait_for_timeout(500)
    frames = [f for f in page.frames if f != page.main_frame]
    assert len(frames) == 1
    # Blocked by frame-ancestors, the frame holds Chromium's error page, not the login form.
    assert not frames[0].url.startswith(web.base), frames[0].url
    assert await frames[0].locator("#username").count() == 0
    await web.shot(page, "studio-refused-in-a-frame")
    # The browser's own report, not a page error of ours.
    web.console[:] = [line for line in web.console if "frame-ancestors" not in line]
