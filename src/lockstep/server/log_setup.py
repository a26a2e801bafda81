"""The server's and workers' own log: each record is an event with a stable dotted name
(``worker.report_failed``) and its fields (``extra=``), written to stderr as text or as one
JSON object a line for a log pipeline. Control characters are escaped either way."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from lockstep.clock import format_ts

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: what every LogRecord has; anything else on a record is a field its caller passed
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields = {k: v for k, v in vars(record).items() if k not in _STANDARD}
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        fields["error"] = f"{type(exc).__name__}: {exc}"
    return fields


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": format_ts(),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
            "logger": record.name,
            **_fields(record),
        }
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        pairs = " ".join(f"{k}={json.dumps(v, default=str)}" for k, v in _fields(record).items())
        line = f"{record.levelname} {record.getMessage()} {pairs}".rstrip()
        return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", line)


def configure(fmt: str, level: str) -> None:
    """Send lockstep's log records to stderr in ``fmt`` from ``level`` up."""
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger("lockstep")
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    root.propagate = False
