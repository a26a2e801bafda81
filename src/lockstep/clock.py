"""Timestamps as lockstep stores, sends and shows them: ISO 8601 in UTC with microseconds and
``Z``, e.g. ``2026-01-02T03:04:05.000006Z``. One format everywhere, so stored times sort as
text and every reader parses them the same way. Stdlib only: the workflow sandbox, the CLI's
light reads and every store import it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def format_ts(ts: datetime | None = None) -> str:
    """``ts`` (now when None) in the one format; a naive datetime is taken to be UTC."""
    if ts is None:
        ts = datetime.now(UTC)
    elif ts.tzinfo is None:
        ts = ts.replace(tzinfo=UTC)
    else:
        ts = ts.astimezone(UTC)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utcnow() -> str:
    """Now, in the one format."""
    return format_ts()


def parse_ts(text: str) -> datetime:
    """A timestamp as the records write them (or any ISO 8601 one), back to a datetime; a
    ``Z`` suffix is UTC. ValueError when it is not one."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
