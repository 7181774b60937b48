"""The producers' prompt files, read and checked.

Producers shape the station by editing `prompts/` (see `prompts/README.md`), never Python. This
module turns that folder into frozen dataclasses, or into a list of every problem found, each
naming the file, the line and the fix, so a broken edit is refused with a message a producer can
act on and the last good programme stays on air. It does file reading and nothing else: no
LiveKit, no database, no clock.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from string import Template
from types import MappingProxyType
from typing import Any, TextIO
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

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


def load_programme(path: str | os.PathLike[str]) -> Programme:
    """Read and validate a prompts folder; raise `PromptError` listing every problem."""
    programme, problems = _read(Path(path))
    if problems or programme is None:
        raise PromptError(problems)
    return programme


def check(path: str | os.PathLike[str]) -> list[Problem]:
    """Every problem in a prompts folder; empty when it can go on air."""
    return _read(Path(path))[1]


def check_main(argv: list[str], out: TextIO | None = None) -> int:
    """`radio24 prompts check [DIR]`: print each problem as `file:line: message — fix`."""
    out = out or sys.stdout
    root = Path(argv[0] if argv else os.environ.get("RADIO_PROMPTS_DIR", "prompts"))
    programme, problems = _read(root)
    if problems or programme is None:
        for p in problems:
            out.write(f"{root / p.file}:{p.line}: {p.message} — {p.fix}\n")
        out.write(f"{len(problems)} problem(s) in {root}\n")
        return 1
    out.write(
        f"{root}: OK — {programme.station.name}, {len(programme.segments)} segments, "
        f"timezone {programme.station.timezone}\n"
    )
    return _check_media(root, programme, out)


def _check_media(root: Path, programme: Programme, out: TextIO) -> int:
    """Bad media is reported here but never keeps the programme off air: it is skipped."""
    if not programme.station.media:
        return 0
    # Media means audio libraries; the programme itself never needs them.
    from agent import media, music

    library = media.load_library(root, programme)
    problems = [*library.problems, *media.music_problems(programme, library, root)]
    for p in problems:
        out.write(f"{root / p.file}:{p.line}: {p.message} — {p.fix}\n")
    # Too little music for a share is worth knowing, but it is not a mistake to fix.
    for p in music.capacity_problems(programme, library, root=root):
        out.write(f"{root / p.file}:{p.line}: note: {p.message} — {p.fix}\n")
    out.write(f"{root / programme.station.media}: {media.describe(library)}\n")
    if problems:
        out.write(f"{len(problems)} media problem(s): those files are skipped on air\n")
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# Reading


class _Map(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key (1-based)."""

    line: int
    lines: dict[Any, int]
    duplicates: list[tuple[Any, int]]

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


def _empty_map(line: int) -> _Map:
    out = _Map()
    out.line, out.lines, out.duplicates = line, {}, []
    return out


class _Seq(list[Any]):
    line: int
    lines: list[int]


class _Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: _Loader, node: yaml.MappingNode) -> _Map:
    loader.flatten_mapping(node)
    out = _empty_map(node.start_mark.line + 1)
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            key = str(key)
        line = key_node.start_mark.line + 1
        if key in out:
            out.duplicates.append((key, line))
        out[key] = loader.construct_object(value_node, deep=True)
        out.lines[key] = line
    return out


def _construct_seq(loader: _Loader, node: yaml.SequenceNode) -> _Seq:
    out = _Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.line, out.lines = node.start_mark.line + 1, [c.start_mark.line + 1 for c in node.value]
    return out


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int | str:
    # YAML 1.1 reads an unquoted 12:30 as the number 750; producers mean a clock time.
    if ":" in node.value:
        return str(node.value)
    return int(loader.construct_yaml_int(node))


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float | str:
    if ":" in node.value:
        return str(node.value)
    return float(loader.construct_yaml_float(node))


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


class _Problems(list[Problem]):
    def add(self, file: str, line: int, message: str, fix: str) -> None:
        self.append(Problem(file, max(line, 1), message, fix))


def _parse_yaml(text: str, file: str, problems: _Problems) -> Any:
    """Parse YAML; a syntax error becomes a problem at its line."""
    try:
        return yaml.load(text, Loader=_Loader)  # _Loader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = 1 + (mark.line if mark else 0)
        what = exc.problem or "is not valid YAML"
        if exc.context and exc.context_mark and exc.context_mark.line + 1 != line:
            what += f" ({exc.context} on line {exc.context_mark.line + 1})"
        problems.add(
            file,
            line,
            f"YAML syntax: {what}",
            "check the indentation and colons on this line; quote text that contains ': ' or #",
        )
    except yaml.YAMLError as exc:
        problems.add(file, 1, f"YAML syntax: {exc}", "check the file's YAML")
    return None


def _read_text(root: Path, file: str, problems: _Problems) -> str | None:
    try:
        # Some editors save a byte-order mark; it would hide the opening ---.
        return (root / file).read_text(encoding="utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        problems.add(file, 1, "the file is not UTF-8 text", "save it as UTF-8")
    except OSError as exc:
        problems.add(file, 1, f"cannot read the file ({exc.strerror})", "check its permissions")
    return None


@dataclass(frozen=True)
class _Document:
    header: Any  # the front matter, None when there is none
    body: str
    body_line: int  # the line the body starts on


def _split_front_matter(text: str, file: str, problems: _Problems) -> _Document | None:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return _Document(None, text, 1)
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            before = len(problems)
            # A blank line in place of the opening --- keeps YAML's line numbers the file's.
            header = _parse_yaml("\n" + "".join(lines[1:i]), file, problems)
            if len(problems) > before:
                return None
            if header is None:  # `---` straight after `---`: an empty header
                header = _empty_map(1)
            return _Document(header, "".join(lines[i + 1 :]), i + 2)
    problems.add(
        file, 1, "the front matter opened with --- is never closed", "add a line with --- after it"
    )
    return None


def _unknown_keys(data: _Map, known: tuple[str, ...], file: str, problems: _Problems) -> None:
    for key in data:
        if key not in known:
            problems.add(
                file,
                data.line_of(key),
                f"unknown key '{key}'",
                f"use one of: {', '.join(known)} (check the spelling)",
            )
    for key, line in data.duplicates:
        problems.add(file, line, f"'{key}' is written twice", "keep one of them")


def _check_placeholders(
    text: str, file: str, first_line: int, problems: _Problems, where: str = ""
) -> None:
    for match in Template.pattern.finditer(text):
        line = first_line + text.count("\n", 0, match.start())
        name = match.group("named") or match.group("braced")
        if match.group("invalid") is not None:
            problems.add(
                file,
                line,
                f"a lone $ {where}".rstrip(),
                "write $$ for a dollar sign, or $name for a placeholder",
            )
        elif name and name not in PLACEHOLDERS:
            problems.add(
                file,
                line,
                f"unknown placeholder ${name} {where}".rstrip(),
                f"use one of: {', '.join('$' + p for p in PLACEHOLDERS)} (or $$ for a dollar sign)",
            )


def _text(
    data: _Map, key: str, file: str, problems: _Problems, *, required: bool = True, template: bool
) -> str:
    value = data.get(key)
    if value is None:
        if required:
            problems.add(file, data.line, f"'{key}' is missing", f"add '{key}: ...'")
        return ""
    if not isinstance(value, str) or not value.strip():
        problems.add(file, data.line_of(key), f"'{key}' must be text", f"write '{key}: some text'")
        return ""
    if template:
        _check_placeholders(value, file, data.line_of(key), problems, f"in '{key}'")
    return value.strip()


def _read(root: Path) -> tuple[Programme | None, list[Problem]]:
    try:
        return _read_folder(root)
    except Exception as exc:  # a bug in the check must not look like a producer's mistake
        problem = Problem(
            ".",
            1,
            f"the check itself failed ({type(exc).__name__}: {exc})",
            "report this to the engineers; the last good version stays on air",
        )
        return None, [problem]


def _read_folder(root: Path) -> tuple[Programme | None, list[Problem]]:
    problems = _Problems()
    if not root.is_dir():
        problems.add(
            ".",
            1,
            "the prompts folder does not exist",
            "pass the folder that holds station.yaml",
        )
        return None, list(problems)
    station = _read_station(root, problems)
    persona = _read_persona(root, problems)
    segments, names = _read_segments(root, problems)
    schedule = _read_schedule(root, names, station, problems)
    if problems or station is None or persona is None or schedule is None:
        return None, list(problems)
    return Programme(station, persona, MappingProxyType(segments), schedule), []


def _read_station(root: Path, problems: _Problems) -> Station | None:
    file = STATION_FILE
    if not (root / file).is_file():
        problems.add(
            file, 1, "the station file is missing", "create station.yaml (see prompts/README.md)"
        )
        return None
    text = _read_text(root, file, problems)
    if text is None:
        return None
    data = _parse_yaml(text, file, problems)
    if data is None:
        return None
    if not isinstance(data, _Map):
        problems.add(
            file, 1, "the station file must be 'key: value' lines", "see prompts/README.md"
        )
        return None
    known = (
        "name",
        "language",
        "timezone",
        "station_id",
        "ai_disclosure",
        "silence_gap_seconds",
        "media",
        "loudness_target_lufs",
        "true_peak_dbtp",
    )
    _unknown_keys(data, known, file, problems)
    before = len(problems)
    name = _text(data, "name", file, problems, template=False)
    language = _text(data, "language", file, problems, template=False)
    if language and not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", language):
        problems.add(
            file, data.line_of("language"), f"'{language}' is not a language code", "use ja or en"
        )
    timezone = _text(data, "timezone", file, problems, template=False)
    if timezone:
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            problems.add(
                file,
                data.line_of("timezone"),
                f"unknown timezone '{timezone}'",
                "use an IANA name such as Asia/Tokyo, Europe/London or UTC",
            )
    disclosure = _text(data, "ai_disclosure", file, problems, template=True)
    gap = data.get("silence_gap_seconds", 1.5)
    if isinstance(gap, bool) or not isinstance(gap, int | float) or not 0 < gap <= 30:
        problems.add(
            file,
            data.line_of("silence_gap_seconds"),
            f"silence_gap_seconds must be a number of seconds, not {gap!r}",
            "write a number between 0.1 and 30, such as 1.5",
        )
        gap = 1.5
    rule = _read_station_id(data, file, problems)
    media = _read_media_folder(root, data, file, problems)
    target = _number(
        data, "loudness_target_lufs", -16.0, (-30.0, -10.0), file, problems, "such as -16"
    )
    ceiling = _number(data, "true_peak_dbtp", -1.0, (-6.0, 0.0), file, problems, "such as -1")
    if len(problems) > before or rule is None:
        return None
    return Station(name, language, timezone, rule, disclosure, float(gap), media, target, ceiling)


def _number(
    data: _Map,
    key: str,
    default: float,
    bounds: tuple[float, float],
    file: str,
    problems: _Problems,
    example: str,
) -> float:
    value = data.get(key, default)
    low, high = bounds
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        problems.add(
            file,
            data.line_of(key),
            f"{key} must be a number from {low:g} to {high:g}, not {value!r}",
            f"write {key}: {default:g} ({example})",
        )
        return default
    return float(value)


def _read_media_folder(root: Path, data: _Map, file: str, problems: _Problems) -> str:
    """The media folder as written, checked to exist inside the prompts folder."""
    if "media" not in data:
        return ""
    value = data.get("media")
    line = data.line_of("media")
    if not isinstance(value, str) or not value.strip():
        problems.add(file, line, "'media' must name a folder", "write media: media")
        return ""
    folder = value.strip()
    # Written paths stay inside the prompts folder: no absolute paths, no way out by `..`.
    # (A link an engineer put in the folder is followed: that was a deliberate choice.)
    lexical = os.path.normpath(folder)
    if Path(folder).is_absolute() or lexical == ".." or lexical.startswith(".." + os.sep):
        problems.add(
            file,
            line,
            f"the media folder '{folder}' is outside the prompts folder",
            "put the media folder inside the prompts folder and write its name, such as media",
        )
        return ""
    if not (root / folder).is_dir():
        problems.add(
            file,
            line,
            f"the media folder '{folder}' does not exist",
            f"create {folder}/ next to station.yaml, or fix the name",
        )
        return ""
    return folder


def _read_station_id(data: _Map, file: str, problems: _Problems) -> StationIdRule | None:
    sid = data.get("station_id")
    if not isinstance(sid, _Map):
        problems.add(
            file,
            data.line_of("station_id"),
            "'station_id' must say how often and what to say",
            "write station_id: with 'every_minutes: 30' and 'line: ...' under it",
        )
        return None
    _unknown_keys(sid, ("every_minutes", "line"), file, problems)
    every = sid.get("every_minutes")
    if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= 60:
        problems.add(
            file,
            sid.line_of("every_minutes"),
            f"station_id every_minutes must be whole minutes from 1 to 60, not {every!r}",
            "write every_minutes: 30 (or 15, 20, 60)",
        )
        return None
    line = _text(sid, "line", file, problems, template=True)
    return StationIdRule(every, line)


def _read_persona(root: Path, problems: _Problems) -> Persona | None:
    file = PERSONA_FILE
    if not (root / file).is_file():
        problems.add(
            file,
            1,
            "the persona is missing",
            "create host.md: who the host is and the rules they always keep",
        )
        return None
    text = _read_text(root, file, problems)
    if text is None:
        return None
    before = len(problems)
    doc = _split_front_matter(text, file, problems)
    if doc is None or len(problems) > before:
        return None
    name = ""
    if doc.header is not None:
        if not isinstance(doc.header, _Map):
            problems.add(file, 2, "the front matter must be 'key: value' lines", "write name: ...")
            return None
        _unknown_keys(doc.header, ("name",), file, problems)
        name = _text(doc.header, "name", file, problems, required=False, template=False)
    if not doc.body.strip():
        problems.add(
            file,
            doc.body_line,
            "the persona is empty",
            "write who the host is and the rules they always keep",
        )
        return None
    _check_placeholders(doc.body, file, doc.body_line, problems)
    if len(problems) > before:
        return None
    return Persona(name, doc.body.strip())


def _read_segments(root: Path, problems: _Problems) -> tuple[dict[str, Segment], set[str]]:
    """The valid segments, and the names of every segment file (broken ones too)."""
    folder = root / SEGMENTS_DIR
    files = sorted(folder.glob("*.md")) if folder.is_dir() else []
    if not files:
        problems.add(
            f"{SEGMENTS_DIR}/",
            1,
            "there are no segments",
            "add at least one segments/NAME.md (see prompts/README.md)",
        )
    segments: dict[str, Segment] = {}
    for path in files:
        segment = _read_segment(root, f"{SEGMENTS_DIR}/{path.name}", path.stem, problems)
        if segment is not None:
            segments[segment.id] = segment
    return segments, {path.stem for path in files}


def _read_segment(root: Path, file: str, sid: str, problems: _Problems) -> Segment | None:
    text = _read_text(root, file, problems)
    if text is None:
        return None
    before = len(problems)
    doc = _split_front_matter(text, file, problems)
    if doc is None or len(problems) > before:
        return None
    header = doc.header
    if header is None:
        problems.add(
            file,
            1,
            "the segment has no front matter",
            "start the file with ---, title:, style:, target_length:, fallback:, then ---",
        )
        return None
    if not isinstance(header, _Map):
        problems.add(
            file, 2, "the front matter must be 'key: value' lines", "see prompts/README.md"
        )
        return None
    known = ("title", "style", "target_length", "fallback", "posts", "music")
    _unknown_keys(header, known, file, problems)
    title = _text(header, "title", file, problems, template=False)
    style = _text(header, "style", file, problems, template=False)
    length = header.get("target_length")
    if isinstance(length, bool) or not isinstance(length, int) or not 5 <= length <= 900:
        problems.add(
            file,
            header.line_of("target_length"),
            f"target_length must be whole seconds from 5 to 900, not {length!r}",
            "write target_length: 60 (seconds each talk should last)",
        )
    posts = header.get("posts", "sometimes")
    if posts not in POST_POLICIES:
        problems.add(
            file,
            header.line_of("posts"),
            f"posts must be one of {', '.join(POST_POLICIES)}, not {posts!r}",
            "write posts: first for a listener corner, posts: never to keep posts out",
        )
    fallback = _read_fallback(header, file, problems)
    music = _read_music(header, file, problems)
    if not doc.body.strip():
        problems.add(
            file,
            doc.body_line,
            "the segment is empty",
            "write the instructions for this segment below the front matter",
        )
    _check_placeholders(doc.body, file, doc.body_line, problems)
    if len(problems) > before:
        return None
    return Segment(sid, title, style, length, fallback, posts, doc.body.strip(), music)


def _read_music(header: _Map, file: str, problems: _Problems) -> MusicPolicy:
    if "music" not in header:
        return MusicPolicy()
    music = header.get("music")
    example = "write music: { share: 0.3, kinds: [track], moods: [calm], bed: true }"
    if not isinstance(music, _Map):
        problems.add(
            file, header.line_of("music"), "'music' must say how much music and which", example
        )
        return MusicPolicy()
    _unknown_keys(music, ("share", "kinds", "moods", "bed"), file, problems)
    share = music.get("share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        problems.add(
            file,
            music.line_of("share"),
            f"music share must be a fraction of the segment from 0 to 1, not {share!r}",
            "write share: 0.3 for about a third music (0 is talk only)",
        )
        share = 0.0
    kinds = _words(music, "kinds", file, problems, ["track"])
    for kind in kinds:
        if kind not in MUSIC_KINDS:
            problems.add(
                file,
                music.line_of("kinds"),
                f"music kind '{kind}' cannot be a segment's music",
                f"use {' and/or '.join(MUSIC_KINDS)} (beds play under talk: write bed: true)",
            )
    moods = _words(music, "moods", file, problems, [])
    bed = music.get("bed", False)
    if not isinstance(bed, bool):
        problems.add(
            file,
            music.line_of("bed"),
            f"music bed must be true or false, not {bed!r}",
            "write bed: true for a soft bed under the talk, or leave it out",
        )
        bed = False
    return MusicPolicy(float(share), tuple(kinds) or ("track",), tuple(moods), bed)


def _words(data: _Map, key: str, file: str, problems: _Problems, default: list[str]) -> list[str]:
    """A list of short words (`[calm, night]`); one word alone is a list of one."""
    value = data.get(key, default)
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        problems.add(
            file,
            data.line_of(key),
            f"'{key}' must be a list of words",
            f"write {key}: [word, word]",
        )
        return default
    return [v.strip() for v in value]


def _read_fallback(header: _Map, file: str, problems: _Problems) -> tuple[str, ...]:
    lines = header.get("fallback")
    fix = "write fallback: followed by lines starting with '- ' that the offline voice can read"
    if not isinstance(lines, _Seq) or not lines:
        problems.add(file, header.line_of("fallback"), "fallback lines are missing", fix)
        return ()
    out = []
    for item, line in zip(lines, lines.lines, strict=True):
        if not isinstance(item, str) or not item.strip():
            problems.add(file, line, "a fallback line must be text", fix)
            continue
        _check_placeholders(item, file, line, problems, "in a fallback line")
        out.append(item.strip())
    return tuple(out)


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


def _read_schedule(
    root: Path, segments: set[str], station: Station | None, problems: _Problems
) -> Schedule | None:
    file = SCHEDULE_FILE
    if not (root / file).is_file():
        problems.add(
            file, 1, "the schedule is missing", "create schedule.yaml with clock: and recurring:"
        )
        return None
    text = _read_text(root, file, problems)
    if text is None:
        return None
    data = _parse_yaml(text, file, problems)
    if data is None:
        return None
    if not isinstance(data, _Map):
        problems.add(file, 1, "the schedule must be 'key: value' lines", "see prompts/README.md")
        return None
    before = len(problems)
    _unknown_keys(data, ("clock", "recurring"), file, problems)
    clock = data.get("clock")
    if not isinstance(clock, _Map):
        problems.add(
            file,
            data.line_of("clock"),
            "'clock' must list the day's slots",
            "write clock: with every_day: (and weekday overrides) under it",
        )
        return None
    _unknown_keys(clock, tuple(DAY_GROUPS), file, problems)
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
    problems: _Problems,
) -> tuple[Slot, ...] | None:
    item_fix = 'write - { from: "05:00", to: "09:00", segment: morning }'
    if not isinstance(value, _Seq) or not value:
        problems.add(file, day_line, f"'{day}' must list its slots", item_fix)
        return None
    before = len(problems)
    timed = True  # coverage can only be judged when every slot has good times
    slots: list[tuple[Slot, int]] = []
    for item, line in zip(value, value.lines, strict=True):
        if not isinstance(item, _Map):
            problems.add(file, line, f"a slot in '{day}' must have from, to and segment", item_fix)
            timed = False
            continue
        _unknown_keys(item, ("from", "to", "segment"), file, problems)
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


def _read_recurring(data: _Map, file: str, problems: _Problems) -> tuple[int, ...] | None:
    items = data.get("recurring")
    fix = "write - { do: station_id, minutes: [0, 30] }"
    if items is None:
        return ()
    if not isinstance(items, _Seq):
        problems.add(file, data.line_of("recurring"), "'recurring' must be a list", fix)
        return None
    minutes: set[int] = set()
    ok = True
    for item, line in zip(items, items.lines, strict=True):
        if not isinstance(item, _Map):
            problems.add(file, line, "a recurring item must have do and minutes", fix)
            ok = False
            continue
        _unknown_keys(item, ("do", "minutes"), file, problems)
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
    minutes: tuple[int, ...], every: int, data: _Map, file: str, problems: _Problems
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
