"""A schedule trigger as written in workflow.yaml becomes the Temporal Schedule that fires it:
every timing field (cron, every, timezone, jitter, start_at/end_at, overlap, catchup_window)
reaches Temporal's spec and policy as written, and the Schedule starts the fire workflow."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from temporalio.client import ScheduleActionStartWorkflow, ScheduleOverlapPolicy

from lockstep.engine.triggered import FireRequest
from lockstep.spec.load import load_spec
from lockstep.spec.triggers import ScheduleTrigger
from lockstep.triggers import schedules

HEAD = """\
name: nightly
steps:
  build:
    run: echo hi
triggers:
  nightly:
"""

REQUEST = FireRequest(
    project="p", definition="nightly", trigger="nightly", selector="nightly@3", params={}
)


def _trigger(fields: str) -> ScheduleTrigger:
    text = HEAD + "".join(f"    {line.strip()}\n" for line in fields.strip().splitlines())
    trigger = load_spec(text, "w.yaml").spec.triggers["nightly"]
    assert isinstance(trigger, ScheduleTrigger)
    return trigger


def test_every_timing_field_reaches_the_schedule_as_written() -> None:
    trigger = _trigger(
        """
        cron: '30 2 * * mon-fri'
        timezone: Europe/Paris
        jitter: 5m
        catchup_window: 1h
        start_at: '2027-01-01T00:00:00+02:00'
        end_at: '2027-06-30T12:00:00Z'
        """
    )
    built = schedules.build(REQUEST, trigger, "control.triggers")
    spec, policy = built.spec, built.policy
    assert spec.cron_expressions == ["30 2 * * mon-fri"]
    assert spec.intervals == []
    assert spec.time_zone_name == "Europe/Paris"
    assert spec.jitter == timedelta(minutes=5)
    # an offset is kept as the same instant
    assert spec.start_at == datetime(2026, 12, 31, 22, 0, tzinfo=UTC)
    assert spec.end_at == datetime(2027, 6, 30, 12, 0, tzinfo=UTC)
    assert policy.catchup_window == timedelta(hours=1)
    assert policy.overlap == ScheduleOverlapPolicy.SKIP  # the default
    assert built.state.paused is False

    action = built.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "lockstep.TriggerFired"
    assert action.task_queue == "control.triggers"
    assert action.id == schedules.schedule_id("p", "nightly", "nightly") + "-fire"


def test_an_interval_with_no_optional_field_leaves_temporal_its_defaults() -> None:
    built = schedules.build(REQUEST, _trigger("every: 15m"), "q")
    assert [i.every for i in built.spec.intervals] == [timedelta(minutes=15)]
    assert built.spec.cron_expressions == []
    assert built.spec.time_zone_name == "UTC"
    assert (built.spec.jitter, built.spec.start_at, built.spec.end_at) == (None, None, None)
    # no catchup_window: none sent, so Temporal's own (a year) holds, as the README says
    assert built.policy.catchup_window is None


def test_a_naive_start_at_is_read_as_utc_and_seconds_first_cron_gets_a_year() -> None:
    built = schedules.build(
        REQUEST, _trigger("cron: '*/10 * * * * *'\nstart_at: '2027-01-01T08:00:00'"), "q"
    )
    assert built.spec.start_at == datetime(2027, 1, 1, 8, 0, tzinfo=UTC)
    assert built.spec.cron_expressions == ["*/10 * * * * * *"]


@pytest.mark.parametrize(
    ("written", "temporal"),
    [
        ("skip", ScheduleOverlapPolicy.SKIP),
        ("buffer_one", ScheduleOverlapPolicy.BUFFER_ONE),
        ("allow", ScheduleOverlapPolicy.ALLOW_ALL),
        ("cancel_other", ScheduleOverlapPolicy.CANCEL_OTHER),
    ],
)
def test_each_overlap_value_is_temporals_policy_of_that_name(
    written: str, temporal: ScheduleOverlapPolicy
) -> None:
    built = schedules.build(REQUEST, _trigger(f"every: 1h\noverlap: {written}"), "q")
    assert built.policy.overlap == temporal


def test_a_disabled_or_paused_trigger_builds_a_paused_schedule_saying_why() -> None:
    disabled = schedules.build(REQUEST, _trigger("every: 1h\nenabled: false"), "q")
    assert (disabled.state.paused, disabled.state.note) == (True, "disabled (enabled: false)")
    paused = schedules.build(REQUEST, _trigger("every: 1h"), "q", paused=True)
    assert (paused.state.paused, paused.state.note) == (True, "paused")
