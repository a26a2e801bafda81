"""The recorder's view of run state: transitions, idempotent replays, frozen records."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from lockstep.engine.events import Event
from lockstep.engine.states import RUN_TRANSITIONS, STEP_TRANSITIONS, run_can_move, step_can_move
from lockstep.engine.types import StepResult
from lockstep.records import Cause
from lockstep.storage import recorder
from lockstep.storage import run_records as records
from lockstep.storage import runs as store
from lockstep.storage.database import Database
from lockstep.storage.rows import RunRow
from tests.harness import wait_for
from tests.postgres import Postgres


def _new(run_id: str = "r1", key: str | None = None) -> store.NewRun:
    return store.NewRun(
        id=run_id,
        project="default",
        workflow="wf",
        spec_digest="d",
        spec_text="name: wf",
        source="",
        workspace={},
        params={"a": 1},
        steps=[("a", False), ("b", False)],
        cause=Cause.manual("ann"),
        idempotency_key=key,
    )


EVENTS = [
    Event("run_started", "2026-01-01T00:00:00Z"),
    Event("attempt_started", "2026-01-01T00:00:01Z", step="a", attempt=1, log_key="r1/a/1"),
    Event(
        "attempt_finished",
        "2026-01-01T00:00:02Z",
        step="a",
        attempt=1,
        status="failed",
        result=StepResult(ok=False, exit_code=3, error="exited with code 3", worker="w1"),
    ),
    Event("attempt_started", "2026-01-01T00:00:03Z", step="a", attempt=2, log_key="r1/a/2"),
    Event(
        "attempt_finished",
        "2026-01-01T00:00:04Z",
        step="a",
        attempt=2,
        status="succeeded",
        result=StepResult(ok=True, exit_code=0, worker="w2", outputs={"x": 1}),
    ),
    Event("step_finished", "2026-01-01T00:00:04Z", step="a", status="succeeded", outputs={"x": 1}),
    Event(
        "step_finished",
        "2026-01-01T00:00:04Z",
        step="b",
        status="skipped",
        error="condition is false",
    ),
    Event("run_finished", "2026-01-01T00:00:05Z", status="succeeded", outputs={"x": 1}),
]


def test_events_build_the_record_and_replays_change_nothing(db: Database) -> None:
    with db.session() as s:
        store.create_run(s, _new())
    for split in (3, 6, len(EVENTS)):  # a replayed prefix, then the whole history again
        with db.session() as s:
            recorder.apply_events(s, "r1", EVENTS[:split])
    with db.session() as s:
        recorder.apply_events(s, "r1", EVENTS)
        record = records.to_record(s, store.get_row(s, "default", "r1"))
    assert record.status == "succeeded" and record.outputs == {"x": 1}
    a = record.steps["a"]
    assert (a.status, a.attempts, a.outputs) == ("succeeded", 2, {"x": 1})
    assert [(h.attempt, h.status, h.exit_code, h.worker) for h in a.history] == [
        (1, "failed", 3, "w1"),
        (2, "succeeded", 0, "w2"),
    ]
    assert record.steps["b"].status == "skipped"
    assert record.duration_s == 5.0


def test_an_attempt_is_timed_by_the_worker_that_ran_it(db: Database) -> None:
    # the engine heard of the end 30 s late (busy): the worker had begun its next step by then
    ran = StepResult(
        ok=True, exit_code=0, worker="w1",
        started_at="2026-01-01T00:00:01.000000Z", finished_at="2026-01-01T00:00:02.000000Z",
    )  # fmt: skip
    late = [
        Event("attempt_started", "2026-01-01T00:00:00Z", step="a", attempt=1, log_key="k"),
        Event("attempt_finished", "2026-01-01T00:00:32Z", step="a", attempt=1,
              status="succeeded", result=ran),
    ]  # fmt: skip
    with db.session() as s:
        store.create_run(s, _new())
        recorder.apply_events(s, "r1", late)
        [attempt] = records.to_record(s, store.get_row(s, "default", "r1")).steps["a"].history
    assert (attempt.started_at, attempt.finished_at) == (ran.started_at, ran.finished_at)


def test_finished_run_rows_cannot_be_changed(db: Database) -> None:
    with db.session() as s:
        store.create_run(s, _new())
        recorder.apply_events(s, "r1", EVENTS)
    with pytest.raises(DatabaseError, match="immutable"), db.session() as s:
        row = s.get(RunRow, "r1")
        assert row is not None
        row.status = "failed"


def test_idempotency_key_returns_the_first_run(db: Database) -> None:
    with db.session() as s:
        _, created = store.create_run(s, _new("r1", key="k"))
        assert created
    with db.session() as s:
        second, created = store.create_run(s, _new("r2", key="k"))
        assert not created and second.id == "r1"


@pytest.mark.parametrize(
    ("current", "new", "allowed"),
    [
        ("queued", "running", True),
        ("running", "succeeded", True),
        ("succeeded", "running", False),
        ("cancelled", "failed", False),
        ("failed", "succeeded", False),
    ],
)
def test_run_transitions(current: str, new: str, allowed: bool) -> None:
    assert run_can_move(current, new) is allowed


def test_terminal_step_states_never_move() -> None:
    for terminal in ("succeeded", "failed", "skipped", "cancelled", "upstream_failed"):
        assert terminal not in STEP_TRANSITIONS
        assert not any(step_can_move(terminal, s) for s in ("running", "pending", "failed"))
    assert "succeeded" not in RUN_TRANSITIONS


def test_a_submit_losing_the_idempotency_race_gets_the_winner(postgres: Postgres) -> None:
    # two servers submit with one key at once: the loser's insert waits on the unique index
    # until the winner commits, then gets the winner's run in a transaction still usable
    db = Database(postgres.database())
    db.open()
    got: list[object] = []

    def loser() -> None:
        try:
            with db.session() as s:
                row, created = store.create_run(s, _new("r2", key="raced"))
                got.append((row.id, created, s.scalar(select(func.count()).select_from(RunRow))))
        except Exception as exc:  # what the race used to end in: a 500
            got.append(exc)

    def waiting_on_a_lock() -> bool:
        with db.session() as s:
            query = "select count(*) from pg_stat_activity where wait_event_type = 'Lock'"
            return bool(s.scalar(text(query)))

    try:
        with db.session() as s:
            store.create_run(s, _new("r1", key="raced"))
            s.flush()
            racer = threading.Thread(target=loser)
            racer.start()
            wait_for(waiting_on_a_lock, timeout=30, what="the second insert to wait")
        racer.join(30)
        assert got == [("r1", False, 1)]
    finally:
        db.close()
