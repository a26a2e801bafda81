"""The shortest time between two fires of a cron expression: what the minimum-interval check
at registration compares against LOCKSTEP_SCHEDULE_MIN_INTERVAL."""

from __future__ import annotations

import pytest

from lockstep.spec.cron import shortest_interval


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        ("* * * * *", 60),
        ("*/5 * * * * *", 5),
        ("0,30 * * * * *", 30),
        ("0 0,59 * * * *", 60),  # 00:59 then 01:00
        ("0 * * * *", 3600),
        ("@hourly", 3600),
        ("5/15 * * * *", 900),
        ("0-10 9 * * *", 60),
        ("0 0 9-17 * * *", 3600),
        ("30 2 * * *", 86400),
        ("@daily", 86400),
    ],
)
def test_the_shortest_interval_of_a_cron_expression(expression: str, seconds: float) -> None:
    assert shortest_interval(expression) == seconds
