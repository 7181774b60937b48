"""The programme as pages see it: what is on now and next and the rest of today, in the station's
language and time zone.

Now/next comes from the same director the host follows (`lineup_at` over the producers'
`prompts/`), re-read when a file there changes. The routes (this schedule, and the host's report
on the prompt files) are in `api/routes/programme.py`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from pydantic import BaseModel

from programme.director import Lineup, Slot, lineup_at
from programme.files import load_programme
from programme.model import Programme, PromptError


class _Cached:
    """The last programme read from a folder, kept until a file in it changes."""

    def __init__(self) -> None:
        self.key: tuple[str, tuple[tuple[str, int], ...]] | None = None
        self.value: Programme | PromptError | None = None

    def get(self, folder: str) -> Programme:
        root = Path(folder)
        stamp = (
            tuple(sorted((str(p), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()))
            if root.is_dir()
            else ()
        )
        key = (str(root.resolve()), stamp)
        if key != self.key:
            try:
                self.value = load_programme(root)
            except PromptError as exc:
                self.value = exc
            self.key = key
        if isinstance(self.value, PromptError) or self.value is None:
            raise self.value or PromptError([])
        return self.value


_programmes = _Cached()


class SlotOut(BaseModel):
    segment: str
    title: str
    style: str
    starts: datetime
    ends: datetime
    listener_corner: bool


class TodayOut(BaseModel):
    segment: str
    title: str
    starts: datetime
    ends: datetime


class ScheduleOut(BaseModel):
    station: str
    language: str  # the station's language (station.yaml), e.g. "ja" or "en"
    timezone: str
    at: datetime
    now: SlotOut
    next: SlotOut
    # From the run on air now to the last run that starts before midnight, station time; the
    # last may end tomorrow (runs of one segment join across midnight).
    today: list[TodayOut]


def _slot(run: Slot) -> SlotOut:
    seg = run.segment
    return SlotOut(
        segment=seg.id,
        title=seg.title,
        style=seg.style,
        starts=run.starts,
        ends=run.ends,
        listener_corner=seg.listener_corner,
    )


def _rest_of_today(programme: Programme, lineup: Lineup) -> list[TodayOut]:
    midnight = datetime.combine(lineup.at.date() + timedelta(days=1), time(), lineup.at.tzinfo)
    today, run = [], lineup.current
    # Each run ends later than it starts, and a day has at most 1440 one-minute slots.
    for _ in range(1440):
        seg = run.segment
        today.append(TodayOut(segment=seg.id, title=seg.title, starts=run.starts, ends=run.ends))
        if run.ends >= midnight:
            break
        run = lineup_at(programme, run.ends).current
    return today


def schedule_at(folder: str | os.PathLike[str], clock: Callable[[], datetime]) -> ScheduleOut:
    programme = _programmes.get(str(folder))
    lineup = lineup_at(programme, clock())
    return ScheduleOut(
        station=programme.station.name,
        language=programme.station.language,
        timezone=programme.station.timezone,
        at=lineup.at,
        now=_slot(lineup.current),
        next=_slot(lineup.next),
        today=_rest_of_today(programme, lineup),
    )


class ScheduleUnavailable(Exception):
    """The producers' prompt files do not load; `problems` says where and why."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("the prompt files do not load")
        self.problems = problems


def schedule_now(folder: str | os.PathLike[str]) -> ScheduleOut:
    """`schedule_at` the wall clock's now; `ScheduleUnavailable` when the files do not load."""
    try:
        return schedule_at(folder, lambda: datetime.now(UTC))
    except PromptError as exc:
        raise ScheduleUnavailable([str(p) for p in exc.problems]) from None
