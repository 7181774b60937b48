"""Redis names, scoped by station, and how long the short-lived ones live.

Every key carries the station's room (`RADIO_ROOM`), so two stations can share one Redis. Both
sides build their names from `Keys(room)`: the host writes what the API reads, and neither
spells a key itself.
"""

from __future__ import annotations

from dataclasses import dataclass

# The host's heartbeat: renewed every HEARTBEAT_EVERY_SECONDS from a thread of its own, gone
# HEARTBEAT_TTL_SECONDS after the last renewal, so the keeper sees a dead host within that.
HEARTBEAT_EVERY_SECONDS = 0.5
HEARTBEAT_TTL_SECONDS = 2.0
# The posts doorbell stream is capped at about this many entries: the host reads only what
# arrives while it waits; the posts themselves live in Postgres.
POSTS_STREAM_MAXLEN = 1_000


@dataclass(frozen=True)
class Keys:
    """The Redis names of one station."""

    station: str

    @property
    def _base(self) -> str:
        return f"radio24:{self.station}"

    @property
    def events(self) -> str:
        """Pub/sub channel of live events (`contract.events.Event` as JSON)."""
        return f"{self._base}:events"

    @property
    def state(self) -> str:
        """Hash of the latest public state, one JSON value per `contract.events.STATE_FIELDS`."""
        return f"{self._base}:state"

    @property
    def prompts_status(self) -> str:
        """The host's verdict on the producers' files (`contract.events.PromptsStatus`)."""
        return f"{self._base}:prompts:status"

    @property
    def posts(self) -> str:
        """The host's doorbell: a stream of `{"post_id"}`; the posts themselves are in Postgres."""
        return f"{self._base}:posts"

    @property
    def heartbeat(self) -> str:
        """The host on air: JSON `{"sid", "tasks"}`, expiring after HEARTBEAT_TTL_SECONDS."""
        return f"{self._base}:host:heartbeat"

    @property
    def worker(self) -> str:
        """Hash of the latest host worker's registration (`id`, `at`)."""
        return f"{self._base}:host:worker"

    @property
    def keeper_lock(self) -> str:
        """The keeper's lease: one keeper acts at a time."""
        return f"{self._base}:keeper:lock"

    def rate_limit(self, name: str) -> str:
        """A sliding-window counter, e.g. `rate_limit("posts:<listener>")`."""
        return f"{self._base}:ratelimit:{name}"

    def ws_ticket(self, ticket: str) -> str:
        """A one-time ticket for the live-event WebSocket."""
        return f"{self._base}:ws-ticket:{ticket}"
