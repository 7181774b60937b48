"""Producers edit prompts/ while the host is on air: a good edit reaches the model within 5 s, a
broken one is refused with its file and line and the last good version stays on air."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
import redis.asyncio as aioredis

from contract.keys import Keys
from tests.host.conftest import Station

pytestmark = pytest.mark.integration


async def _status(redis: aioredis.Redis, room: str) -> dict[str, object]:
    raw = await redis.get(Keys(room).prompts_status)
    return json.loads(raw) if raw else {}


async def test_live_edit_reaches_the_model_and_a_broken_one_is_refused(
    realtime_station: Station,
) -> None:
    station = realtime_station
    fake = station.fake
    assert fake is not None
    station.start_worker()
    await station.start_keeper()
    listener = await station.listener()
    redis = aioredis.from_url(station.redis_url)
    persona = station.prompts / "host.md"
    try:
        await listener.wait_for_host(60)
        assert await listener.hears_host(15) is not None
        assert (await _status(redis, station.room)).get("ok") is True

        marker = "ZEBRA-CROSSING-7"
        await asyncio.to_thread(
            persona.write_text, persona.read_text() + f"\n- 合言葉は{marker}。\n"
        )
        edited = time.monotonic()
        await asyncio.wait_for(
            fake.wait_until_async(lambda: marker in (fake.instructions or "")), 5
        )
        assert time.monotonic() - edited < 5

        # A segment file: whichever segment is on air now (all get the line) reaches the model.
        segment_marker = "GIRAFFE-LANE-9"

        def edit_segments() -> None:
            for path in (station.prompts / "segments").glob("*.md"):
                path.write_text(path.read_text() + f"\n合図は{segment_marker}。\n")

        await asyncio.to_thread(edit_segments)
        edited = time.monotonic()
        await asyncio.wait_for(
            fake.wait_until_async(lambda: segment_marker in (fake.instructions or "")), 5
        )
        assert time.monotonic() - edited < 5

        await asyncio.to_thread(persona.write_text, "---\nname: [unclosed\n---\n本文\n")
        deadline = time.monotonic() + 5
        while (status := await _status(redis, station.room)).get("ok") is not False:
            assert time.monotonic() < deadline, "the broken edit was not reported"
            await asyncio.sleep(0.2)
        problems = status["problems"]
        assert isinstance(problems, list) and problems
        assert problems[0]["file"] == "host.md" and problems[0]["line"] >= 1
        await asyncio.sleep(1.0)
        assert marker in (fake.instructions or ""), "the last good version must stay on air"
        assert segment_marker in (fake.instructions or "")
    finally:
        await redis.aclose()
        await listener.leave()
