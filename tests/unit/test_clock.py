"""One timestamp format for every stored, sent and shown time (``lockstep.clock``)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from lockstep.clock import format_ts, utcnow

FORMAT = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z\Z")


def test_one_format_whatever_the_datetime_is() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)  # whole seconds keep their microseconds
    assert format_ts(at) == "2026-01-02T03:04:05.000000Z"
    assert format_ts(at.replace(tzinfo=None)) == "2026-01-02T03:04:05.000000Z"  # naive = UTC
    paris = at.astimezone(timezone(timedelta(hours=1)))
    assert format_ts(paris) == "2026-01-02T03:04:05.000000Z"
    assert FORMAT.match(utcnow()) and FORMAT.match(format_ts())


def test_stamps_sort_as_text_as_they_do_in_time() -> None:
    base = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    times = [base + timedelta(microseconds=n) for n in (0, 1, 999_999, 1_000_000)]
    stamps = [format_ts(t) for t in times]
    assert stamps == sorted(stamps) and len(set(map(len, stamps))) == 1
    assert [datetime.fromisoformat(s) for s in stamps] == times
