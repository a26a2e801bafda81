"""The recorder's writes: the engine's events applied to run, step, attempt and artifact rows.

Every change goes through the one table of allowed transitions (``engine.states``), and a
batch applied twice (a replayed local activity) changes nothing the second time. A run status
that is a notification event (started, finished) writes its deliveries in the same
transaction (``storage.notifications``: the outbox).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.engine.events import Event
from lockstep.engine.states import (
    RUN_FINISHED,
    RunStatus,
    StepStatus,
    run_can_move,
    step_can_move,
)
from lockstep.errors import NotFound
from lockstep.storage import approvals, resources, trigger_events
from lockstep.storage.cache import remember
from lockstep.storage.notifications import happened, run_changed
from lockstep.storage.rows import ArtifactRow, AttemptRow, RunRow, StepRow
from lockstep.storage.runs import dump_json

log = logging.getLogger(__name__)


def apply_events(s: Session, run_id: str, events: list[Event]) -> None:
    """Record what the engine reports. Idempotent: a replayed batch changes nothing."""
    run = s.get(RunRow, run_id)
    if run is None:
        log.warning("recorder.unknown_run", extra={"run_id": run_id})
        return
    if run.status in RUN_FINISHED:
        return  # replay of a batch that already finished the run
    rows = _Rows.of(s, run.id, events)
    for ev in events:
        before = run.status
        _apply(s, run, ev, rows)
        if run.status != before:
            run_changed(s, run)


@dataclass
class _Rows:
    """The step and attempt rows a batch touches, and which of its steps have items, read
    up front, a query each (a ``Session.get`` per event flushed and queried each time)."""

    steps: dict[str, StepRow]
    attempts: dict[tuple[str, int], AttemptRow]
    #: the batch's steps that have fan-out items (only their end touches other rows)
    parents: set[str]

    @classmethod
    def of(cls, s: Session, run_id: str, events: list[Event]) -> _Rows:
        ids = sorted({ev.step for ev in events if ev.step is not None})
        if not ids:
            return cls({}, {}, set())
        steps = s.scalars(select(StepRow).where(StepRow.run_id == run_id, StepRow.step_id.in_(ids)))
        attempts = s.scalars(
            select(AttemptRow).where(AttemptRow.run_id == run_id, AttemptRow.step_id.in_(ids))
        )
        parents = s.scalars(
            select(StepRow.parent)
            .where(StepRow.run_id == run_id, StepRow.parent.in_(ids))
            .distinct()
        )
        return cls(
            {row.step_id: row for row in steps},
            {(row.step_id, row.attempt): row for row in attempts},
            {parent for parent in parents if parent is not None},
        )


def _apply(s: Session, run: RunRow, ev: Event, rows: _Rows) -> None:
    if ev.kind == "run_started":
        if run_can_move(run.status, RunStatus.RUNNING):
            run.status, run.started_at, run.changed_at = RunStatus.RUNNING, ev.at, utcnow()
        return
    if ev.kind == "run_finished":
        assert ev.status is not None
        if run_can_move(run.status, ev.status):
            run.outputs_json = None if ev.outputs is None else dump_json(ev.outputs)
            run.error = ev.error
            run.started_at = run.started_at or ev.at
            run.finished_at = ev.at
            # the writing server's now (the list's stream reads it), set while the row is
            # not yet frozen
            run.changed_at = utcnow()
            s.flush()  # children first: once the run is terminal the triggers freeze them
            run.status = ev.status
            if run.definition:  # upstream triggers listen to runs of definitions
                trigger_events.add(s, run.project_id, trigger_events.RUN, {"run_id": run.id})
        return
    assert ev.step is not None
    step = rows.steps.get(ev.step)
    if step is None:
        log.warning("recorder.unknown_step", extra={"run_id": run.id, "step": ev.step})
        return
    if ev.kind == "fanout_started":
        _add_items(s, run, step, ev)
        rows.parents.add(step.step_id)
        # its items' first events come in this batch too: read their rows once, here
        items = s.scalars(
            select(StepRow).where(StepRow.run_id == run.id, StepRow.parent == step.step_id)
        )
        rows.steps.update((item.step_id, item) for item in items)
    elif ev.kind in _GATE_EVENTS:
        _gate(s, run, step, ev)
    elif ev.kind == "attempt_started":
        assert ev.attempt is not None
        if (ev.step, ev.attempt) in rows.attempts:
            return
        rows.attempts[ev.step, ev.attempt] = added = AttemptRow(
            run_id=run.id,
            step_id=ev.step,
            attempt=ev.attempt,
            status=StepStatus.RUNNING,
            scheduled_at=ev.at,
            log_key=ev.log_key or "",
            pool=ev.pool,
        )
        s.add(added)
        if step_can_move(step.status, StepStatus.RUNNING):
            step.status = StepStatus.RUNNING
            step.attempts = max(step.attempts, ev.attempt)
            step.started_at = step.started_at or ev.at
            step.error = None
        if run_can_move(run.status, RunStatus.RUNNING):
            run.status, run.started_at = RunStatus.RUNNING, run.started_at or ev.at
    elif ev.kind == "attempt_finished":
        attempt = rows.attempts.get((ev.step, ev.attempt or 0))
        if attempt is None or attempt.status != StepStatus.RUNNING:
            return
        result = ev.result
        attempt.status = ev.status or StepStatus.FAILED
        attempt.finished_at = ev.at
        if result is not None:
            attempt.exit_code = result.exit_code
            attempt.worker = result.worker or None
            # both ends by the worker's clock: the engine hears of the end later (a busy
            # engine much later, after the worker began its next step)
            attempt.started_at = result.started_at or None
            if result.started_at and result.finished_at:
                attempt.finished_at = result.finished_at
            attempt.error = result.error
            attempt.image_digest = result.image_digest
            if ev.cache_key and ev.status == StepStatus.SUCCEEDED:
                remember(s, run.project_id, ev.cache_key, run.id, ev.step, ev.attempt or 0, result)
            for ref in result.artifacts:
                if s.get(ArtifactRow, (run.id, ev.step, ref.name)) is None:
                    s.add(
                        ArtifactRow(
                            run_id=run.id,
                            step_id=ev.step,
                            name=ref.name,
                            attempt=ev.attempt,
                            key=ref.key,
                            kind=ref.kind,
                            size=ref.size,
                            sha256=ref.sha256,
                            paths_json=dump_json(ref.paths),
                            created_at=ev.at,
                        )
                    )
        else:
            attempt.error = ev.error
        step.error = attempt.error
    elif ev.kind == "step_finished":
        assert ev.status is not None
        if not step_can_move(step.status, ev.status):
            return
        step.status = ev.status
        step.outputs_json = None if ev.outputs is None else dump_json(ev.outputs)
        step.error = ev.error
        step.reused_from = ev.reused_from
        step.cached_from = ev.cached_from
        step.finished_at = ev.at
        if ev.status == StepStatus.SUCCEEDED:  # reused, cached or noop: done without an attempt
            step.started_at = step.started_at or ev.at
            if ev.writes:
                _write(s, run, step, ev)
        if step.step_id not in rows.parents:
            return  # an item, or a step without items
        # items a fan-out never started (fail_fast, cancel) end with their step
        s.execute(
            update(StepRow)
            .where(StepRow.run_id == run.id, StepRow.parent == step.step_id)
            .where(StepRow.status == StepStatus.PENDING)
            .values(status=StepStatus.CANCELLED, error="not run", finished_at=ev.at)
            # no item row of this batch is read after its step ended: nothing to bring up
            # to date in the session (which costs a walk of every object in it)
            .execution_options(synchronize_session=False)
        )


def _write(s: Session, run: RunRow, step: StepRow, ev: Event) -> None:
    """The resource versions a step wrote, with its success (the engine checked them against
    the schemas fixed at the run's creation); keyed by run, step and attempt."""
    writer = resources.Writer(run_id=run.id, step=step.step_id, attempt=ev.attempt)
    for name, data in (ev.writes or {}).items():
        try:
            resources.append(s, run.project_id, name, data, writer)
        except NotFound:  # checked when the run was created; nothing deletes a resource
            log.warning("recorder.unknown_resource", extra={"run_id": run.id, "resource": name})


_GATE_EVENTS = frozenset({"step_waiting", "approval_decided", "approval_closed"})


def _gate(s: Session, run: RunRow, step: StepRow, ev: Event) -> None:
    """An approval or a wait: the step waits (no attempt, no worker), people decide."""
    detail = ev.detail or {}
    if ev.kind == "step_waiting":
        if step_can_move(step.status, StepStatus.WAITING):
            step.status, step.started_at = StepStatus.WAITING, step.started_at or ev.at
        if run_can_move(run.status, RunStatus.RUNNING):
            run.status, run.started_at = RunStatus.RUNNING, run.started_at or ev.at
        if ev.detail is not None:
            approvals.opened(s, run, step.step_id, detail, ev.at)
            _tell(s, run, step, "approval.requested", message=detail.get("message"))
    elif ev.kind == "approval_decided":
        approvals.decided(s, run, step.step_id, detail)
        verdict = "approved" if detail.get("approve") else "rejected"
        _tell(s, run, step, "approval.decided", by=detail.get("user"), decision=verdict)
    else:
        state = str(detail.get("state", ""))
        approvals.closed(s, run, step.step_id, state, ev.at)
        if state == "timed_out":
            _tell(s, run, step, "approval.timed_out", on_timeout=detail.get("on_timeout"))


def _tell(s: Session, run: RunRow, step: StepRow, event: str, **more: object) -> None:
    """An approval's news, to whoever subscribed (written with the change it is about)."""
    subject = {
        "run_id": run.id,
        "definition": run.definition or run.workflow,
        "instance": run.instance,
        "step": step.step_id,
        **more,
    }
    happened(s, run.project_id, event, lambda: subject)


def _add_items(s: Session, run: RunRow, step: StepRow, ev: Event) -> None:
    """A fan-out began: its step runs, and each item gets a pending row ``STEP[i]``."""
    if step_can_move(step.status, StepStatus.RUNNING):
        step.status, step.started_at = StepStatus.RUNNING, step.started_at or ev.at
    if run_can_move(run.status, RunStatus.RUNNING):
        run.status, run.started_at = RunStatus.RUNNING, run.started_at or ev.at
    known = s.scalar(
        select(func.count()).where(StepRow.run_id == run.id, StepRow.parent == step.step_id)
    )
    if known or not ev.items:
        return  # a replayed batch
    s.execute(
        insert(StepRow),
        [
            {
                "run_id": run.id,
                "step_id": f"{step.step_id}[{i}]",
                "position": step.position,
                "is_finally": step.is_finally,
                "status": StepStatus.PENDING,
                "attempts": 0,
                "parent": step.step_id,
                "item": i,
            }
            for i in range(ev.items)
        ],
    )
