"""The keeper: keeps the station room open and the host in it, around the clock.

LiveKit closes a room soon after its last non-agent participant leaves (agents do not count), and
a host whose worker restarted is not dispatched again by anyone. So one keeper, wherever the API
runs, creates the station room with long timeouts and dispatches the host explicitly (agent name
`radio-host`), twice a second looking at what LiveKit and the host's heartbeat say.

Fast takeover. A host whose job was killed stays a participant until LiveKit times it out (about
20 s of silence). The host renews a heartbeat in Redis (`Keys.heartbeat`, JSON `{"sid", "tasks"}`)
every `HEARTBEAT_EVERY_SECONDS`, expiring `HEARTBEAT_TTL_SECONDS` after the last renewal
(`contract.keys`). A host whose heartbeat is missing, or names another participant, on
`REPLACE_AFTER_POLLS` polls in a row (one odd read, such as a beat written between two keys,
never removes a healthy host) is removed and a new host dispatched, without a grace wait: once
it has been present for
`SETTLE_SECONDS`, or `FIRST_BEAT_SECONDS` while it has never been seen beating (a job's first
seconds can block its loop for several on a busy machine). That is judged only while Redis
answers, and only once it has answered for `REDIS_SETTLED_SECONDS`, a heartbeat lifetime and two
beats (a Redis that just came back empty has no beat yet): with Redis down the keeper goes by
LiveKit presence alone and never removes a host. Two hosts cannot speak at once: `host` is one
identity, and LiveKit (checked on v1.13.5, tests/host/test_keeper.py) removes the older
participant when a second joins with it.

Several API replicas may run a keeper. The lease lock in Redis (`Keys.keeper_lock`, renewed
every poll, `LEASE_SECONDS`) lets one act. When Redis does not answer, nobody can take or renew
it, so:
- the keeper that held the lease at its last answer goes on acting (presence only);
- the others stand by, and act only when the station has visibly gone unkept for
  `STANDBY_PATIENCE_SECONDS` (room missing or host absent, no dispatch seen): the holder is gone
  too. A standby never removes a host. Every keeper counts a dispatch it did not make as one on its
  way, so a holder and a standby do not both dispatch; when Redis answers again the lease decides
  within one poll. So one API alone keeps the station through a Redis outage (even restarted
  during it), and two act at once only after the station was seen unkept by both.

The decision is pure (`decide`); `Keeper.check` gathers the facts and carries it out.
`run_keeper` runs in the API's lifespan; it also runs standalone (`python -m api.keeper`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import redis.asyncio as aioredis
from livekit import api as lkapi
from pydantic import SecretStr

from contract.keys import HEARTBEAT_EVERY_SECONDS, HEARTBEAT_TTL_SECONDS, Keys

log = logging.getLogger("radio24.keeper")

# Redis answering for this long has seen a live host beat at least twice since it came back.
REDIS_SETTLED_SECONDS = HEARTBEAT_TTL_SECONDS + 2 * HEARTBEAT_EVERY_SECONDS
ROOM_TIMEOUT_SECONDS = 7 * 24 * 3600  # LiveKit's room timeouts are uint32 seconds
LEASE_SECONDS = 15.0
CHECK_SECONDS = 0.5
# A host that has just joined has not renewed its heartbeat yet; one never yet seen beating is
# given longer (a job's first seconds can block its loop for several on a busy machine).
SETTLE_SECONDS = 3.0
FIRST_BEAT_SECONDS = 10.0
# Polls in a row whose heartbeat does not name the host before it is replaced.
REPLACE_AFTER_POLLS = 2
# A dispatch takes a few seconds to become a participant; only after this is it re-tried.
DISPATCH_GRACE_SECONDS = 8.0
# Without Redis a keeper that did not hold the lease waits this long for the holder to act.
STANDBY_PATIENCE_SECONDS = 2 * DISPATCH_GRACE_SECONDS
# Every Redis and LiveKit call of a poll is bounded: a hung part must not stall the keeper.
# (Redis answers in a millisecond; one that takes a second is treated as down: presence only.)
REDIS_TIMEOUT_SECONDS = 1.0
LIVEKIT_TIMEOUT_SECONDS = 5.0

# Release the lock only if it is still ours (a lease that expired may belong to another).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
# Renew ours, or take a free lock: 1 if we hold it afterwards.
_HOLD = """
local v = redis.call('get', KEYS[1])
if v == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
if not v then redis.call('set', KEYS[1], ARGV[1], 'PX', ARGV[2]) return 1 end
return 0
"""


class KeeperSettings(Protocol):
    livekit_url: str
    livekit_api_key: str
    livekit_api_secret: SecretStr
    radio_room: str
    agent_name: str
    host_identity: str


class Act(enum.Enum):
    WAIT = "wait"
    DISPATCH = "dispatch"
    REPLACE = "replace"  # remove the stale host participant, then dispatch


@dataclass(frozen=True)
class Facts:
    """What one poll saw. Durations in seconds, measured on the keeper's own clock."""

    host_sid: str | None  # the host participant in the room; None: absent
    host_seen_for: float  # how long this keeper has seen that participant
    host_has_beaten: bool  # this keeper has seen a heartbeat naming that participant
    unkept_for: float  # how long the room has been missing or the host absent (0: present)
    since_dispatch: float  # since the last dispatch, ours or one first seen from another keeper
    beat_sid: str | None  # the participant the heartbeat names; None: no heartbeat
    redis_up_for: float | None  # how long Redis has answered without a break; None: not now
    patience: float  # 0 for the lease holder; a standby's wait before it acts
    # A host worker registered since the last dispatch. LiveKit drops a dispatch made while no
    # worker is registered ("not dispatching agent job"), so one is made again at once.
    worker_new: bool = False
    # Polls in a row, this one included, whose heartbeat (Redis answering) did not name the host.
    unbeaten_polls: int = 0


def decide(facts: Facts, grace: float = DISPATCH_GRACE_SECONDS) -> Act:
    """What the keeper does about the host after one poll."""
    if facts.host_sid is None:
        waited = facts.since_dispatch >= grace or facts.worker_new
        if facts.unkept_for >= facts.patience and waited:
            return Act.DISPATCH
        return Act.WAIT
    if facts.patience > 0 or facts.redis_up_for is None:
        return Act.WAIT  # presence only: never remove a host without a heartbeat to go by
    settle = SETTLE_SECONDS if facts.host_has_beaten else FIRST_BEAT_SECONDS
    if facts.host_seen_for < settle or facts.redis_up_for < REDIS_SETTLED_SECONDS:
        return Act.WAIT
    if facts.beat_sid == facts.host_sid or facts.unbeaten_polls < REPLACE_AFTER_POLLS:
        return Act.WAIT
    return Act.REPLACE


@dataclass(frozen=True)
class Beat:
    """The heartbeat as read this poll: Redis answered (`sid` None if missing), or it did not."""

    answered: bool
    sid: str | None = None
    worker_at: str | None = None  # when a host worker last registered (as it wrote it)


def parse_beat(raw: bytes | str | None) -> str | None:
    """The sid in a heartbeat value; None when missing or unreadable."""
    if raw is None:
        return None
    try:
        sid = json.loads(raw).get("sid")
    except (ValueError, AttributeError):
        return None
    return sid if isinstance(sid, str) and sid else None


class Keeper:
    """One `check()` per poll makes sure the room exists and a live host is in it (or coming)."""

    def __init__(
        self,
        livekit: lkapi.LiveKitAPI,
        room: str,
        *,
        agent_name: str = "radio-host",
        host_identity: str = "host",
        grace: float = DISPATCH_GRACE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.livekit = livekit
        self.room = room
        self.agent_name = agent_name
        self.host_identity = host_identity
        self.grace = grace
        self.clock = clock
        self._dispatched_at = float("-inf")
        self._known_dispatches: set[str] = set()
        self._seen: tuple[str, float] | None = None  # (host sid, first seen)
        self._beaten = False  # a heartbeat naming that sid was seen
        self._unbeaten = 0  # polls in a row whose heartbeat did not name the host
        self._unkept_since: float | None = None
        self._worker_at: str | None = None  # the worker registration known at the last dispatch
        self.dispatches = 0
        self.replacements = 0

    async def check(self, beat: Beat, redis_up_for: float | None, patience: float = 0.0) -> Act:
        """Look once and act; `patience` > 0 makes this a standby (see the module's notes)."""
        now = self.clock()
        host = None
        if await self._room_exists():
            host = await self._host()
        else:
            self._unkept_since = self._unkept_since if self._unkept_since is not None else now
            if now - self._unkept_since < patience:
                return Act.WAIT
            await self._create_room()
        if host is None:
            self._seen, self._unbeaten = None, 0
            self._unkept_since = self._unkept_since if self._unkept_since is not None else now
            await self._note_dispatches(now)
        else:
            self._unkept_since = None
            if self._seen is None or self._seen[0] != host.sid:
                self._seen, self._beaten, self._unbeaten = (host.sid, now), False, 0
            named = beat.answered and beat.sid == host.sid
            self._beaten = self._beaten or named
            # Only a Redis that answers can say the host does not beat.
            self._unbeaten = 0 if named or not beat.answered else self._unbeaten + 1
        facts = Facts(
            host_sid=host.sid if host else None,
            host_seen_for=now - self._seen[1] if self._seen else 0.0,
            host_has_beaten=self._beaten,
            unkept_for=0.0 if self._unkept_since is None else now - self._unkept_since,
            since_dispatch=now - self._dispatched_at,
            beat_sid=beat.sid if beat.answered else None,
            redis_up_for=redis_up_for if beat.answered else None,
            patience=patience,
            worker_new=beat.answered and beat.worker_at not in (None, self._worker_at),
            unbeaten_polls=self._unbeaten,
        )
        act = decide(facts, self.grace)
        if act is Act.REPLACE and host is not None:
            await self._remove(host.sid, facts.beat_sid)
            self._unbeaten = 0
        if act in (Act.DISPATCH, Act.REPLACE):
            await self._dispatch()
            if beat.answered:
                self._worker_at = beat.worker_at
        return act

    async def _room_exists(self) -> bool:
        rooms = await self.livekit.room.list_rooms(lkapi.ListRoomsRequest(names=[self.room]))
        return bool(rooms.rooms)

    async def _create_room(self) -> None:
        # (LiveKit keeps an existing room's settings: a room a client re-created after a LiveKit
        # restart has the server's default timeouts until it closes and this recreates it.)
        await self.livekit.room.create_room(
            lkapi.CreateRoomRequest(
                name=self.room,
                empty_timeout=ROOM_TIMEOUT_SECONDS,
                departure_timeout=ROOM_TIMEOUT_SECONDS,
            )
        )
        log.info("station room created", extra={"room": self.room})
        self._dispatched_at = float("-inf")  # a new room has no host: dispatch at once
        self._known_dispatches = set()

    async def _host(self) -> lkapi.ParticipantInfo | None:
        listing = await self.livekit.room.list_participants(
            lkapi.ListParticipantsRequest(room=self.room)
        )
        return next((p for p in listing.participants if p.identity == self.host_identity), None)

    async def _note_dispatches(self, now: float) -> None:
        """A dispatch of ours we did not make (another keeper's) counts as one on its way."""
        ids = {
            d.id
            for d in await self.livekit.agent_dispatch.list_dispatch(self.room)
            if d.agent_name == self.agent_name
        }
        if ids - self._known_dispatches:
            self._dispatched_at = max(self._dispatched_at, now)
        self._known_dispatches |= ids

    async def _remove(self, sid: str, beat_sid: str | None) -> None:
        with contextlib.suppress(lkapi.TwirpError):  # it may have left on its own meanwhile
            await self.livekit.room.remove_participant(
                lkapi.RoomParticipantIdentity(room=self.room, identity=self.host_identity)
            )
        self.replacements += 1
        log.warning(
            "host without a heartbeat removed",
            extra={"room": self.room, "participant": sid, "heartbeat": beat_sid},
        )

    async def _dispatch(self) -> None:
        # Old dispatches (their job died) would pile up in the room; deleting one also ends a
        # job of it that is somehow still running. (One whose deletion failed is still known:
        # it must not pass for another keeper's dispatch later.)
        for old in await self.livekit.agent_dispatch.list_dispatch(self.room):
            if old.agent_name == self.agent_name:
                self._known_dispatches.add(old.id)
                with contextlib.suppress(Exception):
                    await self.livekit.agent_dispatch.delete_dispatch(old.id, self.room)
        made = await self.livekit.agent_dispatch.create_dispatch(
            lkapi.CreateAgentDispatchRequest(agent_name=self.agent_name, room=self.room)
        )
        self._known_dispatches.add(made.id)
        self._dispatched_at = self.clock()
        self.dispatches += 1
        log.info("host dispatched", extra={"room": self.room, "agent": self.agent_name})


class Lease:
    """The Redis lease lock, and what the keeper knows about Redis between polls."""

    def __init__(
        self, redis: aioredis.Redis, keys: Keys, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.clock = clock
        self.token = secrets.token_hex(16)
        self.holding = False  # at Redis's last answer
        self.up_since: float | None = None  # Redis has answered since then

    async def poll(self) -> Beat:
        """Renew or take the lease and read the heartbeat, in one bounded round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.eval(_HOLD, 1, self.keys.keeper_lock, self.token, int(LEASE_SECONDS * 1000))
        pipe.get(self.keys.heartbeat)
        pipe.hget(self.keys.worker, "at")
        try:
            # wait_for, not asyncio.timeout: on 3.11 a timeout that fires as the block ends
            # leaves a cancel pending on the keeper's own task, which would end it silently.
            held, raw, worker_at = await asyncio.wait_for(pipe.execute(), REDIS_TIMEOUT_SECONDS)
        except (aioredis.RedisError, OSError, TimeoutError):
            if self.up_since is not None:
                log.warning("redis not answering: keeping the station on LiveKit presence alone")
            self.up_since = None
            return Beat(answered=False)
        if self.up_since is None:
            self.up_since = self.clock()
            log.info("redis answering")
        if bool(held) != self.holding:
            log.info("keeper lock taken" if held else "keeper lock lost to another keeper")
        self.holding = bool(held)
        if isinstance(worker_at, bytes):
            worker_at = worker_at.decode(errors="replace")
        return Beat(answered=True, sid=parse_beat(raw), worker_at=worker_at)

    def up_for(self) -> float | None:
        return None if self.up_since is None else self.clock() - self.up_since

    async def release(self) -> None:
        if self.holding:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    self.redis.eval(_RELEASE, 1, self.keys.keeper_lock, self.token), 2
                )


async def run_keeper(
    settings: KeeperSettings,
    redis: aioredis.Redis,
    stop: asyncio.Event,
    *,
    standby_patience: float = STANDBY_PATIENCE_SECONDS,
) -> None:
    """Keep the station alive until `stop` is set (see the module's notes on the lease)."""
    livekit = lkapi.LiveKitAPI(
        url=settings.livekit_url.replace("ws://", "http://").replace("wss://", "https://"),
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
        timeout=aiohttp.ClientTimeout(total=LIVEKIT_TIMEOUT_SECONDS),
    )
    keeper = Keeper(
        livekit,
        settings.radio_room,
        agent_name=settings.agent_name,
        host_identity=settings.host_identity,
    )
    lease = Lease(redis, Keys(settings.radio_room))
    failing = False
    try:
        while not stop.is_set():
            started = time.monotonic()
            beat = await lease.poll()
            try:
                if beat.answered and not lease.holding:
                    pass  # another keeper holds the lease
                else:
                    patience = 0.0 if lease.holding else standby_patience
                    await keeper.check(beat, lease.up_for(), patience)
                if failing:
                    log.info("keeper checks answered again")
                failing = False
            except Exception:
                if not failing:  # once per outage, not twice a second
                    log.warning("keeper check failed; retrying", exc_info=True)
                failing = True
            wait = max(0.05, CHECK_SECONDS - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), wait)
    except asyncio.CancelledError:
        if not stop.is_set():
            log.error("keeper cancelled while the station still needs it")
        raise
    finally:
        await lease.release()
        await livekit.aclose()


def main() -> None:
    """`python -m api.keeper`: run the keeper alone until interrupted."""
    import signal

    from api.settings import ApiSettings
    from core.settings import load

    settings = load(ApiSettings)
    logging.basicConfig(level=logging.INFO)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        redis = aioredis.from_url(settings.redis_url)
        try:
            await run_keeper(settings, redis, stop)
        finally:
            await redis.aclose()

    asyncio.run(run())


if __name__ == "__main__":
    main()
