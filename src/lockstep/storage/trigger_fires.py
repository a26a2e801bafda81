"""Trigger fires as stored: recorded once per (definition, trigger, fire key) — a second
delivery of one event finds the first — then finished with the run made or why none."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.errors import NotFound
from lockstep.storage.rows import DefinitionRow
from lockstep.storage.trigger_rows import TriggerFireRow

#: not yet handled: a sweep hands these to the dispatcher again (after a crash)
ACCEPTED = "accepted"
FIRED = "fired"
FILTERED = "filtered"
SKIPPED = "skipped"
FAILED = "failed"
#: a schedule's fire times Temporal dropped (the engine was away longer than catchup_window)
MISSED = "missed"
#: the longest error kept on a fire
MAX_ERROR = 2000


@dataclass(frozen=True)
class FireRecord:
    """One event a trigger received and what became of it."""

    id: str
    project: str
    definition: str
    trigger: str
    kind: str
    key: str
    status: str
    event: dict[str, Any]
    cause: dict[str, Any]
    created_at: str
    payload_digest: str | None = None
    selector: str | None = None
    instance: str | None = None
    run_id: str | None = None
    error: str | None = None
    finished_at: str | None = None


@dataclass(frozen=True)
class NewFire:
    trigger: str
    kind: str
    key: str
    event: dict[str, Any]
    cause: dict[str, Any]
    payload_digest: str | None = None
    #: what to run instead of the registered version (e.g. an instance at a pushed commit)
    selector: str | None = None
    instance: str | None = None


def record(s: Session, definition: DefinitionRow, new: NewFire) -> tuple[FireRecord, bool]:
    """Record ``new`` unless its key was seen: returns (the fire, whether it is new)."""
    existing = _by_key(s, definition, new.trigger, new.key)
    if existing is not None:
        return _out(existing, definition), False
    row = TriggerFireRow(
        id="f" + secrets.token_hex(10),
        project_id=definition.project_id,
        definition_id=definition.id,
        trigger_id=new.trigger,
        kind=new.kind,
        fire_key=new.key[:255],
        status=ACCEPTED,
        event_json=json.dumps(new.event, sort_keys=True),
        cause_json=json.dumps(new.cause, sort_keys=True),
        payload_digest=new.payload_digest,
        selector=new.selector,
        instance=new.instance,
        created_at=utcnow(),
    )
    try:
        with s.begin_nested():
            s.add(row)
    except IntegrityError:
        # a concurrent delivery of the same event won the race
        won = _by_key(s, definition, new.trigger, new.key)
        if won is None:
            raise
        return _out(won, definition), False
    return _out(row, definition), True


def finish(
    s: Session, fire_id: str, status: str, *, run_id: str | None = None, error: str | None = None
) -> FireRecord:
    row = s.get(TriggerFireRow, fire_id)
    if row is None:
        raise NotFound(f"trigger fire '{fire_id}' not found")
    row.status, row.run_id, row.finished_at = status, run_id, utcnow()
    row.error = error[:MAX_ERROR] if error else None
    return _out(row, s.get_one(DefinitionRow, row.definition_id))


def get(s: Session, fire_id: str) -> FireRecord:
    row = s.get(TriggerFireRow, fire_id)
    if row is None:
        raise NotFound(f"trigger fire '{fire_id}' not found")
    return _out(row, s.get_one(DefinitionRow, row.definition_id))


def history(
    s: Session, definition: DefinitionRow, trigger: str, limit: int = 50
) -> list[FireRecord]:
    """The trigger's fires, newest first."""
    rows = s.scalars(
        select(TriggerFireRow)
        .where(TriggerFireRow.definition_id == definition.id, TriggerFireRow.trigger_id == trigger)
        .order_by(TriggerFireRow.created_at.desc(), TriggerFireRow.id.desc())
        .limit(limit)
    )
    return [_out(r, definition) for r in rows]


@dataclass(frozen=True)
class Latest:
    """When a trigger last fired a run, and its last failed (or missed) fire (when, why)."""

    fired_at: str | None = None
    failed_at: str | None = None
    error: str | None = None


def latest(s: Session, project: str) -> dict[tuple[str, str], Latest]:
    """Per (definition, trigger) of ``project``: its last fired and last failed fire (a
    missed one counts as failed)."""
    newest = (
        select(
            TriggerFireRow.definition_id,
            TriggerFireRow.trigger_id,
            TriggerFireRow.status,
            func.max(TriggerFireRow.created_at).label("at"),
        )
        .where(
            TriggerFireRow.project_id == project,
            TriggerFireRow.status.in_((FIRED, FAILED, MISSED)),
        )
        .group_by(TriggerFireRow.definition_id, TriggerFireRow.trigger_id, TriggerFireRow.status)
        .subquery()
    )
    query = (
        select(DefinitionRow.name, TriggerFireRow)
        .join(
            newest,
            (newest.c.definition_id == TriggerFireRow.definition_id)
            & (newest.c.trigger_id == TriggerFireRow.trigger_id)
            & (newest.c.status == TriggerFireRow.status)
            & (newest.c.at == TriggerFireRow.created_at),
        )
        .join(DefinitionRow, DefinitionRow.id == TriggerFireRow.definition_id)
    )
    found: dict[tuple[str, str], Latest] = {}
    for name, row in s.execute(query):
        key = (name, row.trigger_id)
        was = found.get(key, Latest())
        if row.status == FIRED:
            found[key] = Latest(row.created_at, was.failed_at, was.error)
        elif was.failed_at is None or row.created_at > was.failed_at:
            found[key] = Latest(was.fired_at, row.created_at, row.error)
    return found


def pending(s: Session, before: str, limit: int = 200) -> list[FireRecord]:
    """Fires recorded before ``before`` but not handled (the server died between the two),
    oldest first."""
    query = (
        select(TriggerFireRow, DefinitionRow)
        .join(DefinitionRow, DefinitionRow.id == TriggerFireRow.definition_id)
        .where(TriggerFireRow.status == ACCEPTED, TriggerFireRow.created_at < before)
        .order_by(TriggerFireRow.created_at)
        .limit(limit)
    )
    return [_out(row, d) for row, d in s.execute(query)]


def _by_key(s: Session, definition: DefinitionRow, trigger: str, key: str) -> TriggerFireRow | None:
    return s.scalar(
        select(TriggerFireRow).where(
            TriggerFireRow.definition_id == definition.id,
            TriggerFireRow.trigger_id == trigger,
            TriggerFireRow.fire_key == key[:255],
        )
    )


def _out(row: TriggerFireRow, definition: DefinitionRow) -> FireRecord:
    return FireRecord(
        id=row.id,
        project=row.project_id,
        definition=definition.name,
        trigger=row.trigger_id,
        kind=row.kind,
        key=row.fire_key,
        status=row.status,
        event=json.loads(row.event_json),
        cause=json.loads(row.cause_json),
        created_at=row.created_at,
        payload_digest=row.payload_digest,
        selector=row.selector,
        instance=row.instance,
        run_id=row.run_id,
        error=row.error,
        finished_at=row.finished_at,
    )
