"""Reading stored fields without letting one damaged row take more than itself down.

A row becomes a record field by field through a ``FieldReader``: a field that cannot be read
(a timestamp that is none, JSON that does not parse or has the wrong shape, a status nobody
knows) falls back to empty and is named in the record's ``error``, so lists, other runs and
server start-up keep working and the damage is reported where it is.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from lockstep.records import DAMAGED as DAMAGED  # a record's status when its own is unknown

#: errors a conversion of stored values raises (pydantic's ValidationError is a ValueError)
CONVERSION_ERRORS = (ValueError, TypeError, KeyError, AttributeError)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


class FieldReader:
    """Collects what could not be read from one row."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def damaged(self, field: str, what: str) -> None:
        self.problems.append(f"{field} {what}")

    def json(self, field: str, text: str | None, shape: type | tuple[type, ...] = dict) -> Any:
        """The parsed value, or None (absent, or damaged)."""
        if text is None:
            return None
        try:
            value = json.loads(text)
        except (ValueError, TypeError):
            self.damaged(field, "is not JSON")
            return None
        if value is not None and not isinstance(value, shape):
            self.damaged(field, f"is JSON of the wrong shape ({type(value).__name__})")
            return None
        return value

    def ts(self, field: str, text: str | None) -> str | None:
        """A stored UTC timestamp, or None (absent, or damaged)."""
        if text is None:
            return None
        if not isinstance(text, str) or parse_ts(text) is None:
            self.damaged(field, f"is not a timestamp ({_short(text)})")
            return None
        return text

    def status(self, text: str, known: tuple[str, ...]) -> str:
        if text in known:
            return text
        self.damaged("status", f"is unknown ({_short(text)})")
        return DAMAGED

    def error(self, stored: str | None) -> str | None:
        """``stored``, preceded by what is damaged when anything is."""
        if not self.problems:
            return stored
        note = f"damaged record: {'; '.join(self.problems)}; the rest is shown as stored"
        return f"{note}. {stored}" if stored else note


def parse_ts(text: str) -> datetime | None:
    """A timezone-aware timestamp as stored (``...Z``), or None."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else None


def damaged_note(exc: Exception) -> str:
    """The error of a record that could not be read at all."""
    return f"damaged record: it cannot be read ({type(exc).__name__}); fix or delete the row"
