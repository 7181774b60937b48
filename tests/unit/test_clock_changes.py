"""The director through the clock changes, on a fake clock that moves in real time: station IDs
(and the AI disclosure that goes with them) keep their spacing in real minutes when the clocks go
back and when they go forward, and segments start and end at the instants the schedule's local
times name, in London and New York. Tokyo, which has no clock change, stays on the hour.

2026's clock changes: London goes forward at 01:00 on 29 March (01:00-02:00 does not exist) and
back at 02:00 on 25 October (01:00-02:00 happens twice); New York goes forward at 02:00 on
8 March (02:00-03:00 does not exist) and back at 02:00 on 1 November (01:00-02:00 twice).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from programme.director import Cue, CueKind, ProgramDirector, StationState, lineup_at
from programme.files import load_programme
from programme.model import Persona, Programme, Schedule, Segment, Slot, Station, StationIdRule
from tests.fakes.clock import FakeClock

ROOT = Path(__file__).resolve().parents[2]
IDLE = StationState()
TICK = timedelta(seconds=30)
HALF_HOUR = timedelta(minutes=30)

LONDON_SPRING = ("Europe/London", date(2026, 3, 29))
LONDON_AUTUMN = ("Europe/London", date(2026, 10, 25))
NEW_YORK_SPRING = ("America/New_York", date(2026, 3, 8))
NEW_YORK_AUTUMN = ("America/New_York", date(2026, 11, 1))
TOKYO_SPRING = ("Asia/Tokyo", date(2026, 3, 29))
TOKYO_AUTUMN = ("Asia/Tokyo", date(2026, 10, 25))


def local(zone: str, day: date, hour: int, minute: int = 0, *, fold: int = 0) -> datetime:
    """A station time as a UTC instant (`fold=1`: the second pass of a repeated hour)."""
    wall = datetime.combine(day, time(hour, minute), ZoneInfo(zone)).replace(fold=fold)
    return wall.astimezone(UTC)


def utc(when: datetime) -> datetime:
    # An aware time in a repeated or missing hour never compares equal to another zone's
    # (PEP 495): compare instants.
    return when.astimezone(UTC)


def english_in(zone: str) -> Programme:
    """The English example station (IDs at :00 and :30), moved to `zone`."""
    en = load_programme(ROOT / "prompts" / "examples" / "english")
    return replace(en, station=replace(en.station, timezone=zone))


def hourly(zone: str, split: int) -> Programme:
    """A segment an hour (`h00` … `h23`), hour `split` halved into `hNNa` and `hNNb`; IDs at
    :00 and :30; a waiting post is read at most every 15 minutes."""
    slots: list[Slot] = []
    for hour in range(24):
        start = hour * 60
        if hour == split:
            slots += [
                Slot(start, start + 30, f"h{hour:02d}a"),
                Slot(start + 30, start + 60, f"h{hour:02d}b"),
            ]
        else:
            slots.append(Slot(start, start + 60, f"h{hour:02d}"))
    segments = {
        s.segment: Segment(s.segment, s.segment, "calm", 60, ("Hi.",), "sometimes", "Talk.")
        for s in slots
    }
    station = Station(
        "Test FM", "en", zone, StationIdRule(30, "$station_name at $time."), "An AI hosts.", 1.5
    )
    schedule = Schedule((tuple(slots),) * 7, (0, 30))
    return Programme(station, Persona("", "Host."), segments, schedule)


def night(
    programme: Programme, start: datetime, end: datetime, state: StationState = IDLE
) -> list[tuple[datetime, Cue]]:
    """Every cue other than CONTINUE the host aired from `start` to `end` (UTC instants),
    asking every 30 seconds of real time and acting on each cue until there is nothing new."""
    clock = FakeClock(start)
    director = ProgramDirector(programme, clock)
    aired: list[tuple[datetime, Cue]] = []
    while clock() < end:
        for _ in range(5):
            cue = director.cue(state)
            director.aired(cue)
            if cue.kind is CueKind.CONTINUE:
                break
            aired.append((clock(), cue))
        clock.advance(TICK)
    return aired


def time_call(cue: Cue) -> str:
    match = re.search(r"The time is (\d\d:\d\d)", cue.fallback[0])
    assert match, cue.fallback
    return match.group(1)


# The time calls from 00:00 to 04:00 station time: every half hour of real time has its ID.
ID_CALLS = {
    # Back: 01:00-02:00 London time happens twice, so it is identified twice.
    LONDON_AUTUMN: "00:00 00:30 01:00 01:30 01:00 01:30 02:00 02:30 03:00 03:30",
    NEW_YORK_AUTUMN: "00:00 00:30 01:00 01:30 01:00 01:30 02:00 02:30 03:00 03:30",
    # Forward: the missing hour has no minutes to identify; the next ID is the first after.
    LONDON_SPRING: "00:00 00:30 02:00 02:30 03:00 03:30",
    NEW_YORK_SPRING: "00:00 00:30 01:00 01:30 03:00 03:30",
    TOKYO_AUTUMN: "00:00 00:30 01:00 01:30 02:00 02:30 03:00 03:30",
    TOKYO_SPRING: "00:00 00:30 01:00 01:30 02:00 02:30 03:00 03:30",
}


@pytest.mark.parametrize(("zone", "day"), list(ID_CALLS), ids=str)
def test_station_ids_keep_their_spacing_through_the_clock_change(zone: str, day: date) -> None:
    """No 90-minute silence when the clocks go back, no burst when they go forward: an ID (with
    the AI disclosure) every 30 minutes of real time, its time call in station time."""
    start, end = local(zone, day, 0), local(zone, day, 4)
    aired = night(english_in(zone), start - timedelta(hours=1), end)
    ids = [(when, cue) for when, cue in aired if when >= start and cue.kind is CueKind.STATION_ID]

    assert " ".join(time_call(cue) for _, cue in ids) == ID_CALLS[zone, day]
    assert [when for when, _ in ids] == [start + i * HALF_HOUR for i in range(len(ids))]
    disclosure = "Everything you hear on this station is hosted by an AI."
    assert all(disclosure in cue.fallback[0] for _, cue in ids)
    assert all(cue.id_minute is not None and utc(cue.id_minute) == when for when, cue in ids)


@pytest.mark.parametrize(("zone", "day"), [LONDON_AUTUMN, NEW_YORK_AUTUMN], ids=str)
def test_a_call_across_the_clocks_going_back_does_not_swallow_the_id(zone: str, day: date) -> None:
    """A caller holds the floor from the first 01:30 to ten past the second 01:00: the second
    01:00 is a new ID, not the first one again, so the disclosure airs when the call ends."""
    programme = english_in(zone)
    first = local(zone, day, 1, 30)
    clock = FakeClock(first - timedelta(minutes=10))
    director = ProgramDirector(programme, clock)
    for _ in range(4):
        director.aired(director.cue(IDLE))
    clock.set(first)
    assert director.cue(IDLE).kind is CueKind.STATION_ID
    director.aired(director.cue(IDLE))
    clock.advance(minutes=1)
    assert director.cue(StationState(floor_held=True)).held is None
    clock.set(local(zone, day, 1, 0, fold=1))
    assert director.cue(StationState(floor_held=True)).held is CueKind.STATION_ID
    clock.set(local(zone, day, 1, 10, fold=1))  # the call ends, 40 real minutes on
    cue = director.cue(IDLE)
    assert cue.kind is CueKind.STATION_ID and time_call(cue) == "01:10"
    assert cue.id_minute is not None and utc(cue.id_minute) == local(zone, day, 1, 0, fold=1)


# The segments introduced from 00:00 to 04:00 station time, with the real minutes after 00:00
# at which each came on. The split hour is the one the clocks change in.
CHANGES = {
    # Back: each segment edge happens once, the first time the clock reads it; the second pass
    # of the repeated hour carries on with what is on (h01b runs 90 real minutes), and nothing
    # comes back for a second introduction.
    (*LONDON_AUTUMN, 1): [("h00", 0), ("h01a", 60), ("h01b", 90), ("h02", 180), ("h03", 240)],
    (*NEW_YORK_AUTUMN, 1): [("h00", 0), ("h01a", 60), ("h01b", 90), ("h02", 180), ("h03", 240)],
    # Forward: the slots of the missing hour never air; the segment after them starts at the
    # jump (02:00 BST, 03:00 EDT).
    (*LONDON_SPRING, 1): [("h00", 0), ("h02", 60), ("h03", 120)],
    (*NEW_YORK_SPRING, 2): [("h00", 0), ("h01", 60), ("h03", 120)],
    (*TOKYO_AUTUMN, 1): [("h00", 0), ("h01a", 60), ("h01b", 90), ("h02", 120), ("h03", 180)],
}


@pytest.mark.parametrize(("zone", "day", "split"), list(CHANGES), ids=str)
def test_segments_change_once_each_at_the_right_instant(zone: str, day: date, split: int) -> None:
    start = local(zone, day, 0)
    aired = night(hourly(zone, split), start - timedelta(hours=1), local(zone, day, 4))
    intros = [
        (cue.segment.id, (when - start) // timedelta(minutes=1))
        for when, cue in aired
        if when >= start and (cue.kind is CueKind.INTRODUCE or cue.opens)
    ]
    assert intros == CHANGES[zone, day, split]


def test_the_run_through_the_repeated_hour_ends_at_the_second_pass() -> None:
    zone, day = LONDON_AUTUMN
    programme = hourly(zone, 1)
    second = lineup_at(programme, local(zone, day, 1, 15, fold=1))
    assert second.current.segment.id == "h01b"
    assert utc(second.current.starts) == local(zone, day, 1, 30)  # the first pass
    assert utc(second.current.ends) == local(zone, day, 2)  # the second pass's end: 02:00 GMT
    assert second.next.segment.id == "h02"
    assert f"{second.at:%H:%M %Z}" == "01:15 GMT"
    assert f"{second.current.starts:%H:%M %Z}" == "01:30 BST"


@pytest.mark.parametrize(
    ("zone", "day", "jump"), [(*LONDON_SPRING, 2), (*NEW_YORK_SPRING, 3)], ids=str
)
def test_up_next_skips_the_slots_of_the_missing_hour(zone: str, day: date, jump: int) -> None:
    """Half an hour before the clocks go forward, "up next" is what will really air, when the
    clock will read it: not the slot of the hour that does not exist."""
    split = jump - 1
    programme = hourly(zone, split)
    lineup = lineup_at(programme, local(zone, day, split - 1, 30))
    assert utc(lineup.current.ends) == local(zone, day, jump)
    assert f"{lineup.current.ends:%H:%M}" == f"{jump:02d}:00"
    assert lineup.next.segment.id == f"h{jump:02d}"
    assert f"{lineup.next.starts:%H:%M}" == f"{jump:02d}:00"
    clock = FakeClock(local(zone, day, split - 1, 30))
    director = ProgramDirector(programme, clock)
    assert f"Up next at {jump:02d}:00: h{jump:02d}." in director.instructions(IDLE)


@pytest.mark.parametrize(("zone", "day"), [LONDON_AUTUMN, NEW_YORK_AUTUMN], ids=str)
def test_posts_keep_their_spacing_in_real_minutes(zone: str, day: date) -> None:
    """A post every 15 real minutes through the repeated hour, not an hour's wait."""
    start = local(zone, day, 0)
    aired = night(hourly(zone, 1), start, local(zone, day, 4), StationState(posts_waiting=3))
    posts = [when for when, cue in aired if cue.kind is CueKind.READ_POST]
    gaps = {b - a for a, b in itertools.pairwise(posts)}
    assert gaps == {timedelta(minutes=15)}


@pytest.mark.parametrize(
    ("zone", "day", "at", "event"),
    [
        # 01:45 BST: the next ID is the second 01:00 (GMT), 15 minutes on, not 02:00 GMT.
        (*LONDON_AUTUMN, (1, 45, 0), (1, 0, 1)),
        (*LONDON_AUTUMN, (1, 45, 1), (2, 0, 0)),
        (*NEW_YORK_AUTUMN, (1, 45, 0), (1, 0, 1)),
        (*LONDON_SPRING, (0, 45, 0), (2, 0, 0)),
        (*NEW_YORK_SPRING, (1, 45, 0), (3, 0, 0)),
    ],
    ids=str,
)
def test_no_track_runs_past_the_next_id_across_the_clock_change(
    zone: str, day: date, at: tuple[int, int, int], event: tuple[int, int, int]
) -> None:
    clock = FakeClock(local(zone, day, at[0], at[1], fold=at[2]))
    director = ProgramDirector(english_in(zone), clock)
    assert utc(director.next_event()) == local(zone, day, event[0], event[1], fold=event[2])


def test_the_fake_clock_moves_in_real_time_in_a_zone_with_clock_changes() -> None:
    london = ZoneInfo("Europe/London")
    clock = FakeClock(datetime(2026, 10, 25, 1, 30, tzinfo=london))  # 01:30 BST
    assert f"{clock.advance(minutes=30):%H:%M %Z}" == "01:00 GMT"
    assert f"{clock.advance(minutes=60):%H:%M %Z}" == "02:00 GMT"
    assert clock.monotonic() == 5400
