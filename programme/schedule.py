"""schedule.yaml: the day's clock of segments and the minutes of the station IDs, checked.

Every day of the week must be covered 00:00-24:00 by slots that neither overlap nor leave a gap,
each naming a segment that exists; station IDs must come at least as often as station.yaml
asks. Problems name the file's line and the fix.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from programme.model import (
    DAY_GROUPS,
    DAY_MINUTES,
    RECURRING_KINDS,
    SCHEDULE_FILE,
    WEEKDAYS,
    Schedule,
    Slot,
    Station,
)
from programme.reader import Map, Problems, Seq, parse_yaml, read_text, unknown_keys

_TIME = re.compile(r"(\d{1,2}):(\d{2})")


def _minutes(value: Any) -> int | None:
    match = _TIME.fullmatch(str(value).strip()) if isinstance(value, str) else None
    if not match:
        return None
    hours, minutes = int(match.group(1)), int(match.group(2))
    if minutes > 59 or hours > 24 or (hours == 24 and minutes):
        return None
    return hours * 60 + minutes


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def read_schedule(
    root: Path, segments: set[str], station: Station | None, problems: Problems
) -> Schedule | None:
    file = SCHEDULE_FILE
    if not (root / file).is_file():
        problems.add(
            file, 1, "the schedule is missing", "create schedule.yaml with clock: and recurring:"
        )
        return None
    text = read_text(root, file, problems)
    if text is None:
        return None
    data = parse_yaml(text, file, problems)
    if data is None:
        return None
    if not isinstance(data, Map):
        problems.add(file, 1, "the schedule must be 'key: value' lines", "see prompts/README.md")
        return None
    before = len(problems)
    unknown_keys(data, ("clock", "recurring"), file, problems)
    clock = data.get("clock")
    if not isinstance(clock, Map):
        problems.add(
            file,
            data.line_of("clock"),
            "'clock' must list the day's slots",
            "write clock: with every_day: (and weekday overrides) under it",
        )
        return None
    unknown_keys(clock, tuple(DAY_GROUPS), file, problems)
    lists: dict[str, tuple[Slot, ...]] = {}
    for key in DAY_GROUPS:
        if key in clock:
            slots = _read_day(clock[key], key, clock.line_of(key), segments, file, problems)
            if slots is not None:
                lists[key] = slots
    days: list[tuple[Slot, ...]] = []
    for weekday, name in enumerate(WEEKDAYS):
        keys = [k for k, covered in DAY_GROUPS.items() if weekday in covered and k in clock]
        if not keys:
            problems.add(
                file,
                clock.line,
                f"{name} has no schedule: hours 00:00-24:00 are missing",
                f"add every_day: or {name}: under clock:",
            )
            continue
        days.append(lists.get(keys[-1], ()))
    minutes = _read_recurring(data, file, problems)
    if station is None or minutes is None:
        return None
    every = station.station_id.every_minutes
    _check_id_gaps(minutes, every, data, file, problems)
    if len(problems) > before:
        return None
    # No station_id item in the schedule: identify every `every_minutes` from the hour.
    return Schedule(tuple(days), minutes or tuple(range(0, 60, every)))


def _read_day(
    value: Any,
    day: str,
    day_line: int,
    segments: set[str],
    file: str,
    problems: Problems,
) -> tuple[Slot, ...] | None:
    item_fix = 'write - { from: "05:00", to: "09:00", segment: morning }'
    if not isinstance(value, Seq) or not value:
        problems.add(file, day_line, f"'{day}' must list its slots", item_fix)
        return None
    before = len(problems)
    timed = True  # coverage can only be judged when every slot has good times
    slots: list[tuple[Slot, int]] = []
    for item, line in zip(value, value.lines, strict=True):
        if not isinstance(item, Map):
            problems.add(file, line, f"a slot in '{day}' must have from, to and segment", item_fix)
            timed = False
            continue
        unknown_keys(item, ("from", "to", "segment"), file, problems)
        start, end = _minutes(item.get("from")), _minutes(item.get("to"))
        for key, minute in (("from", start), ("to", end)):
            if minute is None:
                problems.add(
                    file,
                    line,
                    f"bad time {key}: {item.get(key)!r} in '{day}'",
                    'write the time as "HH:MM" from "00:00" to "24:00", such as "05:30"',
                )
        name = item.get("segment")
        if not isinstance(name, str) or not name:
            problems.add(file, line, f"a slot in '{day}' names no segment", item_fix)
        elif name not in segments:
            known = ", ".join(sorted(segments)) or "none yet"
            problems.add(
                file,
                line,
                f"segment '{name}' is not defined",
                f"create segments/{name}.md or use one of: {known}",
            )
        if start is None or end is None:
            timed = False
            continue
        if start == DAY_MINUTES:
            problems.add(file, line, f"a slot in '{day}' starts at 24:00", "start it at 00:00")
            timed = False
        elif end <= start:
            problems.add(
                file,
                line,
                f"{_clock(start)}-{_clock(end)} in '{day}' ends before it starts",
                "a slot cannot cross midnight: end it at 24:00 and start the next at 00:00",
            )
            timed = False
        else:
            slots.append((Slot(start, end, str(name)), line))
    if not timed:
        return None
    slots.sort(key=lambda s: s[0].start)
    reached, reached_line = 0, day_line
    for slot, line in slots:
        if slot.start < reached:
            problems.add(
                file,
                line,
                f"{_clock(slot.start)}-{_clock(slot.end)} in '{day}' overlaps the slot on "
                f"line {reached_line}",
                "make each slot start where the one before it ends",
            )
        elif slot.start > reached:
            problems.add(
                file,
                line,
                f"nothing is scheduled {_clock(reached)}-{_clock(slot.start)} in '{day}'",
                "extend the slot before it or add a slot for those hours",
            )
        if slot.end > reached:
            reached, reached_line = slot.end, line
    if reached < DAY_MINUTES:
        problems.add(
            file,
            reached_line,
            f"nothing is scheduled {_clock(reached)}-24:00 in '{day}'",
            'end the last slot at "24:00"',
        )
    if len(problems) > before:
        return None
    return tuple(s for s, _ in slots)


def _read_recurring(data: Map, file: str, problems: Problems) -> tuple[int, ...] | None:
    items = data.get("recurring")
    fix = "write - { do: station_id, minutes: [0, 30] }"
    if items is None:
        return ()
    if not isinstance(items, Seq):
        problems.add(file, data.line_of("recurring"), "'recurring' must be a list", fix)
        return None
    minutes: set[int] = set()
    ok = True
    for item, line in zip(items, items.lines, strict=True):
        if not isinstance(item, Map):
            problems.add(file, line, "a recurring item must have do and minutes", fix)
            ok = False
            continue
        unknown_keys(item, ("do", "minutes"), file, problems)
        kind = item.get("do")
        if kind not in RECURRING_KINDS:
            problems.add(
                file,
                line,
                f"unknown recurring item {kind!r}",
                f"use do: {' or '.join(RECURRING_KINDS)}",
            )
            ok = False
        values = item.get("minutes")
        values = values if isinstance(values, list) else [values]
        for m in values:
            if isinstance(m, bool) or not isinstance(m, int) or not 0 <= m <= 59:
                problems.add(
                    file,
                    line,
                    f"bad minute {m!r} in a recurring item",
                    "write minutes past the hour from 0 to 59, such as minutes: [0, 30]",
                )
                ok = False
            else:
                minutes.add(m)
    return tuple(sorted(minutes)) if ok else None


def _check_id_gaps(
    minutes: tuple[int, ...], every: int, data: Map, file: str, problems: Problems
) -> None:
    if not minutes:
        return
    gaps = [(b - a) % 60 or 60 for a, b in zip(minutes, (*minutes[1:], minutes[0]), strict=True)]
    if max(gaps) > every:
        problems.add(
            file,
            data.line_of("recurring"),
            f"station IDs are up to {max(gaps)} minutes apart, but station.yaml asks for one "
            f"every {every} minutes",
            "add station_id minutes, or raise station_id every_minutes in station.yaml",
        )
