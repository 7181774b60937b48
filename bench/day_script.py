"""The simulated day's running sheet: who is in the room, who posts, who calls, what breaks.

Pure: a `DayPlan` in, a list of `Event`s (at real seconds from the start of the day) out, the
same for the same seed. The driver (`bench/day.py`) plays it against the real station.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

# Fractions of the day. Nobody at all listens in ABSENT (the host must spend nothing then).
ABSENT = (0.42, 0.52)
OUTAGE_AT, STALL_AT, FATAL_AT = 0.25, 0.60, 0.80
EDIT_AT, BROKEN_AT, MENDED_AT = 0.33, 0.68, 0.74
MONDAY_5AM = datetime.fromisoformat("2026-12-07T05:00:00+09:00")  # station time (JST)
TURN_KINDS = (("speech", 0.70), ("silent", 0.15), ("max", 0.15))


@dataclass(frozen=True)
class DayPlan:
    speed: float = 72.0
    hours: float = 24.0
    start: datetime = MONDAY_5AM
    posts_per_day: int = 1000
    turns_per_day: int = 200
    seed: int = 11
    max_turn_seconds: float = 8.0  # real seconds; a "max" turn holds past it
    silent_press_seconds: float = 2.0
    outage_seconds: float = 12.0  # real seconds the fake Realtime server is down
    stall_seconds: float = 10.0
    session_minutes: float = 5.0  # real minutes between AgentSession renewals
    drop_ins_per_hour: float = 1.0  # listeners who come for a while and go

    @property
    def real_seconds(self) -> float:
        return self.hours * 3600 / self.speed

    def sim(self, real: float) -> datetime:
        """Station time `real` seconds into the day."""
        return self.start + timedelta(seconds=real * self.speed)

    def sim_hours(self, real: float) -> float:
        return real * self.speed / 3600


@dataclass(frozen=True)
class Event:
    at: float  # real seconds from the start of the day
    kind: str  # join, leave, post, turn, outage, outage_end, stall, fatal, edit, broken, mended
    who: str = ""
    detail: dict[str, object] = field(default_factory=dict)


def absent_window(plan: DayPlan) -> tuple[float, float]:
    return ABSENT[0] * plan.real_seconds, ABSENT[1] * plan.real_seconds


def build(plan: DayPlan) -> list[Event]:
    rng = random.Random(plan.seed)
    day = plan.real_seconds
    gone, back = absent_window(plan)
    events: list[Event] = []

    # The monitor ("ears") and two regular callers listen all day except the quiet spell; the
    # regulars also step out once each, so listeners come and go while others stay.
    for who in ("ears", "caller-a", "caller-b"):
        events += [Event(0.0, "join", who), Event(gone, "leave", who), Event(back, "join", who)]
    for who, frac in (("caller-a", 0.15), ("caller-b", 0.63)):
        out = frac * day
        events += [Event(out, "leave", who), Event(out + 0.03 * day, "join", who)]
    # Drop-ins: come for a while and go, never during the quiet spell.
    for i in range(max(1, round(plan.drop_ins_per_hour * plan.hours))):
        at = rng.uniform(0.02, 0.95) * day
        stay = rng.uniform(0.01, 0.05) * day
        if at < back and at + stay > gone:
            continue
        events += [Event(at, "join", f"drop-in-{i}"), Event(at + stay, "leave", f"drop-in-{i}")]

    # Posts: any time of day, listeners write whether or not anyone is listening.
    n_posts = round(plan.posts_per_day * plan.hours / 24)
    for i in range(n_posts):
        events.append(Event(rng.uniform(0.01, 0.97) * day, "post", detail={"n": i}))

    # Turns: only while the regulars are in; spread evenly with jitter so turns rarely collide.
    n_turns = round(plan.turns_per_day * plan.hours / 24)
    weights = [w for _, w in TURN_KINDS]
    kinds = [k for k, _ in TURN_KINDS]
    slots = [(0.03 + 0.92 * (i + rng.uniform(0.1, 0.9)) / n_turns) * day for i in range(n_turns)]
    for i, at in enumerate(slots):
        if gone - 15 <= at <= back + 3:
            continue
        kind = rng.choices(kinds, weights)[0]
        events.append(Event(at, "turn", detail={"n": i, "kind": kind}))

    events += [
        Event(OUTAGE_AT * day, "outage"),
        Event(OUTAGE_AT * day + plan.outage_seconds, "outage_end"),
        Event(STALL_AT * day, "stall"),
        Event(FATAL_AT * day, "fatal"),
        Event(EDIT_AT * day, "edit"),
        Event(BROKEN_AT * day, "broken"),
        Event(MENDED_AT * day, "mended"),
    ]
    return sorted(events, key=lambda e: e.at)
