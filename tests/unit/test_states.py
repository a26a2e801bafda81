"""Run and step states are enums that are still the plain strings stored in rows, Temporal
histories and JSON: records written before the enums, and histories of runs in flight, load
the same; the finished sets and the transition table are the one writer's rule."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text
from temporalio.converter import DataConverter

from lockstep.engine.events import Event, EventBatch
from lockstep.engine.states import (
    RUN_FINISHED,
    RUN_STATES,
    STEP_FINISHED,
    STEP_STATES,
    RunStatus,
    StepStatus,
    run_can_move,
    step_can_move,
)
from lockstep.engine.types import ItemOutcome, StepResult
from lockstep.records import Cause, StepRecord
from lockstep.storage import recorder
from lockstep.storage import run_records as records
from lockstep.storage import runs as store
from lockstep.storage.database import Database

#: the strings the API, the CLI's --json and every stored row have always used
STORED_RUN = ["queued", "running", "succeeded", "failed", "cancelled"]
STORED_STEP = [
    "pending", "waiting", "running", "succeeded", "failed", "skipped", "cancelled", "upstream_failed"
]  # fmt: skip


def test_states_are_the_stored_strings_in_the_order_users_read_them() -> None:
    assert list(RUN_STATES) == STORED_RUN and list(STEP_STATES) == STORED_STEP
    assert all(isinstance(s, str) for s in (*RUN_STATES, *STEP_STATES))
    assert RunStatus("cancelled") is RunStatus.CANCELLED  # a stored string reads as a state
    assert json.dumps([RunStatus.QUEUED, StepStatus.UPSTREAM_FAILED]) == (
        '["queued", "upstream_failed"]'
    )
    assert f"{StepStatus.FAILED}" == "failed"  # messages show the word, not the enum


def test_finished_states_never_move_and_every_state_is_placed() -> None:
    assert {"succeeded", "failed", "cancelled"} == RUN_FINISHED
    assert {"succeeded", "failed", "skipped", "cancelled", "upstream_failed"} == STEP_FINISHED
    for done in RUN_FINISHED:
        assert not any(run_can_move(done, s) for s in RUN_STATES)
    for done in STEP_FINISHED:
        assert not any(step_can_move(done, s) for s in STEP_STATES)
    # plain strings (a stored row, an old history) ask the table the same as the enums
    assert run_can_move("queued", "running") and run_can_move(RunStatus.QUEUED, "running")
    assert step_can_move("running", StepStatus.RUNNING)  # a new attempt after a failed one
    assert step_can_move("pending", "upstream_failed") and not run_can_move("queued", "pending")
    # an approval or a wait waits, then ends; it never becomes an attempt
    assert step_can_move("pending", "waiting") and step_can_move("waiting", "succeeded")
    assert not step_can_move("waiting", "running")


def test_temporal_payloads_carry_plain_strings_both_ways() -> None:
    conv = DataConverter.default.payload_converter
    sent = EventBatch(
        "r1",
        [Event("step_finished", "t", step="a", status=StepStatus.SKIPPED)],
    )
    item = ItemOutcome(StepStatus.CANCELLED, error="not run")
    payloads = conv.to_payloads([sent, item])
    assert b'"status":"skipped"' in payloads[0].data.replace(b" ", b"")
    assert json.loads(payloads[1].data)["status"] == "cancelled"
    # a history written before the enums (plain strings) decodes, and compares equal
    batch, outcome = conv.from_payloads(payloads, [EventBatch, ItemOutcome])
    assert batch.events[0].status == StepStatus.SKIPPED and outcome.status == "cancelled"


def test_rows_store_plain_strings_and_old_rows_load(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'meta.db'}")
    db.open()
    new = store.NewRun(
        id="r1", project="default", workflow="wf", spec_digest="d", spec_text="name: wf",
        source="", workspace={}, params={}, steps=[("a", False)], cause=Cause.manual("ann"),
    )  # fmt: skip
    with db.session() as s:
        store.create_run(s, new)
        recorder.apply_events(
            s,
            "r1",
            [
                Event("attempt_started", "2026-01-01T00:00:01Z", step="a", attempt=1, log_key="k"),
                # the status as an old history holds it: a plain string
                Event("attempt_finished", "2026-01-01T00:00:02Z", step="a", attempt=1,
                      status="succeeded", result=StepResult(ok=True, exit_code=0)),
                Event("step_finished", "2026-01-01T00:00:02Z", step="a",
                      status=StepStatus.SUCCEEDED, outputs={}),
            ],
        )  # fmt: skip
    with db.session() as s:
        raw = s.execute(text("SELECT status FROM runs")).scalar_one()
        steps = s.execute(text("SELECT status FROM step_states")).scalars().all()
        attempts = s.execute(text("SELECT status FROM step_attempts")).scalars().all()
        record = records.to_record(s, store.get_row(s, "default", "r1"))
    assert (raw, steps, attempts) == ("running", ["succeeded"], ["succeeded"])
    assert record.status == RunStatus.RUNNING and record.steps["a"].status == "succeeded"
    assert type(record.model_dump(mode="json")["status"]) is str
    assert type(StepRecord(status=StepStatus.FAILED, attempts=1).status) is str
