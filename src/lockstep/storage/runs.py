"""Queries on runs, their steps and attempts. The only module that writes run rows."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.engine.states import RunStatus, StepStatus
from lockstep.errors import InvalidRequest, NotFound
from lockstep.records import Cause, CauseKind, RunFilter, RunPage
from lockstep.storage import run_causes
from lockstep.storage.rows import RunRow, StepRow
from lockstep.storage.run_records import summary


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
    cause: Cause
    idempotency_key: str | None = None
    definition: str | None = None
    version: int | None = None
    sha: str | None = None
    pool: str | None = None
    no_cache: bool = False
    instance: str | None = None
    selector: str | None = None
    rerun_policy: str | None = None
    #: a run of part of its graph: the selection (``records.RunSelection``'s JSON form)
    selection: dict[str, Any] | None = None
    #: the resource versions it reads, fixed now: alias -> {name, version}
    resources: dict[str, Any] | None = None


def _of(cause: Cause, kind: CauseKind) -> str | None:
    """The run that ``cause`` repeats, if it is of ``kind`` (kept in ``retry_of``/``rerun_of``
    as before causes, which the record and the retry's reuse read)."""
    return cause.of if cause.kind == kind else None


def dump_json(value: Any) -> str:
    """Compact JSON as stored in the run tables."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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
    now = utcnow()
    row = RunRow(
        id=new.id,
        project_id=new.project,
        workflow=new.workflow,
        status=RunStatus.QUEUED,
        spec_digest=new.spec_digest,
        spec_text=new.spec_text,
        source=new.source,
        workspace_json=dump_json(new.workspace),
        params_json=dump_json(new.params),
        triggered_by=run_causes.triggered_by(new.cause),
        idempotency_key=new.idempotency_key,
        retry_of=_of(new.cause, CauseKind.RETRY),
        definition=new.definition,
        version=new.version,
        sha=new.sha,
        pool=new.pool,
        no_cache=int(new.no_cache),
        instance=new.instance,
        selector=new.selector,
        rerun_of=_of(new.cause, CauseKind.RERUN),
        rerun_policy=new.rerun_policy,
        selection_json=None if new.selection is None else dump_json(new.selection),
        resources_json=dump_json(new.resources) if new.resources else None,
        created_at=now,
        changed_at=now,
        **run_causes.columns(new.cause),
    )
    try:
        # a savepoint: losing the race below leaves the caller's transaction usable
        with s.begin_nested():
            s.add(row)
            for position, (step_id, is_finally) in enumerate(new.steps):
                s.add(
                    StepRow(
                        run_id=new.id,
                        step_id=step_id,
                        position=position,
                        is_finally=int(is_finally),
                        status=StepStatus.PENDING,
                        attempts=0,
                    )
                )
    except IntegrityError:
        # a concurrent submit with the same idempotency key won the race (on another server
        # too: the key is unique in the database)
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


def _encode_cursor(row: RunRow) -> str:
    return base64.urlsafe_b64encode(f"{row.created_at}|{row.id}".encode()).decode()


def _decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created, run_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("invalid cursor; pass the next_cursor of a previous page") from exc
    return created, run_id


def _matching(where: RunFilter, query: Select[RunRow]) -> Select[RunRow]:
    """``query`` narrowed to the runs ``where`` lets through."""
    if where.status:
        query = query.where(RunRow.status == where.status)
    if where.workflow:
        query = query.where(RunRow.workflow == where.workflow)
    if where.definition:
        query = query.where(RunRow.definition == where.definition)
    if where.trigger:
        query = query.where(RunRow.cause_trigger == where.trigger)
    if where.cause:
        query = query.where(run_causes.kind_column == where.cause.value)
    if where.user:
        query = query.where(RunRow.triggered_by == run_causes.triggered_by_user(where.user))
    if where.prefix:
        # substr, not LIKE: '_' is a wildcard there and SQLite's LIKE ignores case
        query = query.where(func.substr(RunRow.id, 1, len(where.prefix)) == where.prefix)
    return query


def list_runs(
    s: Session,
    project: str,
    *,
    limit: int = 50,
    cursor: str | None = None,
    where: RunFilter | None = None,
    **filters: Any,
) -> RunPage:
    """A page of the project's runs, newest first, that match ``where`` (or ``filters``,
    ``RunFilter``'s fields)."""
    where = where or RunFilter(**filters)
    query = _matching(where, select(RunRow).where(RunRow.project_id == project))
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
    items = [summary(r) for r in rows[:limit]]
    return RunPage(
        items=items, next_cursor=_encode_cursor(rows[limit - 1]) if len(rows) > limit else None
    )


def changed_runs(
    s: Session, project: str, where: RunFilter, after: tuple[str, str], limit: int
) -> list[tuple[str, RunRow]]:
    """Runs of the project whose row changed after ``after`` (a change time and run id), in
    change order, with their change time. Rows that have not changed since the migration
    that added ``changed_at`` (finished runs, frozen) have none and are never listed."""
    at, run_id = after
    query = _matching(
        where,
        select(RunRow).where(
            RunRow.project_id == project,
            or_(
                RunRow.changed_at > at,
                and_(RunRow.changed_at == at, RunRow.id > run_id),
            ),
        ),
    )
    rows = s.scalars(query.order_by(RunRow.changed_at, RunRow.id).limit(limit))
    return [(str(r.changed_at), r) for r in rows]


def pending_steps(s: Session, run_id: str) -> list[str]:
    """The steps (and fan-out items) of a run that have not started."""
    query = select(StepRow.step_id).where(
        StepRow.run_id == run_id, StepRow.status == StepStatus.PENDING
    )
    return list(s.scalars(query))


def queued_run_ids(s: Session) -> list[str]:
    return list(s.scalars(select(RunRow.id).where(RunRow.status == RunStatus.QUEUED)))
