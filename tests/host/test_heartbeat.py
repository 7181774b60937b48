"""The host's heartbeat: renewed from its own thread (so a busy event loop does not make a live
host look dead), expiring within 2 s of the last beat, removed at once when the host leaves."""

from __future__ import annotations

import json
import threading
import time

import pytest
import redis

from agent.store.heartbeat import Heartbeat
from contract.keys import Keys

pytestmark = pytest.mark.integration


def test_the_heartbeat_beats_through_a_blocked_loop_and_goes_when_stopped(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    key = Keys("radio-beat").heartbeat
    beat = Heartbeat(redis_url, "radio-beat", "PA_alive")
    beat.start()
    try:
        deadline = time.monotonic() + 5
        while client.get(key) is None:
            assert time.monotonic() < deadline, "no heartbeat written"
            time.sleep(0.05)
        assert json.loads(client.get(key))["sid"] == "PA_alive"
        assert 0 < client.pttl(key) <= 2000
        # The caller's thread is busy for 3 s (longer than the expiry): the beat goes on.
        busy_until = time.monotonic() + 3
        while time.monotonic() < busy_until:
            sum(range(10_000))
        assert client.get(key) is not None, "the heartbeat lapsed while the host was busy"
    finally:
        beat.stop()
    assert client.get(key) is None, "a host that left still looks alive"
    assert not any(t.name == "heartbeat" and t.is_alive() for t in threading.enumerate())
    client.close()


def test_a_leaving_host_never_deletes_the_new_hosts_beat(redis_url: str) -> None:
    """Issue 23: the old job's delete was unconditional; as it left after a takeover it removed
    the new host's heartbeat, and the keeper then removed the healthy new host."""
    client = redis.Redis.from_url(redis_url)
    key = Keys("radio-takeover").heartbeat
    old = Heartbeat(redis_url, "radio-takeover", "PA_old")
    old.start()
    try:
        deadline = time.monotonic() + 5
        while client.get(key) is None:
            assert time.monotonic() < deadline, "no heartbeat written"
            time.sleep(0.05)
        old._stop.set()  # the old job's beat thread has ended; the new host beats now
        old._thread.join(timeout=2)
        client.set(key, json.dumps({"sid": "PA_new", "tasks": 3}), px=2000)
    finally:
        old.stop()
    assert client.get(key) is not None, "the old host deleted the new host's heartbeat"
    assert json.loads(client.get(key))["sid"] == "PA_new"
    client.close()
