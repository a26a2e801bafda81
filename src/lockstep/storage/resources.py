"""Resources of a project and their versions: every change a new immutable row numbered from
1, with its content hash, who wrote it (a person, or a run's step attempt), when and why.

Numbers are handed out by incrementing the resource's ``latest`` in SQL, which holds the
resource's row until the transaction ends: two writers at once get consecutive numbers, one
after the other, and neither is lost. A step's write is keyed by (run, step, attempt): recorded
a second time (a replayed batch) it finds the first. A new version writes its trigger outbox
row in the same transaction (``trigger_events``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from lockstep.clock import utcnow
from lockstep.errors import NotFound
from lockstep.storage import trigger_events
from lockstep.storage.rows import Base


class ResourceRow(Base):
    __tablename__ = "resources"
    __table_args__ = (UniqueConstraint("project_id", "name", name="uq_resources_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    name: Mapped[str] = mapped_column(String(63))
    description: Mapped[str | None] = mapped_column(Text, nullable=True)
    schema_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the newest version's number (0: none yet)
    latest: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[str] = mapped_column(String(32))
    created_by: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ResourceVersionRow(Base):
    __tablename__ = "resource_versions"
    __table_args__ = (
        UniqueConstraint("run_id", "step_id", "attempt", "resource_id", name="uq_resource_write"),
        Index("ix_resource_versions_run", "run_id"),
    )

    resource_id: Mapped[int] = mapped_column(ForeignKey("resources.id"), primary_key=True)
    number: Mapped[int] = mapped_column(Integer, primary_key=True)
    digest: Mapped[str] = mapped_column(String(64))
    data_json: Mapped[str] = mapped_column(Text)
    message: Mapped[str | None] = mapped_column(Text, nullable=True)
    author: Mapped[str | None] = mapped_column(String(200), nullable=True)
    run_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    step_id: Mapped[str | None] = mapped_column(String(80), nullable=True)
    attempt: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_at: Mapped[str] = mapped_column(String(32))


@dataclass(frozen=True)
class Resource:
    name: str
    schema: dict[str, Any] | None
    description: str | None
    latest: int
    created_at: str
    created_by: str | None


@dataclass(frozen=True)
class Version:
    resource: str
    number: int
    digest: str
    data: dict[str, Any]
    message: str | None
    author: str | None
    run_id: str | None
    step: str | None
    attempt: int | None
    created_at: str


@dataclass(frozen=True)
class Writer:
    """Who writes a version: a person, or a run's step attempt."""

    author: str | None = None
    run_id: str | None = None
    step: str | None = None
    attempt: int | None = None


def canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def digest(data: Any) -> str:
    return hashlib.sha256(canonical(data).encode()).hexdigest()


def _resource(row: ResourceRow) -> Resource:
    schema = json.loads(row.schema_json) if row.schema_json else None
    return Resource(row.name, schema, row.description, row.latest, row.created_at, row.created_by)


def _version(name: str, row: ResourceVersionRow) -> Version:
    return Version(
        resource=name,
        number=row.number,
        digest=row.digest,
        data=json.loads(row.data_json),
        message=row.message,
        author=row.author,
        run_id=row.run_id,
        step=row.step_id,
        attempt=row.attempt,
        created_at=row.created_at,
    )


def _row(s: Session, project: str, name: str) -> ResourceRow:
    row = s.scalar(
        select(ResourceRow).where(ResourceRow.project_id == project, ResourceRow.name == name)
    )
    if row is None:
        raise NotFound(
            f"resource '{name}' not found in project '{project}'; "
            "create it with `lockstep resources create NAME --data FILE`"
        )
    return row


def exists(s: Session, project: str, name: str) -> bool:
    query = select(ResourceRow.id).where(ResourceRow.project_id == project)
    return s.scalar(query.where(ResourceRow.name == name)) is not None


def create(
    s: Session, project: str, name: str, schema: dict[str, Any] | None, description: str | None,
    by: str | None,
) -> ResourceRow:  # fmt: skip
    row = ResourceRow(
        project_id=project,
        name=name,
        description=description,
        schema_json=canonical(schema) if schema is not None else None,
        latest=0,
        created_at=utcnow(),
        created_by=by,
    )
    s.add(row)
    s.flush()
    return row


def get(s: Session, project: str, name: str) -> Resource:
    return _resource(_row(s, project, name))


def list_all(s: Session, project: str) -> list[Resource]:
    rows = s.scalars(
        select(ResourceRow).where(ResourceRow.project_id == project).order_by(ResourceRow.name)
    )
    return [_resource(r) for r in rows]


def version(s: Session, project: str, name: str, number: int | None) -> Version:
    """Version ``number`` of the resource, or its latest (None)."""
    row = _row(s, project, name)
    wanted = row.latest if number is None else number
    found = s.get(ResourceVersionRow, (row.id, wanted)) if wanted else None
    if found is None:
        if row.latest == 0:
            raise NotFound(f"resource '{name}' has no version yet; write one first")
        raise NotFound(
            f"resource '{name}' has no version {wanted}; its versions are 1 to {row.latest}"
        )
    return _version(name, found)


def history(s: Session, project: str, name: str, limit: int = 1000) -> list[Version]:
    """Newest first."""
    row = _row(s, project, name)
    rows = s.scalars(
        select(ResourceVersionRow)
        .where(ResourceVersionRow.resource_id == row.id)
        .order_by(ResourceVersionRow.number.desc())
        .limit(limit)
    )
    return [_version(name, r) for r in rows]


def append(
    s: Session, project: str, name: str, data: dict[str, Any], writer: Writer,
    message: str | None = None,
) -> Version:  # fmt: skip
    """Record the next version of the resource (checked by the caller); a step attempt's
    second delivery of the same write returns the version its first made."""
    row = _row(s, project, name)
    if writer.run_id is not None:
        earlier = s.scalar(
            select(ResourceVersionRow).where(
                ResourceVersionRow.resource_id == row.id,
                ResourceVersionRow.run_id == writer.run_id,
                ResourceVersionRow.step_id == writer.step,
                ResourceVersionRow.attempt == writer.attempt,
            )
        )
        if earlier is not None:
            return _version(name, earlier)
    # the UPDATE holds the resource's row: a concurrent writer waits, then counts from ours
    s.execute(
        update(ResourceRow)
        .where(ResourceRow.id == row.id)
        .values(latest=ResourceRow.latest + 1)
        .execution_options(synchronize_session=False)
    )
    number = s.scalar(select(ResourceRow.latest).where(ResourceRow.id == row.id))
    assert number is not None
    previous = number - 1 if number > 1 else None
    new = ResourceVersionRow(
        resource_id=row.id,
        number=number,
        digest=digest(data),
        data_json=canonical(data),
        message=message,
        author=writer.author,
        run_id=writer.run_id,
        step_id=writer.step,
        attempt=writer.attempt,
        created_at=utcnow(),
    )
    s.add(new)
    trigger_events.add(
        s,
        project,
        trigger_events.RESOURCE,
        {"name": name, "version": number, "previous": previous},
    )
    s.flush()
    s.refresh(row)
    return _version(name, new)


def written_by(s: Session, run_id: str) -> list[Version]:
    """The versions a run's steps wrote, oldest first."""
    rows = s.execute(
        select(ResourceRow.name, ResourceVersionRow)
        .join(ResourceRow, ResourceRow.id == ResourceVersionRow.resource_id)
        .where(ResourceVersionRow.run_id == run_id)
        .order_by(ResourceVersionRow.created_at, ResourceRow.name)
    )
    return [_version(name, row) for name, row in rows]
