"""The on-air core's races, each as a listener or a caller would notice it, through the real SFU
and the real Realtime plugin (talking to the fake server)."""

from __future__ import annotations

import asyncio
import itertools
import json
import time

import psycopg
import pytest
from livekit import api as lkapi
from livekit import rtc

from tests.host.conftest import Listener, Station, silence_pcm, speech_pcm
from tests.host.test_ptt import _on_air, _publish_when_granted

pytestmark = pytest.mark.integration

LOUD = 300


def _loud_between(listener: Listener, start: float, end: float) -> float:
    """Seconds of host audio louder than LOUD between `start` and `end`."""
    return 0.01 * sum(1 for at, v in listener.levels if start <= at <= end and v > LOUD)


def _floor(listener: Listener) -> dict[str, object]:
    raw = listener.host_attribute("radio24.floor")
    return json.loads(raw) if raw else {}


async def _floor_shows(listener: Listener, state: str, within: float = 2.0) -> dict[str, object]:
    """The floor attribute pages see, once it shows `state`: it is sent just after the host
    answers the RPC (an attribute update must never hold up a caller's reply)."""
    deadline = time.monotonic() + within
    while (floor := _floor(listener)).get("state") != state:
        assert time.monotonic() < deadline, f"pages still show the floor {floor.get('state')}"
        await asyncio.sleep(0.05)
    return floor


async def _permission(station: Station, identity: str) -> lkapi.ParticipantPermission:
    api = station.api()
    try:
        listing = await api.room.list_participants(lkapi.ListParticipantsRequest(room=station.room))
    finally:
        await api.aclose()
    return next(p.permission for p in listing.participants if p.identity == identity)


async def test_a_press_during_the_model_wait_silences_the_host(realtime_station: Station) -> None:
    """The model is slow (2 s, inside the fallback time); a caller presses while the host waits
    for it: neither the model's late reply nor the offline fallback may play over the caller."""
    fake = realtime_station.fake
    assert fake is not None
    caller = await _on_air(realtime_station)
    try:
        fake.response_latency = 2.0
        asked = len(fake.response_requests)
        deadline = time.monotonic() + 30
        while len(fake.response_requests) == asked:  # the host has just asked the model
            assert time.monotonic() < deadline, "the host never asked the model again"
            await asyncio.sleep(0.02)
        held = json.loads(await caller.rpc("start_turn"))
        assert held["state"] == "held"
        granted = time.monotonic()
        again = json.loads(await caller.rpc("start_turn"))  # a client retry: same turn
        assert again["deadline"] == held["deadline"]
        await _publish_when_granted(caller)
        # Held in silence past the model's 2 s and the 2.5 s fallback (both counted from the ask,
        # which came before the press), and released before the 4 s quiet limit cuts the turn.
        await caller.speak(silence_pcm(max(0.5, granted + 3.0 - time.monotonic())))
        released = time.monotonic()
        answer = json.loads(await caller.rpc("end_turn"))
        assert answer["status"] == "no_speech"
        # Audio already in the SFU's pipe when the press arrived may still reach the ear.
        over = _loud_between(caller, granted + 0.5, released)
        assert over == 0, f"the host spoke for {over:.2f} s while the caller held the floor"
        await _floor_shows(caller, "free")
        assert not (await _permission(realtime_station, caller.identity)).can_publish
    finally:
        await caller.leave()


async def test_a_caller_who_says_nothing_gives_the_air_back(offline_station: Station) -> None:
    """A caller takes the floor and nothing comes (a microphone that never came up, a press
    held in silence): the turn is cut at the quiet limit (4 s) and the programme comes back at
    once, instead of dead air until the maximum length (30 s)."""
    caller = await _on_air(offline_station)
    try:
        held = json.loads(await caller.rpc("start_turn"))
        assert held["state"] == "held"
        pressed = time.monotonic()
        await _floor_shows(caller, "held")  # pages learn it just after the reply
        deadline = pressed + 15
        while _floor(caller).get("state") != "free":
            assert time.monotonic() < deadline, "a silent caller kept the floor"
            await asyncio.sleep(0.05)
        freed = time.monotonic() - pressed
        # The page tells the caller why ("we didn't hear anything"), not "ended by the studio".
        assert _floor(caller).get("ended") == {"holder": caller.identity, "how": "quiet"}
        assert 3.5 <= freed <= 6.0, f"the silent turn was cut {freed:.1f} s after the press"
        back = await caller.hears_host(10, since=pressed + 0.5)
        assert back is not None, "the host did not come back after the silent caller"
        assert back - pressed <= 7.0, f"{back - pressed:.1f} s from the press to the host again"
        perm = await _permission(offline_station, caller.identity)
        assert not perm.can_publish and not perm.can_publish_sources, "the grant was left open"
        with pytest.raises(rtc.RpcError) as refused:  # the page's late release gets a clear no
            await caller.rpc("end_turn")
        assert json.loads(refused.value.data or "{}").get("code") == "not_holder"
    finally:
        await caller.leave()


async def test_a_tap_shorter_than_the_grant_ends_clean(offline_station: Station) -> None:
    """Release arrives while the grant is on its way: the floor ends free, the microphone
    revoked; a later press works as usual."""
    caller = await _on_air(offline_station)
    try:
        start = asyncio.ensure_future(caller.rpc("start_turn"))
        await asyncio.sleep(0.03)  # released while the host is still granting the microphone
        end = asyncio.ensure_future(caller.rpc("end_turn"))
        held = json.loads(await start)
        assert held["state"] == "held"
        ended = json.loads(await end)
        assert ended["status"] in ("no_speech", "ended")
        await asyncio.sleep(1.0)
        await _floor_shows(caller, "free")
        perm = await _permission(offline_station, caller.identity)
        assert not perm.can_publish and not perm.can_publish_sources, "the grant leaked"
        assert json.loads(await caller.rpc("start_turn"))["state"] == "held"
        assert json.loads(await caller.rpc("cancel_turn"))["status"] == "cancelled"
    finally:
        await caller.leave()


async def test_offline_at_once_after_a_model_failure(realtime_station: Station) -> None:
    """The model never answers in time: after the first failure the host's lines come from the
    offline voice with no fallback wait each, and the model is only re-tried with back-off."""
    fake = realtime_station.fake
    assert fake is not None
    fake.response_latency = 30.0
    listener = await _on_air(realtime_station)
    try:
        first = time.monotonic()
        await asyncio.sleep(25)
        tries = len(fake.response_requests)
        assert tries <= 4, f"the model was tried {tries} times in 25 s while failing"
        loud = [at for at, v in listener.levels if at >= first and v > LOUD]
        pauses = sorted(b - a for a, b in itertools.pairwise(loud) if b - a > 0.5)
        assert len(pauses) >= 2, f"too few lines aired while the model was down: {pauses}"
        # The silence gap (1.5 s) plus synthesis, not plus the 2.5 s fallback wait each time.
        median = pauses[len(pauses) // 2]
        assert median < 3.0, f"lines waited {median:.1f} s (median) while the model was down"
        assert pauses[-1] < 5.0, f"{pauses[-1]:.1f} s of silence while the model was down"
    finally:
        await listener.leave()


async def test_standing_instructions_follow_the_segment(realtime_station: Station) -> None:
    """The station clock crosses 10:00 (morning → midday): the model's instructions name the
    new segment by the next cue, not at the next prompt edit."""
    fake = realtime_station.fake
    assert fake is not None
    realtime_station.extra_env.update(
        RADIO_CLOCK_START="2025-01-06T00:59:40+00:00", RADIO_CLOCK_SPEED="2"
    )
    listener = await _on_air(realtime_station)
    try:
        from programme.files import load_programme

        programme = load_programme(realtime_station.prompts)
        midday = programme.segments["midday"].title
        deadline = time.monotonic() + 40
        while not any(midday in (r.instructions or "") for r in fake.response_requests):
            assert time.monotonic() < deadline, "the model's instructions never named midday"
            await asyncio.sleep(0.2)
    finally:
        await listener.leave()


async def test_renewals_keep_one_track_and_answer_the_caller(realtime_station: Station) -> None:
    """Sessions renew every few seconds: the listener still sees one host track, and a caller
    who speaks across a renewal is answered."""
    fake = realtime_station.fake
    assert fake is not None
    realtime_station.extra_env.update(SESSION_MAX_MINUTES="0.05")  # every 3 s
    caller = await _on_air(realtime_station)
    try:
        deadline = time.monotonic() + 60
        while fake.connection_count < 6:
            assert time.monotonic() < deadline, "the host's session was not renewed"
            await asyncio.sleep(0.5)
        host = caller.room.remote_participants["host"]
        assert len(host.track_publications) == 1, "a renewal left another host track"
        await caller.rpc("start_turn")
        await _publish_when_granted(caller)
        await caller.speak(speech_pcm())
        released = time.monotonic()
        answer = json.loads(await caller.rpc("end_turn"))
        assert answer["status"] == "answered"
        assert await caller.hears_host(10, since=released) is not None, "no answer on air"
        assert len(host.track_publications) == 1
    finally:
        await caller.leave()


async def test_a_banned_listener_cannot_call_in_and_is_removed(offline_station: Station) -> None:
    """A ban holds in the room: the host refuses the banned caller's press, and removes them
    when they join again with a token that is still valid."""
    with psycopg.connect(offline_station.database_url) as conn:
        row = conn.execute(
            "INSERT INTO people (nickname) VALUES ('banned-one') RETURNING id"
        ).fetchone()
        assert row is not None
        identity = str(row[0])
    caller = await _on_air(offline_station, identity)
    try:
        with psycopg.connect(offline_station.database_url) as conn:
            conn.execute("UPDATE people SET banned_at = now() WHERE id = %s", (row[0],))
        with pytest.raises(rtc.RpcError) as refused:
            await caller.rpc("start_turn")
        assert "cannot call in" in refused.value.message
        assert _floor(caller).get("state") != "held"
    finally:
        await caller.leave()
    again = await offline_station.listener(identity)  # the old token is still valid
    try:
        deadline = time.monotonic() + 10
        while again.room.isconnected():
            assert time.monotonic() < deadline, "the banned listener was not removed"
            await asyncio.sleep(0.2)
    finally:
        await again.leave()


async def test_a_new_host_revokes_a_microphone_left_open(offline_station: Station) -> None:
    """A caller was granted the microphone just before the host crashed: the host that starts
    takes it back, so nobody stays on air with no floor and no time limit."""
    caller = await offline_station.listener("granted-before-crash")
    api = offline_station.api()
    try:
        await api.room.update_participant(
            lkapi.UpdateParticipantRequest(
                room=offline_station.room,
                identity=caller.identity,
                permission=lkapi.ParticipantPermission(
                    can_subscribe=True,
                    can_publish=True,
                    can_publish_data=True,
                    can_publish_sources=[lkapi.TrackSource.MICROPHONE],
                ),
            )
        )
        assert (await _permission(offline_station, caller.identity)).can_publish
        offline_station.start_worker()
        await offline_station.start_keeper()
        await caller.wait_for_host(60)
        deadline = time.monotonic() + 20
        while (await _permission(offline_station, caller.identity)).can_publish:
            assert time.monotonic() < deadline, "the stale microphone grant was not revoked"
            await asyncio.sleep(0.5)
    finally:
        await api.aclose()
        await caller.leave()


async def test_a_press_right_after_an_answered_turn_keeps_its_microphone(
    realtime_station: Station,
) -> None:
    """An answered turn's revoke waits a moment (it must not stand in front of the answer); a
    caller who presses again inside that moment keeps the microphone for the new turn, and
    its end revokes it as usual."""
    caller = await _on_air(realtime_station)
    try:
        await caller.rpc("start_turn")
        await _publish_when_granted(caller)
        await caller.speak(speech_pcm())
        assert json.loads(await caller.rpc("end_turn"))["status"] == "answered"
        assert json.loads(await caller.rpc("start_turn"))["state"] == "held"  # at once
        await asyncio.sleep(1.0)  # well past the deferred revoke of the first turn
        perm = await _permission(realtime_station, caller.identity)
        assert perm.can_publish, "the first turn's late revoke took the new turn's microphone"
        await _floor_shows(caller, "held")
        assert json.loads(await caller.rpc("cancel_turn"))["status"] == "cancelled"
        deadline = time.monotonic() + 5
        while (await _permission(realtime_station, caller.identity)).can_publish:
            assert time.monotonic() < deadline, "the microphone was not revoked"
            await asyncio.sleep(0.1)
        await _floor_shows(caller, "free")
    finally:
        await caller.leave()
