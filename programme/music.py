"""The music planner: whether the next item is talk or a piece of music, and which piece.

A segment's `music:` front matter says how much of it is music and of what kind; the planner
turns that into a running order one item at a time. It keeps each segment near its share (over
the segment's run, not per item), never plans a piece that would run past the next fixed-time
event (a station ID, the segment's end) when a shorter one fits, and never repeats a file within
`repeat_window`. It picks the least recently aired piece that fits, so a small library rotates.

It also decides how the host brings a track in (`introduction`): over the track's intro when
the producers gave its length (the line starts just after the music and must end before the
vocals), else in a short line before it starts; and it remembers the tracks that aired since the
last talk break, so that break can name them (the back-announce).

Pure: the station clock is injected and what aired is reported to it; no files, no LiveKit.
The on-air loop asks `next_item` whenever the air is free and reports back what it aired.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from programme.media import MediaItem, MediaLibrary, music_line
from programme.model import MUSIC_KINDS, Problem, Programme, Segment
from programme.reader import Problems

Clock = Callable[[], datetime]

REPEAT_WINDOW = timedelta(minutes=15)
# A talk shorter than this before a fixed event is better spent on a jingle, when one fits.
_SHORT_GAP_S = 15.0
# Talking over an intro: the voice comes in this far into the track (the listener hears the
# music come up first) and is asked to end this long before the vocals.
LEAD_IN_S = 1.0
INTRO_MARGIN_S = 1.0
# The shortest line worth starting over an intro; a shorter intro is introduced before the track.
SHORTEST_TALK_OVER_S = 2.0
# A line still running this long after the intro's end is cut: the host never talks over the
# vocals for long (the track itself is never cut, and stays ducked while the voice lasts).
OVERRUN_S = 2.5
# A talk-up before a track whose intro is unknown: one short sentence.
TALK_UP_S = 6.0
# A back-announce names at most this many tracks (the latest of a longer run).
BACK_ANNOUNCE_MAX = 3
# A track cut this early (a caller pressed at once) is not worth naming afterwards.
_NAMED_AFTER_S = 1.0


@dataclass(frozen=True)
class Talk:
    """The host talks, for about `seconds` (the segment's target length, or up to the event)."""

    seconds: float
    reason: str


@dataclass(frozen=True)
class Play:
    """Air this file. The host may talk over its first `talk_over` seconds (its intro)."""

    item: MediaItem
    reason: str

    @property
    def talk_over(self) -> float:
        return self.item.intro


@dataclass(frozen=True)
class Introduction:
    """How the host brings a track in.

    Over its intro (`over`): the track starts, the host's line starts `lead_in` seconds into it,
    is asked to last at most `seconds`, and is cut if it still runs at `cut_at` seconds into the
    track. Before it (`over` False): a line of about `seconds`, then the track.
    """

    over: bool
    seconds: float
    lead_in: float = 0.0
    cut_at: float = 0.0


def introduction(item: MediaItem) -> Introduction | None:
    """How `item` is brought in; None for what is not a track (jingles, idents, beds)."""
    if item.kind != "track":
        return None
    room = item.intro - LEAD_IN_S - INTRO_MARGIN_S
    if item.intro > 0 and room >= SHORTEST_TALK_OVER_S:
        return Introduction(True, room, LEAD_IN_S, item.intro + OVERRUN_S)
    return Introduction(False, TALK_UP_S)


@dataclass(frozen=True)
class Played:
    name: str  # MediaItem.name
    at: datetime


@dataclass(frozen=True)
class Airing:
    """What has aired in the run of the segment on air, and which files aired lately."""

    segment: str | None = None
    talk_seconds: float = 0.0
    music_seconds: float = 0.0  # tracks and jingles
    other_seconds: float = 0.0  # idents and anything else that is neither
    recent: tuple[Played, ...] = ()  # oldest first, across segments

    @property
    def total_seconds(self) -> float:
        return self.talk_seconds + self.music_seconds + self.other_seconds

    @property
    def music_share(self) -> float:
        return self.music_seconds / self.total_seconds if self.total_seconds else 0.0

    def last_played(self, name: str) -> datetime | None:
        for played in reversed(self.recent):
            if played.name == name:
                return played.at
        return None


def plan(
    now: datetime,
    segment: Segment,
    library: MediaLibrary,
    airing: Airing,
    until: datetime | None = None,
    *,
    repeat_window: timedelta = REPEAT_WINDOW,
    rng: random.Random | None = None,
) -> Talk | Play:
    """The next item for `segment`, at `now`, with the next fixed-time event at `until`."""
    policy = segment.music
    room = (until - now).total_seconds() if until is not None else float("inf")
    talk = Talk(max(0.0, min(float(segment.target_length), room)), "talk")
    pieces = library.music_for(segment.id, policy)
    if policy.share <= 0 or not pieces:
        return Talk(talk.seconds, "the segment has no music")
    fresh = [p for p in pieces if not _recent(airing, p, now, repeat_window)]
    if not fresh:
        return Talk(talk.seconds, "every piece for the segment aired within the repeat window")
    fitting = [p for p in fresh if p.duration <= room]
    tracks = [p for p in fitting if p.kind == "track"]
    jingles = [p for p in fitting if p.kind == "jingle"]
    last = airing.recent[-1].name if airing.recent else None
    if room < _SHORT_GAP_S and jingles and last not in {j.name for j in jingles}:
        return Play(_least_recent(jingles, airing, rng), "a jingle fills the gap before the event")
    if not tracks:
        if any(p.kind == "track" for p in fresh):
            return Talk(talk.seconds, "no piece fits before the next fixed event")
        return Talk(talk.seconds, "every piece for the segment aired within the repeat window")
    pick = _least_recent(tracks, airing, rng)
    if _music_due(airing, policy.share, pick.duration, talk.seconds):
        return Play(pick, "music is due for the segment's share")
    return Talk(talk.seconds, "talk is due for the segment's share")


def _music_due(airing: Airing, share: float, music_s: float, talk_s: float) -> bool:
    """Whichever item leaves the segment's music share nearer its target."""
    total, music = airing.total_seconds, airing.music_seconds
    with_music = (music + music_s) / (total + music_s)
    with_talk = music / (total + talk_s) if total + talk_s > 0 else 0.0
    return abs(with_music - share) < abs(with_talk - share)


def _recent(airing: Airing, item: MediaItem, now: datetime, window: timedelta) -> bool:
    at = airing.last_played(item.name)
    return at is not None and now - at < window


def _least_recent(
    items: Sequence[MediaItem], airing: Airing, rng: random.Random | None
) -> MediaItem:
    """Never aired first, then the longest ago; ties broken by `rng` (or by name)."""
    order = sorted(items, key=lambda i: i.name)
    if rng is not None:
        rng.shuffle(order)

    def key(item: MediaItem) -> float:
        at = airing.last_played(item.name)
        return float("-inf") if at is None else at.timestamp()

    return min(order, key=key)


class MusicPlanner:
    """`plan` with its memory: what aired in the segment on air and which files aired lately.

    Report every item that aired (`aired_talk`, `aired`); a new segment id starts a new run
    (the director joins the slots of one segment, even across midnight, into one run).
    """

    def __init__(
        self,
        library: MediaLibrary,
        clock: Clock,
        *,
        repeat_window: timedelta = REPEAT_WINDOW,
        seed: int | None = None,
    ) -> None:
        self.library = library
        self.repeat_window = repeat_window
        self._clock = clock
        self._rng = random.Random(seed) if seed is not None else random.Random()
        self._segment: str | None = None
        self._talk = self._music = self._other = 0.0
        self._recent: deque[Played] = deque()
        self._unannounced: deque[MediaItem] = deque(maxlen=BACK_ANNOUNCE_MAX)

    def replace_library(self, library: MediaLibrary) -> None:
        self.library = library

    @property
    def airing(self) -> Airing:
        self._forget(self._clock())
        return Airing(self._segment, self._talk, self._music, self._other, tuple(self._recent))

    def next_item(self, segment: Segment, until: datetime | None = None) -> Talk | Play:
        self._enter(segment.id)
        return plan(
            self._clock(),
            segment,
            self.library,
            self.airing,
            until,
            repeat_window=self.repeat_window,
            rng=self._rng,
        )

    def aired_talk(self, segment_id: str, seconds: float) -> None:
        self._enter(segment_id)
        self._talk += max(0.0, seconds)

    def aired(
        self, segment_id: str, item: MediaItem, started: datetime, seconds: float | None = None
    ) -> None:
        """`seconds` is how long it really aired (a caller may have cut it); default: all."""
        self._enter(segment_id)
        aired_s = item.duration if seconds is None else max(0.0, seconds)
        if item.kind in MUSIC_KINDS:
            self._music += aired_s
        else:
            self._other += aired_s
        self._recent.append(Played(item.name, started))
        if item.kind == "track" and aired_s >= _NAMED_AFTER_S:
            self._unannounced.append(item)

    def unannounced(self) -> tuple[MediaItem, ...]:
        """The tracks aired since the last back-announce, oldest first (the latest few)."""
        return tuple(self._unannounced)

    def announced(self) -> None:
        """A talk break named what played: the next one starts a new list."""
        self._unannounced.clear()

    def ident(self, segment: Segment) -> MediaItem | None:
        """An ident for the station ID: one with the segment's moods first, least recent."""
        idents = [i for i in self.library.of_kind("ident") if i.suits(segment.id)]
        moody = [i for i in idents if i.suits(segment.id, segment.music.moods)]
        choice = moody or idents
        return _least_recent(choice, self.airing, None) if choice else None

    def bed(self, segment: Segment) -> MediaItem | None:
        """The bed under the talk, when the segment asks for one."""
        if not segment.music.bed:
            return None
        beds = self.library.beds_for(segment.id, segment.music)
        return beds[0] if beds else None

    def _enter(self, segment_id: str) -> None:
        if segment_id != self._segment:
            self._segment = segment_id
            self._talk = self._music = self._other = 0.0

    def _forget(self, now: datetime) -> None:
        # Keep more than the window: least-recent picks still need to know older plays.
        keep = max(self.repeat_window * 4, timedelta(hours=2))
        while self._recent and now - self._recent[0].at > keep:
            self._recent.popleft()


def capacity_problems(
    programme: Programme,
    library: MediaLibrary,
    repeat_window: timedelta = REPEAT_WINDOW,
    root: Path | None = None,
) -> list[Problem]:
    """Segments that ask for more music than their pieces can give without repeating a file
    within the repeat window: they would air less music than asked."""
    problems = Problems()
    window_s = repeat_window.total_seconds()
    for sid, segment in sorted(programme.segments.items()):
        share = segment.music.share
        pieces = library.music_for(sid, segment.music)
        have = sum(p.duration for p in pieces)
        if share > 0 and pieces and have < share * window_s:
            problems.add(
                f"segments/{sid}.md",
                music_line(root, sid),
                f"music share {share:g} needs {share * window_s / 60:.1f} min of different music "
                f"every {window_s / 60:g} min, but the pieces it may play last "
                f"{have / 60:.1f} min",
                "add tracks with the segment's moods, widen its moods, or lower its share",
            )
    return list(problems)
