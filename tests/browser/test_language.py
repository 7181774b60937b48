"""The station's language decides the pages' language."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Web

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("prompts_dir", ["japanese"], indirect=True)
async def test_a_japanese_station_speaks_japanese_on_its_pages(web: Web) -> None:
    schedule = (await web.api.client.get("/api/schedule")).json()
    # The pages take their language from here: its absence is a failure, never a skip.
    assert schedule["language"] == "ja"
    page = await web.open("/")
    await page.wait_for_selector("html[lang='ja']")
    assert await page.text_content("#join-button") == "参加して聴く"
    await web.shot(page, "listener-japanese")
    studio = await web.open("/studio", phone=False)
    await studio.wait_for_selector("html[lang='ja']")
    assert await studio.text_content("#login-button") == "ログイン"
    await web.shot(studio, "studio-japanese")
