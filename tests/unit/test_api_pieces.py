"""The API's pure pieces: its own tokens, log redaction, what live events change and reach."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any

import jwt
import pytest

from api import limits
from api.auth import Person, issue_token, read_token
from api.hub import Client, EventHub, publish
from api.logs import REDACTED, Redact, formatter
from api.metrics import Metrics
from contract.events import (
    BannedEvent,
    FloorEvent,
    FloorInfo,
    ListenersEvent,
    PostStatusEvent,
    dump,
    parse,
    state_fields,
)
from contract.keys import Keys

SECRET = "unit-test-secret-0123456789abcdef0123"
PERSON = Person(uuid.uuid4(), "Mika", "listener")


def test_token_round_trip_names_the_person() -> None:
    token, expires = issue_token(SECRET, PERSON, 600, now=1_000_000)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["sub"] == str(PERSON.id)
    assert claims["exp"] == expires == 1_000_600
    assert read_token(SECRET, issue_token(SECRET, PERSON, 600)[0]) == PERSON.id


def test_expired_forged_and_none_tokens_are_refused() -> None:
    expired, _ = issue_token(SECRET, PERSON, 60, now=time.time() - 120)
    with pytest.raises(jwt.ExpiredSignatureError):
        read_token(SECRET, expired)
    forged, _ = issue_token("another-secret-0123456789abcdef012345", PERSON, 600)
    with pytest.raises(jwt.InvalidSignatureError):
        read_token(SECRET, forged)
    claims = jwt.decode(issue_token(SECRET, PERSON, 600)[0], options={"verify_signature": False})
    unsigned = jwt.encode(claims, None, algorithm="none")
    with pytest.raises(jwt.InvalidTokenError):
        read_token(SECRET, unsigned)
    not_a_person = jwt.encode({**claims, "sub": "root"}, SECRET, algorithm="HS256")
    with pytest.raises(jwt.InvalidTokenError):
        read_token(SECRET, not_a_person)


def test_log_filter_redacts_secrets_and_drops_personal_fields() -> None:
    record = logging.LogRecord("radio24.api", logging.INFO, __file__, 1, "post stored", None, None)
    record.post_id = "p1"
    record.password = "hunter2"
    record.authorization = "Bearer abc"
    record.personal_text = "my secret diary"
    assert Redact().filter(record)
    line = json.loads(formatter().format(record))
    assert line["message"] == "post stored"
    assert line["post_id"] == "p1"
    assert line["password"] == line["authorization"] == REDACTED
    assert "personal_text" not in line
    assert "hunter2" not in json.dumps(line) and "diary" not in json.dumps(line)


def test_state_fields_keep_each_public_events_latest_value() -> None:
    seg = {
        "type": "segment",
        "segment": {"id": "morning", "title": "Morning", "starts": "06:00"},
        "next": {"id": "noon", "title": "Noon", "starts": "10:00"},
    }
    assert state_fields(parse(json.dumps(seg))) == {
        "segment": '{"id":"morning","title":"Morning","starts":"06:00","ends":null}',
        "next": '{"id":"noon","title":"Noon","starts":"10:00"}',
    }
    floor = parse('{"type": "floor", "floor": {"state": "free"}}')
    assert state_fields(floor) == {
        "floor": '{"state":"free","holder":null,"holder_name":null,"since":null,'
        '"deadline":null,"ended":null}'
    }
    assert state_fields(parse('{"type": "listeners", "count": 3}')) == {"listeners": "3"}


class _RecordingRedis:
    """Enough of a Redis client for the hub's state hash."""

    def __init__(self) -> None:
        self.hashes: dict[str, dict[str, str]] = {}

    async def hset(self, name: str, mapping: dict[str, str]) -> None:
        self.hashes.setdefault(name, {}).update(mapping)

    async def hgetall(self, name: str) -> dict[str, str]:
        return dict(self.hashes.get(name, {}))


async def test_the_hub_keeps_the_state_in_the_hosts_shape_and_snapshots_it() -> None:
    """The hub re-writes a public event's state as the host does (`state_fields`): the listener
    count is 3, not '{"count": 3}'; what is not an event of the contract is ignored."""
    redis, keys = _RecordingRedis(), Keys("unit")
    hub = EventHub(redis, keys, Metrics(), queue_size=4, send_timeout=1.0)  # type: ignore[arg-type]
    await hub.dispatch(dump(ListenersEvent(count=3)))
    assert redis.hashes[keys.state] == state_fields(ListenersEvent(count=3)) == {"listeners": "3"}
    assert (await hub.snapshot())["listeners"] == 3
    await hub.dispatch('{"type": "listeners", "n": 1}')
    assert redis.hashes[keys.state] == {"listeners": "3"}


async def test_clients_get_public_events_and_only_their_own_post_status() -> None:
    mine = Client("me", staff=False, queue=asyncio.Queue(4))
    staff = Client("prod", staff=True, queue=asyncio.Queue(4))
    own = PostStatusEvent(listener_id="me", post_id="p", status="aired")
    other = own.model_copy(update={"listener_id": "someone"})
    floor = FloorEvent(floor=FloorInfo(state="free"))
    assert mine.wants(floor) and mine.wants(own) and not mine.wants(other)
    assert staff.wants(other)
    assert not mine.wants(BannedEvent(listener_id="me"))  # internal


class _DyingRedis:
    """A Redis client on a connection Redis closed as it died, as uvloop reports it."""

    def _dead(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError("unable to perform operation on <TCPTransport closed=True>")

    hgetall = publish = _dead

    def pipeline(self, transaction: bool = True) -> _DyingRedis:
        return self

    async def __aenter__(self) -> _DyingRedis:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def zremrangebyscore(self, *args: object, **kwargs: object) -> None:
        return None

    zadd = zcard = zrange = expire = zremrangebyscore

    async def execute(self) -> list[object]:
        self._dead()
        return []


async def test_an_event_redis_cannot_take_is_dropped_not_raised() -> None:
    """Seen in the fault suite: a post during a Redis kill was stored, then answered 500
    because publishing its status event hit uvloop's closed transport (a RuntimeError)."""
    event = PostStatusEvent(post_id="p", listener_id="me", status="queued")
    assert await publish(_DyingRedis(), Keys("unit").events, event) is False  # type: ignore[arg-type]


async def test_a_dying_redis_is_redis_down_for_rate_limits_and_the_live_state() -> None:
    """The same RuntimeError elsewhere: a rate limit treats it as Redis being down (allowed,
    or refused with `Unavailable`), and a page's first snapshot is the empty state, not a 500."""
    dying: Any = _DyingRedis()
    assert (await limits.hit(dying, "k", 1, 60.0)).allowed
    with pytest.raises(limits.Unavailable):
        await limits.hit(dying, "k", 1, 60.0, fail_open=False)
    hub = EventHub(dying, Keys("unit"), Metrics(), queue_size=4, send_timeout=1.0)
    snapshot = await hub.snapshot()
    assert snapshot["type"] == "snapshot"
    assert all(snapshot[name] is None for name in ("segment", "next", "floor", "listeners"))
