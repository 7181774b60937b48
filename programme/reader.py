"""The producers' files, read with line numbers: every problem names the file, the line and the fix.

A YAML mapping read here remembers the line of each key (`Map.line_of`) and a list the line of
each item (`Seq.lines`); a syntax error, a file that is not UTF-8 or an unknown key becomes a
`Problem` in a `Problems` list instead of an exception, so one pass reports everything wrong.
Every reader of the prompts folder (station, persona, segments, schedule, media.yaml) goes
through these, so their problems read alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import yaml

from programme.model import PLACEHOLDERS, Problem


class Map(dict[Any, Any]):
    """A YAML mapping that remembers the line of each key (1-based)."""

    line: int
    lines: dict[Any, int]
    duplicates: list[tuple[Any, int]]

    def line_of(self, key: str) -> int:
        return self.lines.get(key, self.line)


def empty_map(line: int) -> Map:
    out = Map()
    out.line, out.lines, out.duplicates = line, {}, []
    return out


class Seq(list[Any]):
    line: int
    lines: list[int]


class Loader(yaml.SafeLoader):
    pass


def _construct_map(loader: Loader, node: yaml.MappingNode) -> Map:
    loader.flatten_mapping(node)
    out = empty_map(node.start_mark.line + 1)
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


def _construct_seq(loader: Loader, node: yaml.SequenceNode) -> Seq:
    out = Seq(loader.construct_object(child, deep=True) for child in node.value)
    out.line, out.lines = node.start_mark.line + 1, [c.start_mark.line + 1 for c in node.value]
    return out


def _construct_int(loader: Loader, node: yaml.ScalarNode) -> int | str:
    # YAML 1.1 reads an unquoted 12:30 as the number 750; producers mean a clock time.
    if ":" in node.value:
        return str(node.value)
    return int(loader.construct_yaml_int(node))


def _construct_float(loader: Loader, node: yaml.ScalarNode) -> float | str:
    if ":" in node.value:
        return str(node.value)
    return float(loader.construct_yaml_float(node))


Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_map)
Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_seq)
Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)


class Problems(list[Problem]):
    def add(self, file: str, line: int, message: str, fix: str) -> None:
        self.append(Problem(file, max(line, 1), message, fix))


def parse_yaml(text: str, file: str, problems: Problems) -> Any:
    """Parse YAML; a syntax error becomes a problem at its line."""
    try:
        return yaml.load(text, Loader=Loader)  # Loader is a SafeLoader
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


def read_text(root: Path, file: str, problems: Problems) -> str | None:
    try:
        # Some editors save a byte-order mark; it would hide the opening ---.
        return (root / file).read_text(encoding="utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError:
        problems.add(file, 1, "the file is not UTF-8 text", "save it as UTF-8")
    except OSError as exc:
        problems.add(file, 1, f"cannot read the file ({exc.strerror})", "check its permissions")
    return None


@dataclass(frozen=True)
class Document:
    header: Any  # the front matter, None when there is none
    body: str
    body_line: int  # the line the body starts on


def split_front_matter(text: str, file: str, problems: Problems) -> Document | None:
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        return Document(None, text, 1)
    for i in range(1, len(lines)):
        if lines[i].strip() == "---":
            before = len(problems)
            # A blank line in place of the opening --- keeps YAML's line numbers the file's.
            header = parse_yaml("\n" + "".join(lines[1:i]), file, problems)
            if len(problems) > before:
                return None
            if header is None:  # `---` straight after `---`: an empty header
                header = empty_map(1)
            return Document(header, "".join(lines[i + 1 :]), i + 2)
    problems.add(
        file, 1, "the front matter opened with --- is never closed", "add a line with --- after it"
    )
    return None


def unknown_keys(data: Map, known: tuple[str, ...], file: str, problems: Problems) -> None:
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


def check_placeholders(
    text: str, file: str, first_line: int, problems: Problems, where: str = ""
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


def text_field(
    data: Map, key: str, file: str, problems: Problems, *, required: bool = True, template: bool
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
        check_placeholders(value, file, data.line_of(key), problems, f"in '{key}'")
    return value.strip()


def number_field(
    data: Map,
    key: str,
    default: float,
    bounds: tuple[float, float],
    file: str,
    problems: Problems,
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


def words_field(
    data: Map, key: str, file: str, problems: Problems, default: list[str]
) -> list[str]:
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
