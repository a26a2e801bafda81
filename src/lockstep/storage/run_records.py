"""Rows become records here, each row on its own: a damaged field costs only the record it is
in (it is reported in that record's ``error``), never the list or the request around it."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lockstep.engine.states import RUN_STATES, STEP_STATES, StepStatus
from lockstep.records import (
    AttemptRecord,
    RunRecord,
    RunResource,
    RunSelection,
    RunSummary,
    SourceRecord,
    StepRecord,
)
from lockstep.storage import resources as resource_store
from lockstep.storage import run_causes
from lockstep.storage.damage import (
    CONVERSION_ERRORS,
    DAMAGED,
    FieldReader,
    damaged_note,
    parse_ts,
)
from lockstep.storage.rows import AttemptRow, RunRow, StepRow
from lockstep.storage.workers import live_pools


def _duration(start: str | None, end: str | None) -> float | None:
    """Seconds between two stored timestamps; None when either is absent or unreadable."""
    t0, t1 = parse_ts(start) if start else None, parse_ts(end) if end else None
    if t0 is None or t1 is None:
        return None
    return round((t1 - t0).total_seconds(), 3)


def to_record(s: Session, row: RunRow) -> RunRecord:
    """The run with its steps; a fan-out step counts its items (``list_items`` lists them)."""
    attempts = _attempts(s, row, AttemptRow.step_id.not_like("%[%"))
    counts: dict[str, dict[str, int]] = {}
    for parent, status, n in s.execute(
        select(StepRow.parent, StepRow.status, func.count())
        .where(StepRow.run_id == row.id, StepRow.parent.is_not(None))
        .group_by(StepRow.parent, StepRow.status)
    ):
        summary = counts.setdefault(str(parent), {"total": 0})
        summary[status] = n
        summary["total"] += n
    steps = {
        st.step_id: _step_record(st, attempts, counts.get(st.step_id))
        for st in s.scalars(
            select(StepRow)
            .where(StepRow.run_id == row.id, StepRow.parent.is_(None))
            .order_by(StepRow.position)
        )
    }
    try:
        return _run_record(row, steps, _resources(s, row))
    except CONVERSION_ERRORS as exc:
        # a field the reader does not check (e.g. text in an integer column): keep what is sure
        return RunRecord(
            id=row.id,
            project=row.project_id,
            workflow=str(row.workflow),
            status=DAMAGED,
            params={},
            error=damaged_note(exc),
            spec_digest=str(row.spec_digest),
            created_at="",
        )


def list_items(
    s: Session, row: RunRow, step: str, *, status: str | None, offset: int, limit: int
) -> list[StepRecord]:
    """A page of a fan-out step's items, in item order."""
    query = select(StepRow).where(StepRow.run_id == row.id, StepRow.parent == step)
    if status:
        query = query.where(StepRow.status == status)
    rows = list(s.scalars(query.order_by(StepRow.item).offset(offset).limit(limit)))
    ids = [r.step_id for r in rows]
    attempts = _attempts(s, row, AttemptRow.step_id.in_(ids)) if ids else {}
    return [_step_record(r, attempts, None) for r in rows]


def _attempts(s: Session, row: RunRow, which: Any) -> dict[str, list[AttemptRecord]]:
    attempts: dict[str, list[AttemptRecord]] = {}
    pools: set[str] | None = None  # live pools, looked up once and only when needed
    for a in s.scalars(
        select(AttemptRow)
        .where(AttemptRow.run_id == row.id, which)
        .order_by(AttemptRow.step_id, AttemptRow.attempt)
    ):
        waiting = None
        if a.status == StepStatus.RUNNING and a.worker is None and a.pool:
            # scheduled and not started: say so when no worker can take it
            pools = live_pools(s) if pools is None else pools
            waiting = None if a.pool in pools else f"waiting: no worker in pool {a.pool}"
        read = FieldReader()
        try:
            record = AttemptRecord(
                attempt=a.attempt,
                status=a.status,
                scheduled_at=read.ts("scheduled_at", a.scheduled_at) or "",
                started_at=read.ts("started_at", a.started_at),
                finished_at=read.ts("finished_at", a.finished_at),
                exit_code=a.exit_code,
                worker=a.worker,
                error=read.error(a.error),
                log_key=a.log_key,
                image_digest=a.image_digest,
                image_changed_from=_previous_digest(s, row, a),
                pool=a.pool,
                waiting=waiting,
            )
        except CONVERSION_ERRORS as exc:
            record = AttemptRecord(
                attempt=0, status=DAMAGED, scheduled_at="", log_key="", error=damaged_note(exc)
            )
        attempts.setdefault(a.step_id, []).append(record)
    return attempts


def _step_record(
    st: StepRow, attempts: dict[str, list[AttemptRecord]], items: dict[str, int] | None
) -> StepRecord:
    read = FieldReader()
    started, finished = read.ts("started_at", st.started_at), read.ts("finished_at", st.finished_at)
    try:
        return StepRecord(
            status=read.status(st.status, STEP_STATES),
            attempts=st.attempts,
            outputs=read.json("outputs", st.outputs_json, (dict, list)),
            error=read.error(st.error),
            reused_from=st.reused_from,
            cached_from=st.cached_from,
            started_at=started,
            finished_at=finished,
            duration_s=_duration(started, finished),
            is_finally=bool(st.is_finally),
            history=attempts.get(st.step_id, []),
            items=items,
            index=st.item,
        )
    except CONVERSION_ERRORS as exc:
        return StepRecord(status=DAMAGED, attempts=0, error=damaged_note(exc))


def _resources(s: Session, row: RunRow) -> list[RunResource]:
    """The versions the run read (fixed at creation), then those its steps wrote."""
    read = FieldReader()
    pins = read.json("resources", row.resources_json) or {}
    used = [
        RunResource(access="read", alias=alias, name=p["name"], version=p["version"])
        for alias, p in pins.items()
    ]
    used += [
        RunResource(access="write", name=v.resource, version=v.number, step=v.step)
        for v in resource_store.written_by(s, row.id)
    ]
    return used


def _run_record(
    row: RunRow, steps: dict[str, StepRecord], used: list[RunResource] | None = None
) -> RunRecord:
    read = FieldReader()
    started, finished = (
        read.ts("started_at", row.started_at),
        read.ts("finished_at", row.finished_at),
    )
    status = read.status(row.status, RUN_STATES)
    params = read.json("params", row.params_json)
    outputs = read.json("outputs", row.outputs_json)
    sources = _sources(read, row.workspace_json)
    created = read.ts("created_at", row.created_at) or ""
    cause = run_causes.read(read, row)
    return RunRecord(
        id=row.id,
        project=row.project_id,
        workflow=row.workflow,
        status=status,
        params=params or {},
        outputs=outputs,
        error=read.error(row.error),
        source=row.source,
        spec_digest=row.spec_digest,
        triggered_by=row.triggered_by,
        cause=cause,
        idempotency_key=row.idempotency_key,
        retry_of=row.retry_of,
        definition=row.definition,
        version=row.version,
        sha=row.sha,
        sources=sources,
        pool=row.pool,
        instance=row.instance,
        selector=row.selector,
        rerun_of=row.rerun_of,
        rerun_policy=row.rerun_policy,
        selection=_selection(read, row.selection_json),
        resources=used or [],
        created_at=created,
        started_at=started,
        finished_at=finished,
        duration_s=_duration(started, finished),
        steps=steps,
    )


def _previous_digest(s: Session, run: RunRow, attempt: AttemptRow) -> str | None:
    """The image digest of the same step in the project's previous run of this workflow, when
    it differs from ``attempt``'s (an image tag moved between runs)."""
    if attempt.image_digest is None:
        return None
    before = s.scalar(
        select(AttemptRow.image_digest)
        .join(RunRow, RunRow.id == AttemptRow.run_id)
        .where(
            RunRow.project_id == run.project_id,
            RunRow.workflow == run.workflow,
            RunRow.created_at < run.created_at,
            AttemptRow.step_id == attempt.step_id,
            AttemptRow.image_digest.is_not(None),
        )
        .order_by(RunRow.created_at.desc(), AttemptRow.attempt.desc())
        .limit(1)
    )
    return before if before is not None and before != attempt.image_digest else None


def _selection(read: FieldReader, text: str | None) -> RunSelection | None:
    value = read.json("selection", text)
    if value is None:
        return None
    try:
        return RunSelection.model_validate(value)
    except CONVERSION_ERRORS as exc:
        read.damaged("selection", f"is not a selection ({type(exc).__name__})")
        return None


def _sources(read: FieldReader, workspace_json: str) -> list[SourceRecord]:
    workspace = read.json("workspace", workspace_json) or {}
    try:
        return [
            SourceRecord(repo=s["repo"], ref=s["ref"], sha=s["sha"], path=s["path"])
            for s in workspace.get("sources") or []
        ]
    except CONVERSION_ERRORS:
        read.damaged("workspace", "has unreadable sources")
        return []


def summary(row: RunRow) -> RunSummary:
    """One line of a run list; a damaged row is listed, saying so, and costs only itself."""
    read = FieldReader()
    started, finished = (
        read.ts("started_at", row.started_at),
        read.ts("finished_at", row.finished_at),
    )
    cause = run_causes.read(read, row)
    try:
        return RunSummary(
            id=row.id,
            project=row.project_id,
            workflow=row.workflow,
            status=read.status(row.status, RUN_STATES),
            created_at=read.ts("created_at", row.created_at) or "",
            finished_at=finished,
            duration_s=_duration(started, finished),
            error=read.error(row.error),
            triggered_by=row.triggered_by,
            cause=cause,
        )
    except CONVERSION_ERRORS as exc:
        return RunSummary(
            id=row.id,
            project=row.project_id,
            workflow=str(row.workflow),
            status=DAMAGED,
            created_at="",
            error=damaged_note(exc),
        )
