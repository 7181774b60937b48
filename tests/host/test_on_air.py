"""The host is on air: a listener who joins hears it, in both modes, through the real SFU."""

from __future__ import annotations

import asyncio
import itertools
import time

import psycopg
import pytest
from livekit import api as lkapi

from tests.host.conftest import Station

pytestmark = pytest.mark.integration


async def _hears_host(station: Station) -> None:
    station.start_worker()
    await station.start_keeper()
    listener = await station.listener()
    try:
        await listener.wait_for_host(60)  # worker start-up on a busy 2-core machine
        joined = time.monotonic()
        heard = await listener.hears_host(10, since=joined)
        assert heard is not None, "no host audio within 10 s of joining"
    finally:
        await listener.leave()


async def test_listener_hears_the_offline_host(offline_station: Station) -> None:
    await _hears_host(offline_station)


async def test_listener_hears_the_realtime_host(realtime_station: Station) -> None:
    await _hears_host(realtime_station)
    assert realtime_station.fake is not None
    assert realtime_station.fake.responses_requested >= 1


def _longest_silence(levels: list[tuple[float, float]], start: float, end: float) -> float:
    """The longest run without a loud 10 ms frame between `start` and `end` (seconds)."""
    loud = [at for at, value in levels if start <= at <= end and value > 300]
    marks = [start, *loud, end]
    return max(b - a for a, b in itertools.pairwise(marks))


async def test_no_dead_air_while_the_model_fails(realtime_station: Station) -> None:
    fake = realtime_station.fake
    assert fake is not None
    fake.response_latency = 30.0  # the model accepts requests and never answers in time
    realtime_station.start_worker()
    await realtime_station.start_keeper()
    listener = await realtime_station.listener()
    try:
        await listener.wait_for_host(60)
        first = await listener.hears_host(15)
        assert first is not None, "the offline voice did not take over"
        await asyncio.sleep(20)
        gap = _longest_silence(listener.levels, first, time.monotonic())
        assert gap < 5.0, f"{gap:.1f} s of dead air while the model was failing"
        assert listener.captions, "no captions reached the listener"
    finally:
        await listener.leave()


async def test_nothing_is_generated_without_listeners(realtime_station: Station) -> None:
    fake = realtime_station.fake
    assert fake is not None
    realtime_station.start_worker()
    await realtime_station.start_keeper()
    api = realtime_station.api()
    try:
        deadline = time.monotonic() + 60
        while True:
            people = await api.room.list_participants(
                lkapi.ListParticipantsRequest(room=realtime_station.room)
            )
            # The floor attribute is set once the host's session is up: the host is on air.
            if any(
                p.identity == "host" and "radio24.floor" in p.attributes
                for p in people.participants
            ):
                break
            assert time.monotonic() < deadline, "the host never went on air"
            await asyncio.sleep(0.5)
        await asyncio.sleep(5)
        assert fake.responses_requested == 0, "the host spent tokens on an empty room"
        asking = asyncio.create_task(fake.wait_for_async("response.create"))
        listener = await realtime_station.listener()
        joined = time.monotonic()
        try:
            # The station resumes within the dead-air limit (5 s) of a listener joining: the
            # model is asked for a line (this station has no media, so no ident first) and the
            # listener hears it. The host cues 2 ms after it learns of the listener, but when it
            # learns is up to the SFU: seen 2.4 s after the listener already had the host's track.
            await asyncio.wait_for(asking, 10)
            asked = time.monotonic() - joined
            heard = await listener.hears_host(5.0, since=joined)
            assert asked < 5.0, f"the host asked the model for a line {asked:.1f} s after a join"
            assert heard is not None, (
                f"no sound within 5 s of joining (model asked at {asked:.1f} s)"
            )
            deadline = time.monotonic() + 20
            while True:
                with psycopg.connect(realtime_station.database_url) as conn:
                    usage = conn.execute(
                        "SELECT sum(audio_out_tokens + text_out_tokens) FROM model_usage"
                    ).fetchone()
                if usage and usage[0]:
                    break
                assert time.monotonic() < deadline, "model usage was not recorded"
                await asyncio.sleep(0.5)
        finally:
            asking.cancel()  # a failed step leaves no waiter on the fake
            await listener.leave()
    finally:
        await api.aclose()
