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
# Audio runs in real time while the clock runs fast, so calls cannot be compressed: a turn holds
# the floor for its real length and the host's answer follows. The issue's ≈200 turns a day
# (one every 7 station minutes) would need a turn every 6 real seconds at 72×, more than a turn
# lasts. So a run gets the issue's density or, when that does not fit, as many turns as fill
# `call_share` of the real airtime (the rest is the running order: IDs, segments, posts).
SPEECH_SECONDS = 3.0  # the scripted caller's sentence with its pauses (bench/day.py)
ANSWER_SECONDS = 3.5  # the fake model's 2 s reply plus the station's 1.5 s silence gap


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
    call_share: float = 0.35  # at most this share of the real airtime goes to callers

    @property
    def real_seconds(self) -> float:
        return self.hours * 3600 / self.speed

    def sim(self, real: float) -> datetime:
        """Station time `real` seconds into the day."""
        return self.start + timedelta(seconds=real * self.speed)

    def sim_hours(self, real: float) -> float:
        return real * self.speed / 3600

    @property
    def turn_seconds(self) -> float:
        """A turn's expected real length: the floor held, then the host's answer."""
        hold = {"speech": SPEECH_SECONDS, "silent": self.silent_press_seconds,
                "max": self.max_turn_seconds + 2.0}  # fmt: skip
        return sum(w * hold[k] for k, w in TURN_KINDS) + ANSWER_SECONDS

    @property
    def issue_turns(self) -> int:
        """The issue's density (≈200 a day) scaled to this run's hours."""
        return round(self.turns_per_day * self.hours / 24)

    @property
    def planned_turns(self) -> int:
        """The turns this run plays: the issue's density where real-time audio allows it."""
        fits = int(self.call_share * self.real_seconds / self.turn_seconds)
        return min(self.issue_turns, fits)


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

    # Turns: only while the regulars are in (a turn must end before they leave for the quiet
    # spell); spread evenly over that time with jitter, so turns rarely collide.
    n_turns = plan.planned_turns
    weights = [w for _, w in TURN_KINDS]
    kinds = [k for k, _ in TURN_KINDS]
    longest = plan.max_turn_seconds + 4.0
    spans = [(0.03 * day, gone - longest), (back + 3.0, 0.95 * day)]
    open_time = sum(b - a for a, b in spans)
    for i in range(n_turns):
        x = open_time * (i + rng.uniform(0.1, 0.9)) / n_turns
        at = spans[-1][1]
        for a, b in spans:
            if x <= b - a:
                at = a + x
                break
            x -= b - a
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
