"""The programme as the producers' files describe it: frozen shapes and the words they may use.

`files.load_programme` builds these from a prompts folder (see `prompts/README.md`); everything
else (the director, the music planner, the API's now/next) reads them and never the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from types import MappingProxyType
from zoneinfo import ZoneInfo

STATION_FILE = "station.yaml"
PERSONA_FILE = "host.md"
SCHEDULE_FILE = "schedule.yaml"
SEGMENTS_DIR = "segments"

# Every `$name` a producer may write. Anything else is refused by `check`, so `render` never
# meets a name it cannot fill.
PLACEHOLDERS: Mapping[str, str] = MappingProxyType(
    {
        "station_name": "the station's name from station.yaml",
        "host_name": "the host's name from host.md",
        "time": "the station's local time, HH:MM",
        "date": "the station's local date, YYYY-MM-DD",
        "weekday": "the day of the week, in the station's language",
        "segment": "the title of the segment on air",
        "next_segment": "the title of the segment that comes next",
        "next_time": "when the next segment starts, HH:MM",
        "listener_count": "how many listeners are tuned in",
        "posts_waiting": "how many listener posts are queued",
    }
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
# Day keys in schedule.yaml, least specific first: a day takes the most specific list it has.
DAY_GROUPS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "every_day": tuple(range(7)),
        "weekdays": (0, 1, 2, 3, 4),
        "weekend": (5, 6),
        **{name: (i,) for i, name in enumerate(WEEKDAYS)},
    }
)
POST_POLICIES = ("first", "sometimes", "never")
RECURRING_KINDS = ("station_id",)
# What a media file is for: a track airs as music, a jingle between items, a bed under the talk,
# an ident with the station ID. Segments may ask for tracks and jingles as their music.
MEDIA_KINDS = ("track", "jingle", "bed", "ident")
MUSIC_KINDS = ("track", "jingle")
DAY_MINUTES = 24 * 60
# The languages the offline voice speaks (agent/voice/offline_engines.py: OpenJTalk for ja,
# espeak-ng for en). A station in any other language would have no voice when the model is
# away, so the station file is refused.
SPOKEN_LANGUAGES = ("ja", "en")
# A prepared file lives in memory (48 kHz float32: 11.5 MB a minute); longer is a mistake.
LONGEST_SECONDS = 30 * 60


@dataclass(frozen=True)
class Problem:
    """One thing wrong in the prompts folder; `file` is relative to the folder."""

    file: str
    line: int
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.message} — {self.fix}"


class PromptError(Exception):
    """The folder cannot go on air; `problems` lists every reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass(frozen=True)
class StationIdRule:
    every_minutes: int
    line: str  # template: the ID and time call the offline voice reads


@dataclass(frozen=True)
class Station:
    name: str
    language: str
    timezone: str
    station_id: StationIdRule
    ai_disclosure: str  # template: said with every station ID
    silence_gap_seconds: float
    media: str = ""  # the media folder, relative to the prompts folder; "" = no music
    loudness_target_lufs: float = -16.0  # integrated loudness of everything on air
    true_peak_dbtp: float = -1.0  # the ceiling no sample or inter-sample peak may pass

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True)
class Persona:
    name: str
    instructions: str  # template: persona and standing rules


@dataclass(frozen=True)
class MusicPolicy:
    """How much of a segment is music, and which: from its `music:` front matter."""

    share: float = 0.0  # of the segment's air time, 0 (talk only) to 1
    kinds: tuple[str, ...] = ("track",)  # of MUSIC_KINDS
    moods: tuple[str, ...] = ()  # only files with one of these moods; () = any
    bed: bool = False  # a bed under the talk


@dataclass(frozen=True)
class Segment:
    id: str  # the file name without `.md`, as the schedule names it
    title: str
    style: str
    target_length: int  # seconds per talk
    fallback: tuple[str, ...]  # templates the offline voice can read
    posts: str  # "first" (listener corner), "sometimes" or "never"
    instructions: str  # template: the file's body
    music: MusicPolicy = MusicPolicy()

    @property
    def listener_corner(self) -> bool:
        return self.posts == "first"


@dataclass(frozen=True)
class Slot:
    start: int  # minutes after midnight
    end: int  # minutes after midnight, up to 1440
    segment: str

    def covers(self, minute: int) -> bool:
        return self.start <= minute < self.end


@dataclass(frozen=True)
class Schedule:
    days: tuple[tuple[Slot, ...], ...]  # Monday first; each day covers 00:00-24:00 in order
    station_id_minutes: tuple[int, ...]  # minutes past every hour

    def slot_index(self, weekday: int, minute: int) -> int:
        for i, slot in enumerate(self.days[weekday]):
            if slot.covers(minute):
                return i
        raise ValueError(f"no slot at minute {minute} on day {weekday}")  # validated away


@dataclass(frozen=True)
class Programme:
    station: Station
    persona: Persona
    segments: Mapping[str, Segment]
    schedule: Schedule


def render(template_text: str, **values: object) -> str:
    """Fill `$name` placeholders; `$$` is a literal dollar sign."""
    return Template(template_text).safe_substitute({k: str(v) for k, v in values.items()})
