"""The producers' prompts folder, read and checked: station, persona and segments (the schedule
is `programme.schedule`'s).

Producers shape the station by editing `prompts/` (see `prompts/README.md`), never Python. This
module turns that folder into the frozen `programme.model` shapes, or into a list of every
problem found, each naming the file, the line and the fix, so a broken edit is refused with a
message a producer can act on and the last good programme stays on air. It does file reading and
nothing else: no LiveKit, no database, no clock.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from types import MappingProxyType
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from programme.model import (
    MUSIC_KINDS,
    PERSONA_FILE,
    POST_POLICIES,
    SEGMENTS_DIR,
    SPOKEN_LANGUAGES,
    STATION_FILE,
    MusicPolicy,
    Persona,
    Problem,
    Programme,
    PromptError,
    Segment,
    Station,
    StationIdRule,
)
from programme.reader import (
    Map,
    Problems,
    Seq,
    check_placeholders,
    number_field,
    parse_yaml,
    read_text,
    split_front_matter,
    text_field,
    unknown_keys,
    words_field,
)
from programme.schedule import read_schedule


def load_programme(path: str | os.PathLike[str]) -> Programme:
    """Read and validate a prompts folder; raise `PromptError` listing every problem."""
    programme, problems = read(Path(path))
    if problems or programme is None:
        raise PromptError(problems)
    return programme


def check(path: str | os.PathLike[str]) -> list[Problem]:
    """Every problem in a prompts folder; empty when it can go on air."""
    return read(Path(path))[1]


def read(root: Path) -> tuple[Programme | None, list[Problem]]:
    """The programme, or None with every problem found (never raises)."""
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
    problems = Problems()
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
    schedule = read_schedule(root, names, station, problems)
    if problems or station is None or persona is None or schedule is None:
        return None, list(problems)
    return Programme(station, persona, MappingProxyType(segments), schedule), []


def _read_station(root: Path, problems: Problems) -> Station | None:
    file = STATION_FILE
    if not (root / file).is_file():
        problems.add(
            file, 1, "the station file is missing", "create station.yaml (see prompts/README.md)"
        )
        return None
    text = read_text(root, file, problems)
    if text is None:
        return None
    data = parse_yaml(text, file, problems)
    if data is None:
        return None
    if not isinstance(data, Map):
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
    unknown_keys(data, known, file, problems)
    before = len(problems)
    name = text_field(data, "name", file, problems, template=False)
    language = text_field(data, "language", file, problems, template=False)
    if language and not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})?", language):
        problems.add(
            file, data.line_of("language"), f"'{language}' is not a language code", "use ja or en"
        )
    elif language and language.split("-")[0] not in SPOKEN_LANGUAGES:
        problems.add(
            file,
            data.line_of("language"),
            f"the offline voice cannot speak '{language}'",
            f"use one of {', '.join(SPOKEN_LANGUAGES)}: the station is heard without the model too",
        )
    timezone = text_field(data, "timezone", file, problems, template=False)
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
    disclosure = text_field(data, "ai_disclosure", file, problems, template=True)
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
    target = number_field(
        data, "loudness_target_lufs", -16.0, (-30.0, -10.0), file, problems, "such as -16"
    )
    ceiling = number_field(data, "true_peak_dbtp", -1.0, (-6.0, 0.0), file, problems, "such as -1")
    if len(problems) > before or rule is None:
        return None
    return Station(name, language, timezone, rule, disclosure, float(gap), media, target, ceiling)


def _read_media_folder(root: Path, data: Map, file: str, problems: Problems) -> str:
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


def _read_station_id(data: Map, file: str, problems: Problems) -> StationIdRule | None:
    sid = data.get("station_id")
    if not isinstance(sid, Map):
        problems.add(
            file,
            data.line_of("station_id"),
            "'station_id' must say how often and what to say",
            "write station_id: with 'every_minutes: 30' and 'line: ...' under it",
        )
        return None
    unknown_keys(sid, ("every_minutes", "line"), file, problems)
    every = sid.get("every_minutes")
    if isinstance(every, bool) or not isinstance(every, int) or not 1 <= every <= 60:
        problems.add(
            file,
            sid.line_of("every_minutes"),
            f"station_id every_minutes must be whole minutes from 1 to 60, not {every!r}",
            "write every_minutes: 30 (or 15, 20, 60)",
        )
        return None
    line = text_field(sid, "line", file, problems, template=True)
    return StationIdRule(every, line)


def _read_persona(root: Path, problems: Problems) -> Persona | None:
    file = PERSONA_FILE
    if not (root / file).is_file():
        problems.add(
            file,
            1,
            "the persona is missing",
            "create host.md: who the host is and the rules they always keep",
        )
        return None
    text = read_text(root, file, problems)
    if text is None:
        return None
    before = len(problems)
    doc = split_front_matter(text, file, problems)
    if doc is None or len(problems) > before:
        return None
    name = ""
    if doc.header is not None:
        if not isinstance(doc.header, Map):
            problems.add(file, 2, "the front matter must be 'key: value' lines", "write name: ...")
            return None
        unknown_keys(doc.header, ("name",), file, problems)
        name = text_field(doc.header, "name", file, problems, required=False, template=False)
    if not doc.body.strip():
        problems.add(
            file,
            doc.body_line,
            "the persona is empty",
            "write who the host is and the rules they always keep",
        )
        return None
    check_placeholders(doc.body, file, doc.body_line, problems)
    if len(problems) > before:
        return None
    return Persona(name, doc.body.strip())


def _read_segments(root: Path, problems: Problems) -> tuple[dict[str, Segment], set[str]]:
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


def _read_segment(root: Path, file: str, sid: str, problems: Problems) -> Segment | None:
    text = read_text(root, file, problems)
    if text is None:
        return None
    before = len(problems)
    doc = split_front_matter(text, file, problems)
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
    if not isinstance(header, Map):
        problems.add(
            file, 2, "the front matter must be 'key: value' lines", "see prompts/README.md"
        )
        return None
    known = ("title", "style", "target_length", "fallback", "posts", "music")
    unknown_keys(header, known, file, problems)
    title = text_field(header, "title", file, problems, template=False)
    style = text_field(header, "style", file, problems, template=False)
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
    check_placeholders(doc.body, file, doc.body_line, problems)
    if len(problems) > before or not isinstance(length, int):
        return None
    return Segment(sid, title, style, length, fallback, posts, doc.body.strip(), music)


def _read_music(header: Map, file: str, problems: Problems) -> MusicPolicy:
    if "music" not in header:
        return MusicPolicy()
    music = header.get("music")
    example = "write music: { share: 0.3, kinds: [track], moods: [calm], bed: true }"
    if not isinstance(music, Map):
        problems.add(
            file, header.line_of("music"), "'music' must say how much music and which", example
        )
        return MusicPolicy()
    unknown_keys(music, ("share", "kinds", "moods", "bed"), file, problems)
    share = music.get("share")
    if isinstance(share, bool) or not isinstance(share, int | float) or not 0 <= share <= 1:
        problems.add(
            file,
            music.line_of("share"),
            f"music share must be a fraction of the segment from 0 to 1, not {share!r}",
            "write share: 0.3 for about a third music (0 is talk only)",
        )
        share = 0.0
    kinds = words_field(music, "kinds", file, problems, ["track"])
    for kind in kinds:
        if kind not in MUSIC_KINDS:
            problems.add(
                file,
                music.line_of("kinds"),
                f"music kind '{kind}' cannot be a segment's music",
                f"use {' and/or '.join(MUSIC_KINDS)} (beds play under talk: write bed: true)",
            )
    moods = words_field(music, "moods", file, problems, [])
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


def _read_fallback(header: Map, file: str, problems: Problems) -> tuple[str, ...]:
    lines = header.get("fallback")
    fix = "write fallback: followed by lines starting with '- ' that the offline voice can read"
    if not isinstance(lines, Seq) or not lines:
        problems.add(file, header.line_of("fallback"), "fallback lines are missing", fix)
        return ()
    out = []
    for item, line in zip(lines, lines.lines, strict=True):
        if not isinstance(item, str) or not item.strip():
            problems.add(file, line, "a fallback line must be text", fix)
            continue
        check_placeholders(item, file, line, problems, "in a fallback line")
        out.append(item.strip())
    return tuple(out)
