"""The registered triggers of each definition: replaced as a whole when $LIVE moves, so the
table always says which Schedules should exist (and which to remove)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.errors import NotFound
from lockstep.storage.rows import DefinitionRow
from lockstep.storage.trigger_rows import TriggerRow


@dataclass(frozen=True)
class Registered:
    """One registered trigger, as the layers above see it."""

    project: str
    definition: str
    trigger: str
    kind: str
    version: int
    spec: dict[str, Any]
    schedule_id: str
    registered_at: str
    paused_by: str | None = None
    paused_at: str | None = None
    #: the instance whose ``triggers:`` registered it, which its fires run (None: the file's)
    instance: str | None = None

    @property
    def paused(self) -> bool:
        """Whether its Schedule should stand still: paused by a person or disabled."""
        return self.paused_by is not None or self.spec.get("enabled") is False


@dataclass(frozen=True)
class Wanted:
    trigger: str
    kind: str
    spec: dict[str, Any]
    schedule_id: str


def replace(
    s: Session,
    definition: DefinitionRow,
    version: int,
    wanted: list[Wanted],
    instance: str | None = None,
) -> tuple[list[Registered], list[Registered]]:
    """Make ``wanted`` the definition's triggers (its file's, or ``instance``'s: the other
    set is left as it is), at ``version`` (a person's pause stays); returns (the registered
    ones, those no longer wanted: their Schedules go)."""
    rows = {r.trigger_id: r for r in s.scalars(_of(definition, instance))}
    names = {w.trigger for w in wanted}
    gone = [_out(r, definition) for tid, r in rows.items() if tid not in names]
    if gone:
        s.execute(
            delete(TriggerRow).where(
                TriggerRow.definition_id == definition.id,
                TriggerRow.trigger_id.in_([g.trigger for g in gone]),
            )
        )
    now = utcnow()
    kept: list[TriggerRow] = []
    for w in wanted:
        row = rows.get(w.trigger)
        if row is None:
            row = TriggerRow(
                definition_id=definition.id,
                trigger_id=w.trigger,
                project_id=definition.project_id,
                instance=instance,
            )
            s.add(row)
        row.kind, row.version, row.schedule_id = w.kind, version, w.schedule_id
        row.spec_json, row.registered_at = json.dumps(w.spec, sort_keys=True), now
        kept.append(row)
    s.flush()
    return [_out(r, definition) for r in kept], gone


def set_paused(s: Session, definition: DefinitionRow, trigger: str, by: str | None) -> Registered:
    """Pause (``by`` a person) or resume (None) a registered trigger."""
    row = s.get(TriggerRow, (definition.id, trigger))
    if row is None:
        raise NotFound(
            f"trigger '{trigger}' of '{definition.name}' is not registered "
            "(the triggers of the version $LIVE names are)"
        )
    row.paused_by, row.paused_at = (by, utcnow()) if by else (None, None)
    return _out(row, definition)


def listed(s: Session, project: str, definition: DefinitionRow | None = None) -> list[Registered]:
    """The project's registered triggers (of one definition), by definition then id."""
    query = (
        select(TriggerRow, DefinitionRow)
        .join(DefinitionRow, DefinitionRow.id == TriggerRow.definition_id)
        .where(TriggerRow.project_id == project)
        .order_by(DefinitionRow.name, TriggerRow.trigger_id)
    )
    if definition is not None:
        query = query.where(TriggerRow.definition_id == definition.id)
    return [_out(row, d) for row, d in s.execute(query)]


def every(s: Session) -> list[Registered]:
    """Every registered trigger of every project (what the Schedules must match), but those
    of an archived definition (its repository was removed): those fire no more."""
    query = (
        select(TriggerRow, DefinitionRow)
        .join(DefinitionRow, DefinitionRow.id == TriggerRow.definition_id)
        .where(DefinitionRow.archived_at.is_(None))
    )
    return [_out(row, d) for row, d in s.execute(query)]


def _of(definition: DefinitionRow, instance: str | None) -> Any:
    query = select(TriggerRow).where(TriggerRow.definition_id == definition.id)
    if instance is None:
        return query.where(TriggerRow.instance.is_(None))
    return query.where(TriggerRow.instance == instance)


def _out(row: TriggerRow, definition: DefinitionRow) -> Registered:
    return Registered(
        project=row.project_id,
        definition=definition.name,
        trigger=row.trigger_id,
        kind=row.kind,
        version=row.version,
        spec=json.loads(row.spec_json),
        schedule_id=row.schedule_id,
        registered_at=row.registered_at,
        paused_by=row.paused_by,
        paused_at=row.paused_at,
        instance=row.instance,
    )
