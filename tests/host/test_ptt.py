"""Push-to-talk through the real SFU: the floor, the microphone grant, VAD and the model's turn."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time

import psycopg
import pytest
from livekit import rtc
from livekit.agents.voice.remote_session import RemoteSession, RoomSessionTransport

from tests.fakes.realtime_server import DEFAULT_TRANSCRIPT
from tests.host.conftest import Listener, Station, silence_pcm, speech_pcm

pytestmark = pytest.mark.integration


async def _on_air(station: Station, identity: str = "caller") -> Listener:
    station.start_worker()
    await station.start_keeper()
    listener = await station.listener(identity)
    await listener.wait_for_host(60)
    assert await listener.hears_host(15) is not None, "the host never went on air"
    return listener


async def _publish_when_granted(listener: Listener, within: float = 10) -> None:
    """The grant reaches the client through the SFU's signal channel: retry until it has."""
    deadline = time.monotonic() + within
    while True:
        try:
            await asyncio.wait_for(listener.publish_microphone(), 5)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.3)


def _rows(database_url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(database_url) as conn:
        return conn.execute(sql).fetchall()


async def test_caller_is_heard_and_answered(realtime_station: Station) -> None:
    fake = realtime_station.fake
    assert fake is not None
    caller = await _on_air(realtime_station)
    try:
        granted = json.loads(await caller.rpc("start_turn"))
        assert granted["state"] == "held"
        # The attribute may arrive a moment after the RPC answer; pages show the token's name.
        floor: dict[str, object] = {}
        for _ in range(50):
            floor = json.loads(caller.host_attribute("radio24.floor") or "{}")
            if floor.get("holder") == "caller":
                break
            await asyncio.sleep(0.1)
        assert (floor.get("holder"), floor.get("holder_name")) == ("caller", "Nick caller")
        await _publish_when_granted(caller)
        commits_before = fake.commits
        await caller.speak(speech_pcm())
        await asyncio.sleep(0.3)
        since = len(fake.received)
        ended_at = time.monotonic()
        answer = json.loads(await caller.rpc("end_turn"))
        assert answer["status"] == "answered"

        fake_commit = await asyncio.wait_for(
            fake.wait_for_async("input_audio_buffer.commit", since=since), 10
        )
        assert fake_commit and fake.commits == commits_before + 1
        assert sum(len(a) for a in fake.committed_audio) > 24000  # > 0.5 s of the caller
        await asyncio.wait_for(fake.wait_for_async("response.create", since=since), 10)
        assert await caller.hears_host(10, since=ended_at) is not None, "no reply heard"

        # The microphone is taken back with the floor.
        await asyncio.sleep(1.0)
        assert caller.room.local_participant.permissions.can_publish is False

        deadline = time.monotonic() + 15
        while True:
            turns = _rows(
                realtime_station.database_url,
                "SELECT speaker, text, duration_ms FROM utterances WHERE kind = 'caller'",
            )
            if turns and turns[0][1]:
                break
            assert time.monotonic() < deadline, f"caller turn not logged with text: {turns}"
            await asyncio.sleep(0.3)
        speaker, text, duration = turns[0]
        assert speaker == "caller" and text == DEFAULT_TRANSCRIPT
        assert isinstance(duration, int) and duration > 1000
    finally:
        await caller.leave()


async def test_silent_press_gets_no_model_reply(realtime_station: Station) -> None:
    fake = realtime_station.fake
    assert fake is not None
    caller = await _on_air(realtime_station)
    try:
        await caller.rpc("start_turn")
        await _publish_when_granted(caller)
        await caller.speak(silence_pcm(1.5))
        commits_before = fake.commits
        answer = json.loads(await caller.rpc("end_turn"))
        assert answer["status"] == "no_speech"
        await asyncio.sleep(2.0)
        assert fake.commits == commits_before, "an empty press reached the model"
    finally:
        await caller.leave()


async def test_second_caller_is_told_the_floor_is_busy(offline_station: Station) -> None:
    first = await _on_air(offline_station, "first")
    second = await offline_station.listener("second")
    try:
        await first.rpc("start_turn")
        with pytest.raises(rtc.RpcError) as busy:
            await second.rpc("start_turn")
        assert "busy" in busy.value.message
        with pytest.raises(rtc.RpcError) as not_holder:
            await second.rpc("end_turn")
        assert "do not hold" in not_holder.value.message
        # The first caller leaving frees the floor for the second.
        await first.leave()
        deadline = time.monotonic() + 10
        while True:
            try:
                await second.rpc("start_turn")
                break
            except rtc.RpcError:
                assert time.monotonic() < deadline, "the floor was not freed"
                await asyncio.sleep(0.3)
        await second.rpc("cancel_turn")
    finally:
        with contextlib.suppress(Exception):
            await first.leave()
        await second.leave()


async def test_listener_without_the_floor_cannot_publish(offline_station: Station) -> None:
    listener = await _on_air(offline_station, "quiet")
    try:
        assert listener.room.local_participant.permissions.can_publish is False
        with pytest.raises(Exception):  # noqa: B017 - the SDK raises its own error types
            await asyncio.wait_for(listener.publish_microphone(), 10)
    finally:
        await listener.leave()


async def test_agent_session_topic_is_not_served(offline_station: Station) -> None:
    listener = await _on_air(offline_station, "curious")
    remote = RemoteSession(RoomSessionTransport(listener.room, remote_identity="host"))
    try:
        await remote.start()
        with pytest.raises((TimeoutError, asyncio.TimeoutError)):
            await remote.wait_for_ready(timeout=5)
    finally:
        with contextlib.suppress(Exception):
            await remote.aclose()
        await listener.leave()
