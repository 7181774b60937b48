"""The console of `radio24 run`: what a person watching the terminal needs to see.

supervisord keeps each part's whole output in `.run/logs/<part>.log` (rotated by size). This
event listener (a supervisord `[eventlistener]`) prints only what needs a person: a part that
came up, died, is retried with back-off or was given up, and the parts' warnings and errors, one
short line each; a warning that repeats is shown once per half minute. The classification is
pure and tested on its own; `listen()` is the thin supervisord adapter.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable
from typing import IO

MAX_LINE = 240
# Helpers of `radio24 run`, not parts of the station: no "is up" / "stopped" lines for them.
QUIET = {"banner", "console"}
REPEAT_WINDOW_SECONDS = 30.0

# Every part puts its level near the start of a line: LiveKit `<time>\tWARN\t...`, Postgres
# `<time> [pid] WARNING:  ...`, Python `... - WARNING name - ...`.
_LEVEL = re.compile(r"\b(WARN|WARNING|ERROR|CRITICAL|FATAL|PANIC)\b")
_JSON_LEVELS = {"WARN", "WARNING", "ERROR", "CRITICAL", "FATAL"}
# Redis: `<pid>:<role> <date> # message` is a warning (`*` notice, `-` verbose, `.` debug).
_REDIS_WARNING = re.compile(r"^\d+:[XCSM] \d{2} \w{3} \d{4} [\d:.]+ # ")
# Lines every start or stop prints at warning level that need nobody: Redis's start and stop
# notes, and the yoyo migration tool probing for a table of its own.
_ROUTINE = re.compile(
    r"# (oO0OoO0OoO0Oo Redis is starting|Redis version=|Configuration loaded|Server initialized"
    r"|User requested shutdown|Redis is now ready to exit)"
    r'|ERROR:  table "yoyo_tmp_\w+" does not exist'
)


def warning(line: str) -> str | None:
    """The console form of a part's log line if it is a warning or an error, else None."""
    text = line.strip()
    if not text:
        return None
    if text.startswith("{"):
        try:
            record = json.loads(text)
        except ValueError:
            record = None
        if isinstance(record, dict):
            level = str(record.get("level") or record.get("levelname") or "").upper()
            if level not in _JSON_LEVELS:
                return None
            message = record.get("message") or record.get("msg") or ""
            return f"{level} {message}"[:MAX_LINE]
    if _ROUTINE.search(text):
        return None
    if _REDIS_WARNING.match(text) or _LEVEL.search(text[:80]) or text.startswith("Traceback"):
        return text[:MAX_LINE]
    return None


def state_line(event: str, fields: dict[str, str], *, again: bool = False) -> str | None:
    """The console line for a supervisord PROCESS_STATE event, None when not worth a line."""
    state = event.removeprefix("PROCESS_STATE_")
    part = fields.get("processname", "?")
    if part in QUIET and state in ("RUNNING", "STOPPED", "EXITED"):
        return None
    if state == "RUNNING":
        return f"{part} is up{' again' if again else ''} (pid {fields.get('pid', '?')})"
    if state == "EXITED" and fields.get("expected") == "0":
        return f"WARNING {part} died (pid {fields.get('pid', '?')}); restarting it"
    if state == "BACKOFF":
        tries = fields.get("tries", "?")
        return (f"WARNING {part} exited while starting (try {tries}); "
                f"retrying in {tries} s (log: .run/logs/{part}.log)")  # fmt: skip
    if state == "FATAL":
        return f"ERROR {part} gave up after too many quick exits: see .run/logs/{part}.log"
    if state == "STOPPED":
        return f"{part} stopped"
    return None


class Repeats:
    """Shows a warning once per window; the next one after the window says how many were held."""

    def __init__(
        self, window: float = REPEAT_WINDOW_SECONDS, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.window = window
        self.clock = clock
        self._seen: dict[str, tuple[float, int]] = {}

    def admit(self, key: str, text: str) -> str | None:
        shape = re.sub(r"\d+", "#", text)  # the same warning with other numbers is a repeat
        now = self.clock()
        first, held = self._seen.get(f"{key}|{shape}", (0.0, -1))
        if held >= 0 and now - first < self.window:
            self._seen[f"{key}|{shape}"] = (first, held + 1)
            return None
        self._seen[f"{key}|{shape}"] = (now, 0)
        return f"{text} (and {held} more like it)" if held > 0 else text


def _fields(line: str) -> dict[str, str]:
    return dict(token.split(":", 1) for token in line.split() if ":" in token)


def listen(stdin: IO[str] = sys.stdin, stdout: IO[str] = sys.stdout,
           out: IO[str] = sys.stderr) -> None:  # fmt: skip
    """Serve supervisord's event protocol on stdin/stdout; print console lines to `out`."""
    repeats = Repeats()
    partial: dict[str, str] = {}
    ran: set[str] = set()

    def say(part: str, text: str) -> None:
        out.write(f"{time.strftime('%H:%M:%S')} {part:<9} {text}\n")
        out.flush()

    while True:
        stdout.write("READY\n")
        stdout.flush()
        header_line = stdin.readline()
        if not header_line:
            return  # supervisord went away
        header = _fields(header_line)
        payload = stdin.read(int(header["len"]))
        event = header.get("eventname", "")
        if event.startswith("PROCESS_STATE_"):
            fields = _fields(payload)
            part = fields.get("processname", "?")
            line = state_line(event, fields, again=part in ran)
            if event == "PROCESS_STATE_RUNNING":
                ran.add(part)
            if line is not None:
                say(part, line)
        elif event.startswith("PROCESS_LOG_"):
            head, _, data = payload.partition("\n")
            part = _fields(head).get("processname", "?")
            lines = (partial.pop(part, "") + data).split("\n")
            partial[part] = lines.pop()  # an unfinished line waits for the rest
            for raw in lines:
                text = warning(raw)
                shown = repeats.admit(part, text) if text is not None else None
                if shown is not None:
                    say(part, shown)
        stdout.write("RESULT 2\nOK")
        stdout.flush()
