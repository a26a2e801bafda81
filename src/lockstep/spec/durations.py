"""Durations as users write them (``90``, ``2s``, ``10m``, ``1h30m``, ``7d``), held as seconds."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, WithJsonSchema

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: A duration longer than this is certainly a typo (and would overflow timers).
MAX_SECONDS = 366 * 86400.0


def parse_duration(value: Any) -> float:
    """Return seconds for ``value``; raise ``ValueError`` with a user-facing message."""
    if isinstance(value, bool):
        raise ValueError("a duration must be a number of seconds or a string like '30s', '10m'")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if re.fullmatch(r"\d+(?:\.\d+)?", text):
            seconds = float(text)
        else:
            pos, seconds = 0, 0.0
            for match in _PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValueError(f"'{value}' is not a duration; write e.g. '30s', '10m', '1h30m'")
    else:
        raise ValueError("a duration must be a number of seconds or a string like '30s', '10m'")
    if seconds < 0 or seconds > MAX_SECONDS:
        raise ValueError(f"duration {value!r} is out of range (0 to 366d)")
    return seconds


def format_duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s".replace(".0s", "s")
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number", "minimum": 0},
                {
                    "type": "string",
                    "pattern": r"^\s*(\d+(\.\d+)?)(ms|s|m|h|d)?(\d+(\.\d+)?(ms|s|m|h|d))*\s*$",
                },
            ],
            "description": "seconds, or a string like '30s', '10m', '1h30m'",
        }
    ),
]
