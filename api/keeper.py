"""The keeper: keeps the station room open and the host in it, around the clock.

LiveKit closes a room soon after its last non-agent participant leaves (agents do not count), and
a host whose worker restarted is not dispatched again by anyone. So one keeper, wherever the API
runs, creates the station room with long timeouts, dispatches the host explicitly (agent name
`radio-host`) and dispatches it again whenever the host is gone for longer than a short grace
(worker restarted, job crashed, room closed). Several API replicas may run a keeper: a Redis
lock with a short lease lets exactly one act; the others wait to take over.

The lead wires `run_keeper` into the API's lifespan; it also runs standalone
(`python -m api.keeper`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from typing import Protocol

import redis.asyncio as aioredis
from livekit import api as lkapi
from pydantic import SecretStr

log = logging.getLogger("radio24.keeper")

LOCK_KEY = "radio24:keeper:lock"
ROOM_TIMEOUT_SECONDS = 7 * 24 * 3600  # LiveKit's room timeouts are uint32 seconds
LEASE_SECONDS = 15.0
CHECK_SECONDS = 2.0
# A dispatch takes a few seconds to become a participant; only after this is it re-tried.
DISPATCH_GRACE_SECONDS = 12.0

# Release the lock only if it is still ours (a lease that expired may belong to another).
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""


class KeeperSettings(Protocol):
    livekit_url: str
    livekit_api_key: str
    livekit_api_secret: SecretStr
    radio_room: str
    agent_name: str
    host_identity: str


class Keeper:
    """One pass of `check()` makes sure the room exists and the host is in it (or coming)."""

    def __init__(
        self,
        livekit: lkapi.LiveKitAPI,
        room: str,
        *,
        agent_name: str = "radio-host",
        host_identity: str = "host",
        grace: float = DISPATCH_GRACE_SECONDS,
    ) -> None:
        self.livekit = livekit
        self.room = room
        self.agent_name = agent_name
        self.host_identity = host_identity
        self.grace = grace
        self._dispatched_at = 0.0
        self.dispatches = 0

    async def check(self) -> None:
        await self._ensure_room()
        if await self._host_present():
            return
        if time.monotonic() - self._dispatched_at < self.grace:
            return  # a dispatch is on its way
        await self._dispatch()

    async def _ensure_room(self) -> None:
        rooms = await self.livekit.room.list_rooms(lkapi.ListRoomsRequest(names=[self.room]))
        if rooms.rooms:
            return
        await self.livekit.room.create_room(
            lkapi.CreateRoomRequest(
                name=self.room,
                empty_timeout=ROOM_TIMEOUT_SECONDS,
                departure_timeout=ROOM_TIMEOUT_SECONDS,
            )
        )
        log.info("station room created", extra={"room": self.room})
        self._dispatched_at = 0.0  # a new room has no host: dispatch at once

    async def _host_present(self) -> bool:
        listing = await self.livekit.room.list_participants(
            lkapi.ListParticipantsRequest(room=self.room)
        )
        return any(p.identity == self.host_identity for p in listing.participants)

    async def _dispatch(self) -> None:
        # Stale dispatches (their job died) would pile up in the room: remove ours first.
        for old in await self.livekit.agent_dispatch.list_dispatch(self.room):
            if old.agent_name == self.agent_name:
                with contextlib.suppress(Exception):
                    await self.livekit.agent_dispatch.delete_dispatch(old.id, self.room)
        await self.livekit.agent_dispatch.create_dispatch(
            lkapi.CreateAgentDispatchRequest(agent_name=self.agent_name, room=self.room)
        )
        self._dispatched_at = time.monotonic()
        self.dispatches += 1
        log.info("host dispatched", extra={"room": self.room, "agent": self.agent_name})


async def run_keeper(settings: KeeperSettings, redis: aioredis.Redis, stop: asyncio.Event) -> None:
    """Keep the station alive until `stop` is set; act only while holding the Redis lock."""
    token = secrets.token_hex(16)
    livekit = lkapi.LiveKitAPI(
        url=settings.livekit_url.replace("ws://", "http://").replace("wss://", "https://"),
        api_key=settings.livekit_api_key,
        api_secret=settings.livekit_api_secret.get_secret_value(),
    )
    keeper = Keeper(
        livekit,
        settings.radio_room,
        agent_name=settings.agent_name,
        host_identity=settings.host_identity,
    )
    lease_ms = int(LEASE_SECONDS * 1000)
    holding = False
    try:
        while not stop.is_set():
            try:
                if holding:
                    holding = bool(await redis.eval(_RENEW, 1, LOCK_KEY, token, lease_ms))
                if not holding:
                    holding = bool(await redis.set(LOCK_KEY, token, nx=True, px=lease_ms))
                    if holding:
                        log.info("keeper lock taken")
                if holding:
                    await keeper.check()
            except Exception:
                log.warning("keeper check failed; retrying", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), CHECK_SECONDS)
    finally:
        if holding:
            with contextlib.suppress(Exception):
                await redis.eval(_RELEASE, 1, LOCK_KEY, token)
        await livekit.aclose()


def main() -> None:
    """`python -m api.keeper`: run the keeper alone until interrupted."""
    import signal

    from api.settings import ApiSettings
    from radio24.settings import load

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
