"""Queries on runs, their steps and attempts. The only module that writes run rows."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lockstep.engine.states import run_can_move
from lockstep.errors import InvalidRequest, NotFound
from lockstep.records import (
    AttemptRecord,
    RunPage,
    RunRecord,
    RunSummary,
    SourceRecord,
    StepRecord,
)
from lockstep.storage.database import utcnow
from lockstep.storage.db import AttemptRow, RunRow, StepRow
from lockstep.storage.workers import live_pools


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


def dump_json(value: Any) -> str:
    """Compact JSON as stored in the run tables."""
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
        workspace_json=dump_json(new.workspace),
        params_json=dump_json(new.params),
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


#: how many runs an ambiguous id prefix names in its error
_CANDIDATES = 5


def resolve_id(s: Session, project: str, ref: str) -> str:
    """The id of the run of ``project`` that ``ref`` names: its whole id, or a prefix of
    exactly one id. Runs of other projects are never considered."""
    row = s.get(RunRow, ref)
    if row is not None and row.project_id == project:
        return ref
    # substr, not LIKE: '_' is a wildcard there and SQLite's LIKE ignores case
    match = (RunRow.project_id == project) & (func.substr(RunRow.id, 1, len(ref)) == ref)
    ids = list(s.scalars(select(RunRow.id).where(match).order_by(RunRow.id).limit(_CANDIDATES + 1)))
    if len(ids) == 1:
        return ids[0]
    if not ids:
        get_row(s, project, ref)  # the one "not found" message
    total = s.scalar(select(func.count()).select_from(RunRow).where(match)) or 0
    shown = ", ".join(ids[:_CANDIDATES]) + (", …" if total > _CANDIDATES else "")
    raise InvalidRequest(
        f"run id '{ref}' is ambiguous: it starts {total} run ids ({shown}); give more of the id"
    )


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
    return _run_record(row, steps)


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
    return attempts


def _step_record(
    st: StepRow, attempts: dict[str, list[AttemptRecord]], items: dict[str, int] | None
) -> StepRecord:
    return StepRecord(
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
        items=items,
        index=st.item,
    )


def _run_record(row: RunRow, steps: dict[str, StepRecord]) -> RunRecord:
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
