"""Structured JSON logs for the API: static messages, facts in fields, no secrets.

Messages never carry listener text, passwords or tokens; the fields that could (an extra named
like a secret) are redacted by the handler's filter, whatever a caller passes by mistake.
Listener text, when a log ever needs it, goes under a field whose name starts with `personal_`,
which this filter also removes unless `keep_personal` is set.
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
    # uvicorn's own loggers (uvicorn.error propagates here) speak the same format.
    server = logging.getLogger("uvicorn")
    server.handlers = [handler]
    server.propagate = False
