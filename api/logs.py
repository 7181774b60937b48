"""Structured JSON logs for the API: static messages, facts in fields, no secrets.

Messages never carry listener text, passwords or tokens; the fields that could (an extra named
like a secret) are redacted by the handler's filter, whatever a caller passes by mistake.
Listener text, when a log ever needs it, goes under a field whose name starts with `personal_`,
which this filter also removes unless `keep_personal` is set.

Lines we do not write, uvicorn's request lines above all, are scrubbed too: anything shaped like
a JWT, a bearer credential, or the value of a `token=` / `ticket=` / `password=` query parameter
becomes `[redacted]`, in the message and in every string field, before any handler sees it.
"""

from __future__ import annotations

import logging
import re
import sys

from pythonjsonlogger.json import JsonFormatter

SECRET_FIELD = re.compile(r"pass|secret|token|authorization|api_key|cookie|jwt", re.IGNORECASE)
REDACTED = "[redacted]"
_HANDLER_FLAG = "_radio24_api"
# Standard LogRecord attributes: never treated as extras.
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_CREDENTIALS = (
    # A JWT: three base64url parts, the first a JSON header ("eyJ" is `{"`).
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"), REDACTED),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',]+"), r"\1" + REDACTED),
    (
        re.compile(
            r"(?i)([?&;](?:token|ticket|access_token|jwt|password|passwd|secret|api_key|key)=)"
            r"[^&\s\"'#]+"
        ),
        r"\1" + REDACTED,
    ),
)


def scrub(text: str) -> str:
    """`text` with every credential-shaped piece replaced by `[redacted]`."""
    for pattern, replacement in _CREDENTIALS:
        text = pattern.sub(replacement, text)
    return text


class Redact(logging.Filter):
    def __init__(self, keep_personal: bool = False) -> None:
        super().__init__()
        self.keep_personal = keep_personal

    def filter(self, record: logging.LogRecord) -> bool:
        for key in list(vars(record)):
            if key in _RECORD_FIELDS:
                continue
            if SECRET_FIELD.search(key):
                setattr(record, key, REDACTED)
            elif key.startswith("personal_") and not self.keep_personal:
                delattr(record, key)
            elif isinstance(value := getattr(record, key), str):
                setattr(record, key, scrub(value))
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a caller's bad format: log it as it came
            message = str(record.msg)
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # Formatters re-render exc_info when they have it: keep only the scrubbed text.
            record.exc_text, record.exc_info = scrub(record.exc_text), None
        return True


def formatter() -> logging.Formatter:
    return JsonFormatter(
        "%(asctime)s %(levelname)s %(name)s %(message)s",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
    )


def configure(level: str = "INFO", fmt: str = "json") -> None:
    """Send the radio24 and uvicorn loggers to stderr as JSON (or text); idempotent."""
    handler = logging.StreamHandler(sys.stderr)
    setattr(handler, _HANDLER_FLAG, True)
    handler.addFilter(Redact())
    if fmt == "json":
        handler.setFormatter(formatter())
    station = logging.getLogger("radio24")
    station.handlers = [h for h in station.handlers if not getattr(h, _HANDLER_FLAG, False)]
    station.addHandler(handler)
    station.setLevel(level.upper())
    # uvicorn's own loggers speak the same format through the same filter: uvicorn.error
    # propagates to "uvicorn"; uvicorn.access has a handler of its own, replaced here.
    for name in ("uvicorn", "uvicorn.access"):
        server = logging.getLogger(name)
        server.handlers = [handler]
        server.propagate = False
