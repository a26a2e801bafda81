"""The outbox of trigger events: what upstream and resource triggers listen for — a run of a
definition finished, a tag moved, a definition got a new version — written in the same
transaction as the change, so the event exists exactly when the change does. The server hands
each to the triggers listening (``triggers/events``) and then deletes it; a crash in between
leaves it here to be handed again (the fire key makes that one run)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ForeignKey, Integer, String, Text, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lockstep.clock import utcnow
from lockstep.storage.rows import Base

#: a run of a definition finished: ``{"run_id"}``
RUN = "run"
#: a tag moved: ``{"definition", "tag", "old", "new", "move"}`` (the tag history entry)
TAG = "tag"
#: a definition got a new version: ``{"definition", "old", "new"}``
VERSION = "version"
#: a resource got a new version: ``{"name", "version", "previous"}``
RESOURCE = "resource"


class TriggerEventRow(Base):
    __tablename__ = "trigger_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    kind: Mapped[str] = mapped_column(String(16))
    data_json: Mapped[str] = mapped_column(Text)
    #: handings that failed for a reason other than an outage (a bug): given up after a few
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[str] = mapped_column(String(32))


@dataclass(frozen=True)
class TriggerEvent:
    id: int
    project: str
    kind: str
    data: dict[str, Any]
    attempts: int


def add(s: Session, project: str, kind: str, data: dict[str, Any]) -> None:
    """Record an event in the caller's transaction (it commits with the change it reports)."""
    s.add(
        TriggerEventRow(
            project_id=project,
            kind=kind,
            data_json=json.dumps(data, sort_keys=True),
            attempts=0,
            created_at=utcnow(),
        )
    )


def pending(s: Session, limit: int = 100) -> list[TriggerEvent]:
    """The events not handed on yet, oldest first."""
    rows = s.scalars(select(TriggerEventRow).order_by(TriggerEventRow.id).limit(limit))
    return [
        TriggerEvent(r.id, r.project_id, r.kind, json.loads(r.data_json), r.attempts) for r in rows
    ]


def done(s: Session, event_id: int) -> None:
    s.execute(delete(TriggerEventRow).where(TriggerEventRow.id == event_id))


def failed(s: Session, event_id: int) -> None:
    row = s.get(TriggerEventRow, event_id)
    if row is not None:
        row.attempts += 1
