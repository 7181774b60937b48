"""Nicknames, which the host speaks on air, skipped the blocklist and moderation, and look-alike
names ("Hоst" with a Cyrillic о) passed. Now they go through the same screening as posts, with
Unicode's confusables folded, and are refused while moderation cannot answer."""

from __future__ import annotations

import pytest

from radio24 import rack
from tests.api.conftest import Api, make_settings, running
from tests.api.test_posts import fake_moderation
from tests.conftest import LiveKit

pytestmark = pytest.mark.integration


async def _join(api: Api, nickname: str) -> tuple[int, str]:
    resp = await api.client.post("/api/session", json={"nickname": nickname})
    return resp.status_code, resp.text


@pytest.mark.parametrize(
    "nickname",
    ["Hоst", "HОST", "Ηοѕτ", "Ｈｏｓｔ", "adrnin", "Rаdiо24", "H\u200bost"],
    ids=["cyrillic-o", "cyrillic-O", "greek-cyrillic", "fullwidth", "rn-for-m", "mixed", "zwsp"],
)
async def test_a_look_alike_of_the_station_is_refused(api: Api, nickname: str) -> None:
    status, text = await _join(api, nickname)
    assert status == 422, text
    assert "reserved" in text


async def test_nicknames_pass_the_blocklist_even_disguised(api: Api) -> None:
    producer = await api.producer()
    await api.client.post("/api/blocklist", json={"term": "spam"}, headers=producer.headers)
    for nickname in ("SpamKing", "Spam King", "Sраm King"):  # the last with Cyrillic р and а
        status, text = await _join(api, nickname)
        if nickname == "SpamKing":
            assert status == 201, text  # whole words only, as for posts
        else:
            assert status == 422, (nickname, text)
            assert "blocklist: spam" in text
    assert (await _join(api, "Mika"))[0] == 201


async def test_nicknames_pass_openai_moderation_and_wait_while_it_is_away(
    database_url: str, redis_url: str, livekit_server: LiveKit
) -> None:
    async with fake_moderation("idiot") as (base_url, seen):
        settings = make_settings(
            database_url, redis_url, livekit_server,
            openai_api_key="sk-test", openai_base_url=base_url,
        )  # fmt: skip
        async with running(settings) as api:
            status, text = await _join(api, "idiot face")
            assert status == 422 and "moderation: harassment" in text
            assert (await _join(api, "Mika"))[0] == 201
            assert [s["body"]["input"] for s in seen] == ["idiot face", "Mika"]
    dead = f"http://127.0.0.1:{rack.free_port()}/v1"
    settings = make_settings(
        database_url, redis_url, livekit_server, openai_api_key="sk-test", openai_base_url=dead
    )
    async with running(settings) as api:
        resp = await api.client.post("/api/session", json={"nickname": "Mika"})
        assert resp.status_code == 503  # not let through unchecked
        assert resp.headers["Retry-After"]
