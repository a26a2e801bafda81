"""Cron expressions as a ``schedule`` trigger's ``cron:`` takes them, checked before anything runs.

Five fields (minute hour day-of-month month day-of-week) or six (a leading seconds field), or
one of the ``@`` shorthands. Temporal parses the expression again when the schedule is made;
checking here gives the user a position and a reason instead of a server error, and
``temporal_cron`` spells a six-field expression the way Temporal reads it (its own six-field
form ends with a year, not starts with seconds).
"""

from __future__ import annotations

import re
from itertools import pairwise

MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
_DAYS = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]
# (name, low, high, names that stand for numbers starting at low)
_FIELDS: list[tuple[str, int, int, list[str]]] = [
    ("minute", 0, 59, []),
    ("hour", 0, 23, []),
    ("day of month", 1, 31, []),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, _DAYS),  # 7 is Sunday too, as in most crons
]
_SECONDS: tuple[str, int, int, list[str]] = ("second", 0, 59, [])
_ITEM = re.compile(r"^(\*|[a-z0-9]+(?:-[a-z0-9]+)?)(?:/(\d+))?$")
MAX_CRON = 200


def _number(text: str, low: int, high: int, names: list[str]) -> int | None:
    if text.isdigit():
        value = int(text)
    elif text in names:
        value = names.index(text) + (low if names is _MONTHS else 0)
    else:
        return None
    return value if low <= value <= high else None


def _field_problem(text: str, name: str, low: int, high: int, names: list[str]) -> str:
    for item in text.lower().split(","):
        match = _ITEM.match(item)
        if not match:
            return f"{name} field '{text}' is not a value, range, list or step"
        base, step = match.group(1), match.group(2)
        if step is not None and int(step) == 0:
            return f"{name} field '{text}' has a step of 0"
        if base == "*":
            continue
        bounds = base.split("-")
        values = [_number(b, low, high, names) for b in bounds]
        if any(v is None for v in values):
            return f"{name} field '{text}' is outside {low}-{high}"
        low_end, high_end = values[0], values[-1]
        if low_end is not None and high_end is not None and low_end > high_end:
            return f"{name} field '{text}' has a range that runs backwards"
    return ""


def cron_problem(expression: str) -> str:
    """Why ``expression`` is not a cron expression lockstep accepts, or '' when it is."""
    text = expression.strip()
    if len(text) > MAX_CRON:
        return f"is longer than {MAX_CRON} characters"
    if text.startswith("@"):
        if text.lower() in MACROS:
            return ""
        return f"'{text[:40]}' is not one of {', '.join(MACROS)}"
    parts = text.split()
    if len(parts) not in (5, 6):
        return (
            f"has {len(parts)} fields; write 5 (minute hour day-of-month month day-of-week) "
            "or 6 (seconds first), e.g. '*/15 * * * *'"
        )
    fields = _FIELDS if len(parts) == 5 else [_SECONDS, *_FIELDS]
    for part, (name, low, high, names) in zip(parts, fields, strict=True):
        problem = _field_problem(part, name, low, high, names)
        if problem:
            return problem
    return ""


def temporal_cron(expression: str) -> str:
    """``expression`` (already checked) as Temporal's ``cron_expressions`` reads it."""
    text = expression.strip()
    if text.startswith("@"):
        return MACROS[text.lower()]
    parts = text.split()
    # Temporal's 6-field form is "minute ... day-of-week year"; its 7-field form starts with
    # seconds, so a seconds-first expression gets an explicit "every year".
    return text if len(parts) == 5 else f"{text} *"


def _values(text: str, low: int, high: int, names: list[str]) -> set[int]:
    """The values a checked field stands for."""
    out: set[int] = set()
    for item in text.lower().split(","):
        match = _ITEM.match(item)
        assert match is not None  # checked by cron_problem
        base, step = match.group(1), int(match.group(2) or 1)
        if base == "*":
            start, end = low, high
        else:
            bounds = [_number(b, low, high, names) or low for b in base.split("-")]
            # "5/15" runs from 5 to the field's end; "5" alone is just 5
            start, end = (
                bounds[0],
                bounds[-1] if len(bounds) > 1 or match.group(2) is None else high,
            )
        out.update(range(start, end + 1, step))
    return out


def _gap(values: set[int], period: int, wraps: bool) -> int | None:
    ordered = sorted(values)
    gaps = [b - a for a, b in pairwise(ordered)]
    if wraps:  # the next field lets the next period follow at once: past the end, round again
        gaps.append(period - ordered[-1] + ordered[0])
    return min(gaps) if gaps else None


def _follows(values: set[int], period: int) -> bool:
    return any((v + 1) % period in values for v in values)


def shortest_interval(expression: str) -> float:
    """The shortest time between two fires of a checked expression, in seconds (a lower
    bound: days of the month and week are taken to follow one another)."""
    text = expression.strip()
    text = MACROS.get(text.lower(), text)
    parts = text.split()
    seconds = {0} if len(parts) == 5 else _values(parts[0], 0, 59, [])
    minute, hour = (parts[-5], parts[-4])
    minutes = _values(minute, 0, 59, [])
    hours = _values(hour, 0, 23, [])
    units = [
        (seconds, 60, 1, _follows(minutes, 60)),
        (minutes, 60, 60, _follows(hours, 24)),
        (hours, 24, 3600, True),
    ]
    for values, period, scale, wraps in units:
        gap = _gap(values, period, wraps)
        if gap is not None:
            return float(gap * scale)
    return 86400.0
