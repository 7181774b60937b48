"""Who holds the push-to-talk floor: one caller at a time, for a limited time.

A public station lets any listener call in, so the floor is a small state machine with hard
rules: a second caller is told the floor is busy, only the holder can end or cancel a turn, a
turn is cut at a maximum length, a caller who says nothing at all is cut much sooner (their
silence is the station's dead air), and a caller who leaves frees the floor. It is pure: no LiveKit,
no clock of its own (the clock is injected), so every rule is tested in milliseconds. The host
turns its answers into RPC replies, microphone grants and participant attributes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

Clock = Callable[[], datetime]


class FloorError(Exception):
    """A floor request that is refused; `code` is stable for clients, the message is for people."""

    code = "floor_error"


class FloorBusy(FloorError):
    code = "busy"

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__("the floor is busy: another caller is on air, try again when they finish")


class NotHolder(FloorError):
    code = "not_holder"

    def __init__(self, identity: str) -> None:
        self.identity = identity
        super().__init__("you do not hold the floor")


class TurnEnd(StrEnum):
    ENDED = "ended"  # the caller released the button
    CANCELLED = "cancelled"  # the caller took it back: nothing goes to the model
    TIMED_OUT = "timed_out"  # the turn reached the maximum length: what was said is kept
    LEFT = "left"  # the caller left the room mid-turn: nothing goes to the model
    QUIET = "quiet"  # nothing was heard for the quiet limit from the start: the programme resumes


@dataclass(frozen=True)
class FloorState:
    """What pages show: free, or held by whom since when and until when at most."""

    holder: str | None = None
    since: datetime | None = None
    deadline: datetime | None = None
    # Whose turn ended last, and how (pages tell a caller the floor was taken back from why).
    ended: tuple[str, TurnEnd] | None = None

    @property
    def free(self) -> bool:
        return self.holder is None

    def as_attribute(self) -> dict[str, object]:
        return {
            "state": "free" if self.holder is None else "held",
            "holder": self.holder,
            "since": self.since.isoformat() if self.since else None,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "ended": {"holder": self.ended[0], "how": self.ended[1].value} if self.ended else None,
        }


@dataclass(frozen=True)
class Turn:
    """A finished turn. `keep` says whether the caller's audio should reach the model."""

    caller: str
    started: datetime
    ended: datetime
    how: TurnEnd

    @property
    def duration(self) -> timedelta:
        return self.ended - self.started

    @property
    def keep(self) -> bool:
        return self.how in (TurnEnd.ENDED, TurnEnd.TIMED_OUT)


class Floor:
    """The push-to-talk floor. Every method takes the caller's identity; none blocks."""

    def __init__(
        self, clock: Clock, max_turn: timedelta, max_quiet: timedelta | None = None
    ) -> None:
        if max_turn <= timedelta(0):
            raise ValueError("max_turn must be positive")
        if max_quiet is not None and max_quiet <= timedelta(0):
            raise ValueError("max_quiet must be positive")
        self._clock = clock
        self._max_turn = max_turn
        self._max_quiet = max_quiet
        self._state = FloorState()

    @property
    def state(self) -> FloorState:
        return self._state

    @property
    def holder(self) -> str | None:
        return self._state.holder

    def start(self, caller: str) -> FloorState:
        """Give the floor to `caller`; the holder asking again keeps its turn (a client retry)."""
        if self._state.holder == caller:
            return self._state
        if self._state.holder is not None:
            raise FloorBusy(self._state.holder)
        now = self._clock()
        self._state = FloorState(caller, now, now + self._max_turn)
        return self._state

    def end(self, caller: str) -> Turn:
        return self._finish(caller, TurnEnd.ENDED)

    def cancel(self, caller: str) -> Turn:
        return self._finish(caller, TurnEnd.CANCELLED)

    def left(self, identity: str) -> Turn | None:
        """A participant left the room; if it held the floor, the floor is free again."""
        if self._state.holder != identity:
            return None
        return self._finish(identity, TurnEnd.LEFT)

    def expire(self, *, heard: bool = True) -> Turn | None:
        """Cut the turn if it has reached the maximum length, or the quiet limit while nothing
        has been `heard` from the caller yet (a press held in silence, a microphone that never
        came up); None while there is time left."""
        state = self._state
        if state.holder is None or state.since is None or state.deadline is None:
            return None
        now = self._clock()
        quiet_until = state.since + self._max_quiet if self._max_quiet is not None else None
        if not heard and quiet_until is not None and quiet_until <= now < state.deadline:
            return self._finish(state.holder, TurnEnd.QUIET, at=quiet_until)
        if now < state.deadline:
            return None
        return self._finish(state.holder, TurnEnd.TIMED_OUT, at=state.deadline)

    def _finish(self, caller: str, how: TurnEnd, at: datetime | None = None) -> Turn:
        state = self._state
        if state.holder != caller or state.since is None:
            raise NotHolder(caller)
        ended = at or self._clock()
        if state.deadline is not None and ended > state.deadline:
            ended = state.deadline  # a late release never makes a turn longer than allowed
        self._state = FloorState(ended=(caller, how))
        return Turn(caller, state.since, ended, how)
