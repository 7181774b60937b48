"""Live events and state: what the host and the API publish, and what pages receive.

Every event is a JSON object with a `type`, carried on the pub/sub channel `Keys.events`. The
public ones also leave their latest value in the hash `Keys.state` (one JSON value per field of
`STATE_FIELDS`), so a page that connects late starts from a `Snapshot`. The models here are the
one definition of those shapes: the host builds them, the API's hub parses them, and the page's
TypeScript types are generated from their JSON schema (`event_schema()`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class _Shape(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SegmentInfo(_Shape):
    id: str
    title: str
    starts: str  # ISO 8601 with the station's offset
    ends: str | None = None


class NextSegment(_Shape):
    id: str
    title: str
    starts: str


class FloorEnded(_Shape):
    holder: str
    how: Literal["ended", "cancelled", "timed_out", "left", "quiet"]


class FloorInfo(_Shape):
    state: Literal["free", "held"]
    holder: str | None = None
    holder_name: str | None = None
    since: str | None = None
    deadline: str | None = None
    ended: FloorEnded | None = None


class NowPlaying(_Shape):
    title: str
    artist: str | None = None
    kind: str = "track"


class SegmentEvent(_Shape):
    type: Literal["segment"] = "segment"
    segment: SegmentInfo
    next: NextSegment


class FloorEvent(_Shape):
    type: Literal["floor"] = "floor"
    floor: FloorInfo


class NowPlayingEvent(_Shape):
    type: Literal["now_playing"] = "now_playing"
    now_playing: NowPlaying | None


class ListenersEvent(_Shape):
    type: Literal["listeners"] = "listeners"
    count: int = Field(ge=0)


class PostStatusEvent(_Shape):
    """A post changed status: sent to its author and to staff only."""

    type: Literal["post_status"] = "post_status"
    post_id: str
    listener_id: str
    status: str


class BannedEvent(_Shape):
    """Internal: every API instance closes this listener's sockets. Never sent to a page."""

    type: Literal["banned"] = "banned"
    listener_id: str


Event = Annotated[
    SegmentEvent | FloorEvent | NowPlayingEvent | ListenersEvent | PostStatusEvent | BannedEvent,
    Field(discriminator="type"),
]
EVENT: TypeAdapter[Event] = TypeAdapter(Event)

# Events every page receives; post_status goes to its author and staff; banned to no page.
PUBLIC = ("segment", "floor", "now_playing", "listeners")
STATE_FIELDS = ("segment", "next", "floor", "now_playing", "listeners")


class Snapshot(_Shape):
    """The first message on a page's socket: the public state as it is now."""

    type: Literal["snapshot"] = "snapshot"
    segment: SegmentInfo | None = None
    next: NextSegment | None = None
    floor: FloorInfo | None = None
    now_playing: NowPlaying | None = None
    listeners: int | None = None


class Problem(_Shape):
    file: str
    line: int
    message: str
    fix: str


class PromptsStatus(_Shape):
    """The host's verdict on the producers' files, kept in `Keys.prompts_status`."""

    ok: bool
    problems: list[Problem]
    loaded_at: str | None = None


def parse(raw: str | bytes) -> Event:
    """An event from its JSON; pydantic's ValidationError for anything else."""
    return EVENT.validate_json(raw)


def dump(event: Event) -> str:
    return event.model_dump_json()


def state_fields(event: Event) -> dict[str, str]:
    """What a public event leaves in `Keys.state`: field name → JSON value."""
    match event:
        case SegmentEvent(segment=segment, next=following):
            return {"segment": segment.model_dump_json(), "next": following.model_dump_json()}
        case FloorEvent(floor=floor):
            return {"floor": floor.model_dump_json()}
        case NowPlayingEvent(now_playing=playing):
            return {"now_playing": json.dumps(playing and playing.model_dump())}
        case ListenersEvent(count=count):
            return {"listeners": json.dumps(count)}
    return {}


def snapshot(raw: Mapping[str | bytes, str | bytes]) -> Snapshot:
    """The snapshot from the state hash; a field that is stale or foreign is left out (None)."""
    state = {k.decode() if isinstance(k, bytes) else k: v for k, v in raw.items()}
    clean: dict[str, Any] = {}
    for name in STATE_FIELDS:
        if name not in state:
            continue
        try:  # each field alone, so one bad value does not blank the others
            one = Snapshot.model_validate({name: json.loads(state[name])})
        except ValueError:  # JSON or validation
            continue
        clean[name] = getattr(one, name)
    return Snapshot(**clean)


def event_schema() -> dict[str, Any]:
    """One JSON schema for the page's generated types: every event, the snapshot, the status."""
    return TypeAdapter(
        Annotated[
            SegmentEvent
            | FloorEvent
            | NowPlayingEvent
            | ListenersEvent
            | PostStatusEvent
            | Snapshot,
            Field(discriminator="type"),
        ]
    ).json_schema()
