"""The producers' media library: the music, jingles, beds and idents the station can air.

Producers drop audio files into the media folder that `station.yaml` names and, when they want
to, describe them in a `media.yaml` beside them (see `prompts/README.md`). This module turns the
folder into frozen `MediaItem`s, reading titles, artists and durations from the files' own tags
(mutagen) and checking that each file really decodes (PyAV). A bad file (empty, unreadable, not
audio) never stops the station: it is left out of the library and reported as a `Problem` naming
the file and the fix, so `radio24 prompts check` shows it and the rest still airs.

File reading only: no LiveKit, no clock, no decisions (what airs when is `programme/music.py`).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import av
import mutagen

from programme.model import (
    LONGEST_SECONDS,
    MEDIA_KINDS,
    MUSIC_KINDS,
    MusicPolicy,
    Problem,
    Programme,
)

# The programme's YAML reader keeps line numbers, so media.yaml problems name their line
# exactly like the other producers' files do.
from programme.reader import Map, Problems, Seq, parse_yaml, read_text, unknown_keys

AUDIO_SUFFIXES = (".mp3", ".ogg", ".opus", ".oga", ".flac", ".wav")
SIDECAR = "media.yaml"
SHORTEST_SECONDS = 0.5  # anything shorter is a mistake, not an item (a click, a cut file)

_DESCRIBE_KEYS = ("kind", "moods", "segments", "artist", "intro")
_FILE_KEYS = ("title", *_DESCRIBE_KEYS)
_AUDIO_FIX = "save it as MP3, Ogg/Opus, FLAC or WAV, or move it out of the media folder"


@dataclass(frozen=True)
class MediaItem:
    """One playable file. `name` (its path inside the media folder) is its identity on air."""

    name: str  # "house/night_walk.ogg", with forward slashes
    path: Path
    title: str
    artist: str
    duration: float  # seconds, from the file's header
    kind: str  # one of MEDIA_KINDS
    moods: tuple[str, ...] = ()
    segments: tuple[str, ...] = ()  # () = any segment
    intro: float = 0.0  # seconds at the start the host may talk over
    mtime_ns: int = 0  # with `path`, what a cache of the prepared sound is keyed on

    def suits(self, segment_id: str, moods: Collection[str] = ()) -> bool:
        """Whether the file may air in this segment, with one of these moods (none = any)."""
        if self.segments and segment_id not in self.segments:
            return False
        return not moods or any(m in self.moods for m in moods)


@dataclass(frozen=True)
class MediaLibrary:
    """Every good file, and the problems with the bad ones (which are not in `items`)."""

    folder: Path | None
    items: tuple[MediaItem, ...] = ()
    problems: tuple[Problem, ...] = ()
    _by_name: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_name", MappingProxyType({i.name: i for i in self.items}))

    def get(self, name: str) -> MediaItem | None:
        return self._by_name.get(name)

    def of_kind(self, *kinds: str) -> tuple[MediaItem, ...]:
        return tuple(i for i in self.items if i.kind in kinds)

    def music_for(self, segment_id: str, policy: MusicPolicy) -> tuple[MediaItem, ...]:
        """The tracks and jingles a segment's `music:` lets it air. Moods choose tracks; a
        jingle without moods is the station's own sound and suits every segment."""
        return tuple(
            i
            for i in self.items
            if i.kind in policy.kinds
            and i.suits(segment_id, () if i.kind == "jingle" and not i.moods else policy.moods)
        )

    def beds_for(self, segment_id: str, policy: MusicPolicy) -> tuple[MediaItem, ...]:
        """Beds for the segment: those with its moods first, else any bed it may use."""
        beds = [i for i in self.of_kind("bed") if i.suits(segment_id)]
        moody = [i for i in beds if i.suits(segment_id, policy.moods)]
        return tuple(moody or beds)

    def counts(self) -> dict[str, int]:
        found = Counter(i.kind for i in self.items)
        return {kind: found.get(kind, 0) for kind in MEDIA_KINDS}


def load_library(prompts_root: str | os.PathLike[str], programme: Programme) -> MediaLibrary:
    """The library of the media folder the programme's station.yaml names (empty if none)."""
    if not programme.station.media:
        return MediaLibrary(None)
    return scan(
        Path(prompts_root),
        programme.station.media,
        segments=programme.segments.keys(),
    )


def scan(
    prompts_root: Path, folder: str, *, segments: Collection[str] | None = None
) -> MediaLibrary:
    """Read `prompts_root/folder`; problems name files relative to `prompts_root`.

    `segments`, when given, are the segment names a `media.yaml` may refer to.
    """
    root = prompts_root / folder
    problems = Problems()
    if not root.is_dir():
        problems.add(
            folder, 1, "the media folder does not exist", f"create {folder}/ next to station.yaml"
        )
        return MediaLibrary(None, (), tuple(problems))
    sidecars: dict[Path, dict[str, Any]] = {}
    files_named: dict[Path, dict[str, tuple[dict[str, Any], int]]] = {}
    audio: list[Path] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(prompts_root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue  # editors' and file managers' hidden files
        if path.is_dir():
            continue
        if path.name == SIDECAR:
            described = _read_sidecar(prompts_root, rel, segments, problems)
            if described is not None:
                sidecars[path.parent], files_named[path.parent] = described
        elif path.suffix.lower() in AUDIO_SUFFIXES:
            audio.append(path)
        else:
            problems.add(rel, 1, "this is not an audio file the station can play", _AUDIO_FIX)
    for parent, entries in files_named.items():
        for name, (_, line) in entries.items():
            if not (parent / name).is_file():
                problems.add(
                    (parent / SIDECAR).relative_to(prompts_root).as_posix(),
                    line,
                    f"there is no file '{name}' in this folder",
                    "fix the file name (with its ending, such as .ogg) or remove the entry",
                )
    items = []
    for path in audio:
        settings: dict[str, Any] = {}
        # Folder settings apply below the folder too; the nearest folder wins, then the file.
        for parent in reversed([p for p in path.parents if p == root or root in p.parents]):
            settings.update(sidecars.get(parent, {}))
        entry = files_named.get(path.parent, {}).get(path.name)
        if entry is not None:
            settings.update(entry[0])
        item = _read_item(prompts_root, root, path, settings, problems)
        if item is not None:
            items.append(item)
    return MediaLibrary(root, tuple(items), tuple(problems))


def music_problems(
    programme: Programme, library: MediaLibrary, root: Path | None = None
) -> list[Problem]:
    """Segments whose `music:` asks for what the library does not have (they would stay talk).

    With the prompts folder as `root`, each problem names the line of the segment's `music:`.
    """
    problems = Problems()
    for sid, segment in sorted(programme.segments.items()):
        policy = segment.music
        file = f"segments/{sid}.md"
        line = music_line(root, sid)
        if policy.share > 0 and not library.music_for(sid, policy):
            moods = f" with mood {' or '.join(policy.moods)}" if policy.moods else ""
            problems.add(
                file,
                line,
                f"the segment asks for music but no {' or '.join(policy.kinds)}{moods} "
                "in the media folder may play in it",
                "add moods: to files in media.yaml, or change the segment's music moods",
            )
        if policy.bed and not library.beds_for(sid, policy):
            problems.add(
                file,
                line,
                "the segment asks for a bed but the media folder has none it may use",
                "add a file with kind: bed in media.yaml, or write bed: false",
            )
    return list(problems)


def music_line(root: Path | None, segment_id: str) -> int:
    """The line of a segment file's `music:` key (2, the front matter's first, if unknown)."""
    if root is not None:
        try:
            text = (root / "segments" / f"{segment_id}.md").read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            return 2
        for number, line in enumerate(text.splitlines(), start=1):
            if line.startswith("music:"):
                return number
    return 2


def describe(library: MediaLibrary) -> str:
    """One line for `prompts check`: what the library holds."""
    counts = library.counts()
    parts = [f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in counts.items()]
    minutes = sum(i.duration for i in library.of_kind(*MUSIC_KINDS)) / 60
    return f"{', '.join(parts)} ({minutes:.1f} min of music)"


# ---------------------------------------------------------------------------------------------
# Reading


def _read_sidecar(
    prompts_root: Path, file: str, segments: Collection[str] | None, problems: Problems
) -> tuple[dict[str, Any], dict[str, tuple[dict[str, Any], int]]] | None:
    text = read_text(prompts_root, file, problems)
    if text is None:
        return None
    data = parse_yaml(text, file, problems)
    if data is None:
        return {}, {}
    if not isinstance(data, Map):
        problems.add(file, 1, "media.yaml must be 'key: value' lines", "see prompts/README.md")
        return None
    unknown_keys(data, (*_DESCRIBE_KEYS, "files"), file, problems)
    folder = _describe(data, _DESCRIBE_KEYS, file, segments, problems)
    entries: dict[str, tuple[dict[str, Any], int]] = {}
    files = data.get("files")
    if files is not None and not isinstance(files, Map):
        problems.add(
            file,
            data.line_of("files"),
            "'files' must list file names with what to say about each",
            "write files: then '  night_walk.ogg: { title: Night Walk, moods: [calm] }'",
        )
    elif files is not None:
        for name, value in files.items():
            line = files.line_of(name)
            if not isinstance(value, Map):
                problems.add(
                    file,
                    line,
                    f"'{name}' must have keys such as title, kind, moods",
                    f"write {name}: {{ title: ..., moods: [calm] }}",
                )
                continue
            unknown_keys(value, _FILE_KEYS, file, problems)
            entries[str(name)] = (_describe(value, _FILE_KEYS, file, segments, problems), line)
    return folder, entries


def _describe(
    data: Map,
    keys: tuple[str, ...],
    file: str,
    segments: Collection[str] | None,
    problems: Problems,
) -> dict[str, Any]:
    """The valid settings among `keys`; each bad one is a problem and left out."""
    out: dict[str, Any] = {}
    for key in keys:
        if key not in data:
            continue
        value, line = data[key], data.line_of(key)
        if key == "kind":
            if value in MEDIA_KINDS:
                out[key] = value
            else:
                problems.add(
                    file, line, f"unknown kind {value!r}", f"use one of: {', '.join(MEDIA_KINDS)}"
                )
        elif key in ("moods", "segments"):
            words = [value] if isinstance(value, str) else value
            if not isinstance(words, Seq | list) or not all(
                isinstance(w, str) and w.strip() for w in words
            ):
                problems.add(file, line, f"'{key}' must be a list of words", f"write {key}: [a, b]")
                continue
            words = [w.strip() for w in words]
            unknown = [w for w in words if segments is not None and w not in segments]
            if key == "segments" and unknown:
                problems.add(
                    file,
                    line,
                    f"segment '{unknown[0]}' is not defined",
                    f"use one of: {', '.join(sorted(segments or ()))}",
                )
                continue
            out[key] = tuple(words)
        elif key in ("title", "artist"):
            if isinstance(value, str | int | float) and str(value).strip():
                out[key] = str(value).strip()
            else:
                problems.add(file, line, f"'{key}' must be text", f"write {key}: some text")
        elif key == "intro":
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                out[key] = float(value)
            else:
                problems.add(
                    file,
                    line,
                    f"intro must be seconds from the start, not {value!r}",
                    "write intro: 8 (seconds of music before any singing or lead)",
                )
    return out


def _read_item(
    prompts_root: Path,
    media_root: Path,
    path: Path,
    described: dict[str, Any],
    problems: Problems,
) -> MediaItem | None:
    rel = path.relative_to(prompts_root).as_posix()
    try:
        stat = path.stat()
    except OSError as exc:
        problems.add(rel, 1, f"cannot read the file ({exc.strerror})", "check its permissions")
        return None
    if stat.st_size == 0:
        problems.add(rel, 1, "the file is empty (0 bytes)", "copy the file again, or remove it")
        return None
    tags, duration = _read_tags(path)
    probed = _probe(path)
    if isinstance(probed, str):
        problems.add(
            rel,
            1,
            f"the file cannot be played: {probed}",
            "export it again as MP3, Ogg/Opus, FLAC or WAV; it is skipped on air until then",
        )
        return None
    duration = duration or probed
    if duration > LONGEST_SECONDS:
        problems.add(
            rel,
            1,
            f"the file is too long to air ({duration / 60:.0f} min)",
            f"cut it to at most {LONGEST_SECONDS // 60} minutes",
        )
        return None
    if duration < SHORTEST_SECONDS:
        problems.add(
            rel,
            1,
            f"the file is too short to air ({duration:.2f} s)",
            f"use a file of at least {SHORTEST_SECONDS:g} seconds, or remove it",
        )
        return None
    intro = float(described.get("intro", 0.0))
    if intro >= duration:
        problems.add(
            rel,
            1,
            f"its intro ({intro:g} s) is not shorter than the file ({duration:.1f} s)",
            "lower intro: in media.yaml",
        )
        intro = 0.0
    title = described.get("title") or tags.get("title") or path.stem.replace("_", " ")
    return MediaItem(
        name=path.relative_to(media_root).as_posix(),
        path=path,
        title=title,
        artist=described.get("artist") or tags.get("artist") or "",
        duration=duration,
        kind=described.get("kind", "track"),
        moods=described.get("moods", ()),
        segments=described.get("segments", ()),
        intro=intro,
        mtime_ns=stat.st_mtime_ns,
    )


def _read_tags(path: Path) -> tuple[dict[str, str], float]:
    """Title and artist from the file's tags, and its length; nothing when it has none."""
    try:
        found = mutagen.File(path, easy=True)
    except (mutagen.MutagenError, OSError, ValueError, EOFError):
        return {}, 0.0
    if found is None:
        return {}, 0.0
    tags: dict[str, str] = {}
    for key in ("title", "artist"):
        values = _first(found.tags.get(key) if found.tags is not None else None)
        if values:
            tags[key] = values
    length = getattr(found.info, "length", 0.0) or 0.0
    return tags, float(length)


def _first(value: Iterable[str] | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    for v in value:
        if str(v).strip():
            return str(v).strip()
    return ""


def _probe(path: Path) -> float | str:
    """Decode the first audio frame: the file's length in seconds, or why it cannot play."""
    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                return "it has no sound in it"
            stream = container.streams.audio[0]
            for _ in container.decode(stream):
                break
            else:
                return "it holds no sound that decodes"
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
            if container.duration is not None:
                return container.duration / av.time_base
            return 0.0
    except (av.FFmpegError, OSError, ValueError) as exc:
        return _reason(exc)


def _reason(exc: Exception) -> str:
    text = getattr(exc, "strerror", None) or str(exc)
    return text.split(":")[0].strip().lower() or type(exc).__name__
