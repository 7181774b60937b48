"""What the keeper (api/keeper.py) reads of the hosts: the heartbeat of the host on air and each
host worker's registration, in Redis under the station's `contract.keys.Keys`.

The heartbeat (`Keys.heartbeat`, JSON `{"sid", "tasks"}`) is renewed every
`HEARTBEAT_EVERY_SECONDS` and lapses `HEARTBEAT_TTL_SECONDS` after the last renewal, so the
keeper replaces a dead host at once. A worker that registers with LiveKit records itself in the
hash `Keys.worker` (`id`, `at`), which the keeper and `make run`'s banner watch.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time

import redis as sync_redis
import redis.asyncio as aioredis

from contract.keys import HEARTBEAT_EVERY_SECONDS, HEARTBEAT_TTL_SECONDS, Keys

log = logging.getLogger("radio24.heartbeat")


def worker_registered(redis_url: str, keys: Keys, worker_id: str) -> None:
    """Tell operators (and `make run`'s banner) that a host worker is registered."""

    async def publish() -> None:
        client = aioredis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        try:
            await client.hset(keys.worker, mapping={"id": worker_id, "at": time.time()})
        finally:
            await client.aclose()

    def done(task: asyncio.Task[None]) -> None:
        _registrations.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.warning("could not record worker", exc_info=task.exception())

    # The worker's loop owns the task; the set keeps it alive until it is done.
    task = asyncio.get_running_loop().create_task(publish(), name="record-worker")
    _registrations.add(task)
    task.add_done_callback(done)


_registrations: set[asyncio.Task[None]] = set()


# Delete the heartbeat only while it still names this host (Redis's Lua has cjson).
_DELETE_OWN = """
local v = redis.call('get', KEYS[1])
if not v then return 0 end
local ok, beat = pcall(cjson.decode, v)
if ok and type(beat) == 'table' and beat['sid'] == ARGV[1] then
  return redis.call('del', KEYS[1])
end
return 0
"""


class Heartbeat:
    """The host's heartbeat, renewed from a thread of its own.

    It says "this host's process is alive", which is what the keeper needs to replace a dead
    host at once. A thread keeps beating while the job's event loop is busy for a few seconds
    (imports, a slow start on a loaded machine), which a loop task would not, and a live host
    must never be taken for a dead one. Redis being down only means no beats (the keeper then
    goes by LiveKit presence).
    """

    def __init__(self, redis_url: str, room: str, sid: str) -> None:
        self._key = Keys(room).heartbeat
        self._sid = sid
        # The job's asyncio task count, set by the job's loop (`count_tasks`): beaten with the
        # sid so an operator (and the soak) can see a task leak from outside the process.
        self.tasks: int | None = None
        self._client = sync_redis.Redis.from_url(
            redis_url, socket_timeout=0.5, socket_connect_timeout=0.5
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        with contextlib.suppress(Exception):
            # Gone at once, so the keeper need not wait for expiry; but only our own beat: a
            # new host may already beat under the same key, and deleting its beat would have
            # the keeper remove a healthy host.
            self._client.eval(_DELETE_OWN, 1, self._key, self._sid)
        self._client.close()

    def _run(self) -> None:
        ttl_ms = round(HEARTBEAT_TTL_SECONDS * 1000)
        while not self._stop.is_set():
            value = json.dumps({"sid": self._sid, "tasks": self.tasks})
            with contextlib.suppress(Exception):
                self._client.set(self._key, value, px=ttl_ms)
            self._stop.wait(HEARTBEAT_EVERY_SECONDS)

    async def count_tasks(self) -> None:
        """Keep `tasks` current, from the job's own loop (asyncio.all_tasks is not for threads)."""
        while True:
            self.tasks = len(asyncio.all_tasks())
            await asyncio.sleep(1.0)
