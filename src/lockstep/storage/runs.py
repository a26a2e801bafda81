"""Queries on runs, their steps and attempts. The only module that writes run rows."""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lockstep.engine.events import Event
from lockstep.engine.states import RUN_TERMINAL, run_can_move, step_can_move
from lockstep.errors import InvalidRequest, NotFound
from lockstep.records import (
    AttemptRecord,
    RunPage,
    RunRecord,
    RunSummary,
    SourceRecord,
    StepRecord,
)
from lockstep.storage.cache import remember
from lockstep.storage.database import utcnow
from lockstep.storage.db import ArtifactRow, AttemptRow, RunRow, StepRow
from lockstep.storage.workers import live_pools

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NewRun:
    id: str
    project: str
    workflow: str
    spec_digest: str
    spec_text: str
    source: str
    workspace: dict[str, Any]
    params: dict[str, Any]
    steps: list[tuple[str, bool]]  # (step id, is_finally) in plan order
    triggered_by: str = ""
    idempotency_key: str | None = None
    retry_of: str | None = None
    definition: str | None = None
    version: int | None = None
    sha: str | None = None
    pool: str | None = None
    no_cache: bool = False
    instance: str | None = None
    selector: str | None = None
    rerun_of: str | None = None
    rerun_policy: str | None = None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _duration(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    delta = datetime.fromisoformat(end) - datetime.fromisoformat(start)
    return round(delta.total_seconds(), 3)


def create_run(s: Session, new: NewRun) -> tuple[RunRow, bool]:
    """Insert a queued run; with an idempotency key already used, return that run instead."""
    if new.idempotency_key:
        existing = s.scalar(
            select(RunRow).where(
                RunRow.project_id == new.project, RunRow.idempotency_key == new.idempotency_key
            )
        )
        if existing is not None:
            return existing, False
    row = RunRow(
        id=new.id,
        project_id=new.project,
        workflow=new.workflow,
        status="queued",
        spec_digest=new.spec_digest,
        spec_text=new.spec_text,
        source=new.source,
        workspace_json=_dumps(new.workspace),
        params_json=_dumps(new.params),
        triggered_by=new.triggered_by,
        idempotency_key=new.idempotency_key,
        retry_of=new.retry_of,
        definition=new.definition,
        version=new.version,
        sha=new.sha,
        pool=new.pool,
        no_cache=int(new.no_cache),
        instance=new.instance,
        selector=new.selector,
        rerun_of=new.rerun_of,
        rerun_policy=new.rerun_policy,
        created_at=utcnow(),
    )
    s.add(row)
    for position, (step_id, is_finally) in enumerate(new.steps):
        s.add(
            StepRow(
                run_id=new.id,
                step_id=step_id,
                position=position,
                is_finally=int(is_finally),
                status="pending",
                attempts=0,
            )
        )
    try:
        s.flush()
    except IntegrityError:
        # a concurrent submit with the same idempotency key won the race
        s.rollback()
        existing = s.scalar(
            select(RunRow).where(
                RunRow.project_id == new.project, RunRow.idempotency_key == new.idempotency_key
            )
        )
        if existing is None:
            raise
        return existing, False
    return row, True


def get_row(s: Session, project: str, run_id: str) -> RunRow:
    row = s.get(RunRow, run_id)
    if row is None or row.project_id != project:
        raise NotFound(f"run '{run_id}' not found; list runs with `lockstep runs list`")
    return row


def to_record(s: Session, row: RunRow) -> RunRecord:
    attempts: dict[str, list[AttemptRecord]] = {}
    pools: set[str] | None = None  # live pools, looked up once and only when needed
    for a in s.scalars(
        select(AttemptRow)
        .where(AttemptRow.run_id == row.id)
        .order_by(AttemptRow.step_id, AttemptRow.attempt)
    ):
        waiting = None
        if a.status == "running" and a.worker is None and a.pool:
            # scheduled and not started: say so when no worker can take it
            pools = live_pools(s) if pools is None else pools
            waiting = None if a.pool in pools else f"waiting: no worker in pool {a.pool}"
        attempts.setdefault(a.step_id, []).append(
            AttemptRecord(
                attempt=a.attempt,
                status=a.status,
                scheduled_at=a.scheduled_at,
                started_at=a.started_at,
                finished_at=a.finished_at,
                exit_code=a.exit_code,
                worker=a.worker,
                error=a.error,
                log_key=a.log_key,
                image_digest=a.image_digest,
                image_changed_from=_previous_digest(s, row, a),
                pool=a.pool,
                waiting=waiting,
            )
        )
    steps = {
        st.step_id: StepRecord(
            status=st.status,
            attempts=st.attempts,
            outputs=_loads(st.outputs_json),
            error=st.error,
            reused_from=st.reused_from,
            cached_from=st.cached_from,
            started_at=st.started_at,
            finished_at=st.finished_at,
            duration_s=_duration(st.started_at, st.finished_at),
            is_finally=bool(st.is_finally),
            history=attempts.get(st.step_id, []),
        )
        for st in s.scalars(
            select(StepRow).where(StepRow.run_id == row.id).order_by(StepRow.position)
        )
    }
    return RunRecord(
        id=row.id,
        project=row.project_id,
        workflow=row.workflow,
        status=row.status,
        params=_loads(row.params_json) or {},
        outputs=_loads(row.outputs_json),
        error=row.error,
        source=row.source,
        spec_digest=row.spec_digest,
        triggered_by=row.triggered_by,
        idempotency_key=row.idempotency_key,
        retry_of=row.retry_of,
        definition=row.definition,
        version=row.version,
        sha=row.sha,
        sources=_sources(row.workspace_json),
        pool=row.pool,
        instance=row.instance,
        selector=row.selector,
        rerun_of=row.rerun_of,
        rerun_policy=row.rerun_policy,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        duration_s=_duration(row.started_at, row.finished_at),
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


def _sources(workspace_json: str) -> list[SourceRecord]:
    workspace = _loads(workspace_json) or {}
    return [
        SourceRecord(repo=s["repo"], ref=s["ref"], sha=s["sha"], path=s["path"])
        for s in workspace.get("sources") or []
    ]


def _encode_cursor(row: RunRow) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at}|{row.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created, run_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("invalid cursor; pass the next_cursor of a previous page") from exc
    return created, run_id


def list_runs(
    s: Session,
    project: str,
    *,
    status: str | None = None,
    workflow: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> RunPage:
    query = select(RunRow).where(RunRow.project_id == project)
    if status:
        query = query.where(RunRow.status == status)
    if workflow:
        query = query.where(RunRow.workflow == workflow)
    if cursor:
        created, run_id = _decode_cursor(cursor)
        query = query.where(
            or_(
                RunRow.created_at < created,
                and_(RunRow.created_at == created, RunRow.id < run_id),
            )
        )
    rows = list(
        s.scalars(query.order_by(RunRow.created_at.desc(), RunRow.id.desc()).limit(limit + 1))
    )
    items = [
        RunSummary(
            id=r.id,
            project=r.project_id,
            workflow=r.workflow,
            status=r.status,
            created_at=r.created_at,
            finished_at=r.finished_at,
            duration_s=_duration(r.started_at, r.finished_at),
            error=r.error,
            triggered_by=r.triggered_by,
        )
        for r in rows[:limit]
    ]
    return RunPage(
        items=items, next_cursor=_encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    )


def apply_events(s: Session, run_id: str, events: list[Event]) -> None:
    """Record what the engine reports. Idempotent: a replayed batch changes nothing."""
    run = s.get(RunRow, run_id)
    if run is None:
        log.warning("recorder.unknown_run", extra={"run_id": run_id})
        return
    if run.status in RUN_TERMINAL:
        return  # replay of a batch that already finished the run
    for ev in events:
        _apply(s, run, ev)


def _apply(s: Session, run: RunRow, ev: Event) -> None:
    if ev.kind == "run_started":
        if run_can_move(run.status, "running"):
            run.status, run.started_at = "running", ev.at
        return
    if ev.kind == "run_finished":
        assert ev.status is not None
        if run_can_move(run.status, ev.status):
            run.outputs_json = None if ev.outputs is None else _dumps(ev.outputs)
            run.error = ev.error
            run.started_at = run.started_at or ev.at
            run.finished_at = ev.at
            s.flush()  # children first: once the run is terminal the triggers freeze them
            run.status = ev.status
        return
    assert ev.step is not None
    step = s.get(StepRow, (run.id, ev.step))
    if step is None:
        log.warning("recorder.unknown_step", extra={"run_id": run.id, "step": ev.step})
        return
    if ev.kind == "attempt_started":
        assert ev.attempt is not None
        if s.get(AttemptRow, (run.id, ev.step, ev.attempt)) is not None:
            return
        s.add(
            AttemptRow(
                run_id=run.id,
                step_id=ev.step,
                attempt=ev.attempt,
                status="running",
                scheduled_at=ev.at,
                log_key=ev.log_key or "",
                pool=ev.pool,
            )
        )
        if step_can_move(step.status, "running"):
            step.status = "running"
            step.attempts = max(step.attempts, ev.attempt)
            step.started_at = step.started_at or ev.at
            step.error = None
        if run_can_move(run.status, "running"):
            run.status, run.started_at = "running", run.started_at or ev.at
    elif ev.kind == "attempt_finished":
        attempt = s.get(AttemptRow, (run.id, ev.step, ev.attempt))
        if attempt is None or attempt.status != "running":
            return
        result = ev.result
        attempt.status = ev.status or "failed"
        attempt.finished_at = ev.at
        if result is not None:
            attempt.exit_code = result.exit_code
            attempt.worker = result.worker or None
            attempt.started_at = result.started_at or None
            attempt.error = result.error
            attempt.image_digest = result.image_digest
            if ev.cache_key and ev.status == "succeeded":
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
                            paths_json=_dumps(ref.paths),
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
        step.outputs_json = None if ev.outputs is None else _dumps(ev.outputs)
        step.error = ev.error
        step.reused_from = ev.reused_from
        step.cached_from = ev.cached_from
        step.finished_at = ev.at
        if ev.status == "succeeded" and ev.reused_from:
            step.started_at = step.started_at or ev.at


def mark_failed_to_start(s: Session, run_id: str, error: str) -> None:
    run = s.get(RunRow, run_id)
    if run is not None and run_can_move(run.status, "failed"):
        now = utcnow()
        for st in s.scalars(select(StepRow).where(StepRow.run_id == run_id)):
            if st.status == "pending":
                st.status, st.finished_at = "cancelled", now
        run.error, run.finished_at = error, now
        s.flush()
        run.status = "failed"


def unfinished_run_ids(s: Session) -> list[str]:
    return list(s.scalars(select(RunRow.id).where(RunRow.status.in_(("queued", "running")))))
