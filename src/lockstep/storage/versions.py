"""Versions as one kind of record whatever their origin (a scanned commit or a published
draft), drafts of API-published definitions, archiving, and tags with their move history.

Versions are never updated or deleted here (the database refuses it too); archiving is a row
of its own, and every tag move appends to ``tag_moves``.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.errors import Conflict, InvalidRequest, NotFound
from lockstep.storage.registry import new_id
from lockstep.storage.rows import (
    DefinitionRow,
    DraftRow,
    TagMoveRow,
    TagRow,
    VersionArchiveRow,
    VersionRow,
    VersionSourceRow,
)


class TagConflict(Conflict):
    """``--expect`` did not match: carries where the tag points now."""

    def __init__(self, message: str, current: int | None) -> None:
        super().__init__(message)
        self.current = current

    def fields(self) -> dict[str, object]:
        return {"current": self.current}


def create_api_definition(s: Session, project: str, name: str, description: str | None) -> None:
    taken = s.scalar(
        select(DefinitionRow.id).where(
            DefinitionRow.project_id == project, DefinitionRow.name == name
        )
    )
    if taken is not None:
        raise Conflict(f"definition '{name}' already exists in project '{project}'")
    s.add(
        DefinitionRow(
            id=new_id("def"),
            project_id=project,
            repository_id=None,
            path="",
            name=name,
            created_at=utcnow(),
            description=description,
        )
    )
    s.flush()


def save_draft(
    s: Session, definition: DefinitionRow, text: str, digest: str, errors: list[str], by: str
) -> DraftRow:
    row = s.get(DraftRow, definition.id)
    if row is None:
        row = DraftRow(definition_id=definition.id)
        s.add(row)
    row.spec_text, row.digest, row.errors_json = text, digest, json.dumps(errors)
    row.updated_at, row.updated_by = utcnow(), by
    s.flush()
    return row


def get_draft(s: Session, definition: DefinitionRow) -> DraftRow:
    row = s.get(DraftRow, definition.id)
    if row is None:
        raise NotFound(
            f"definition '{definition.name}' has no draft; save one with PUT …/draft "
            "or `lockstep publish FILE`"
        )
    return row


def draft_out(row: DraftRow) -> dict[str, Any]:
    errors = json.loads(row.errors_json)
    return {
        "spec": row.spec_text,
        "digest": row.digest,
        "valid": not errors,
        "errors": errors,
        "updated_at": row.updated_at,
        "updated_by": row.updated_by,
    }


def publish(
    s: Session, definition: DefinitionRow, text: str, digest: str, by: str, message: str | None
) -> tuple[int, bool]:
    """The version holding exactly ``text``: an existing one, or a new one (next number)."""
    number, new = number_for(s, definition, digest)
    if not new:
        return number, False
    s.add(
        VersionRow(
            definition_id=definition.id,
            number=number,
            digest=digest,
            spec_text=text,
            created_at=utcnow(),
            publisher=by,
            message=message,
        )
    )
    s.flush()
    return number, True


def number_for(s: Session, definition: DefinitionRow, digest: str) -> tuple[int, bool]:
    """The number of the version with content ``digest``, and whether it would be new."""
    existing = s.scalar(
        select(VersionRow.number).where(
            VersionRow.definition_id == definition.id, VersionRow.digest == digest
        )
    )
    if existing is not None:
        return int(existing), False
    last = s.scalar(
        select(func.max(VersionRow.number)).where(VersionRow.definition_id == definition.id)
    )
    return (last or 0) + 1, True


def version_row(s: Session, definition: DefinitionRow, number: int) -> VersionRow:
    row = s.get(VersionRow, (definition.id, number))
    if row is None:
        raise NotFound(
            f"version {number} of '{definition.name}' not found; list them with "
            f"`lockstep versions list {definition.name}`"
        )
    return row


def latest_number(s: Session, definition: DefinitionRow) -> int | None:
    """The newest version that is not archived."""
    archived = select(VersionArchiveRow.number).where(
        VersionArchiveRow.definition_id == definition.id
    )
    value = s.scalar(
        select(func.max(VersionRow.number)).where(
            VersionRow.definition_id == definition.id, VersionRow.number.not_in(archived)
        )
    )
    return None if value is None else int(value)


def newest_commit(s: Session, definition: DefinitionRow, number: int) -> tuple[str, str] | None:
    """(sha, path) where a git-backed version was last seen, for checking it out."""
    row = s.scalar(
        select(VersionSourceRow)
        .where(VersionSourceRow.definition_id == definition.id, VersionSourceRow.number == number)
        .order_by(VersionSourceRow.seen_at.desc(), VersionSourceRow.sha)
        .limit(1)
    )
    return None if row is None else (row.sha, row.path)


def commits_with_prefix(s: Session, definition: DefinitionRow, prefix: str) -> list[str]:
    return sorted(
        set(
            s.scalars(
                select(VersionSourceRow.sha).where(
                    VersionSourceRow.definition_id == definition.id,
                    VersionSourceRow.sha.startswith(prefix, autoescape=True),
                )
            )
        )
    )


def version_out(s: Session, definition: DefinitionRow, row: VersionRow) -> dict[str, Any]:
    sources = [
        {"sha": src.sha, "path": src.path, "seen_at": src.seen_at}
        for src in s.scalars(
            select(VersionSourceRow)
            .where(
                VersionSourceRow.definition_id == definition.id,
                VersionSourceRow.number == row.number,
            )
            .order_by(VersionSourceRow.seen_at)
        )
    ]
    archived = s.get(VersionArchiveRow, (definition.id, row.number))
    tags = sorted(
        s.scalars(
            select(TagRow.name).where(
                TagRow.definition_id == definition.id, TagRow.version == row.number
            )
        )
    )
    return {
        "definition": definition.name,
        "number": row.number,
        "digest": row.digest,
        "created_at": row.created_at,
        "origin": "git" if definition.repository_id else "published",
        "publisher": row.publisher,
        "message": row.message,
        "sources": sources,
        "tags": tags,
        "archived": archived is not None,
    }


def list_versions(
    s: Session, definition: DefinitionRow, *, archived: bool = False
) -> list[dict[str, Any]]:
    hidden = set(
        s.scalars(
            select(VersionArchiveRow.number).where(VersionArchiveRow.definition_id == definition.id)
        )
    )
    rows = s.scalars(
        select(VersionRow)
        .where(VersionRow.definition_id == definition.id)
        .order_by(VersionRow.number)
    )
    return [version_out(s, definition, r) for r in rows if archived or r.number not in hidden]


def archive_version(s: Session, definition: DefinitionRow, number: int, by: str) -> None:
    version_row(s, definition, number)
    pointing = sorted(
        s.scalars(
            select(TagRow.name).where(
                TagRow.definition_id == definition.id, TagRow.version == number
            )
        )
    )
    if pointing:
        raise Conflict(
            f"version {number} of '{definition.name}' is tagged {', '.join(pointing)}; "
            "move the tags first"
        )
    if s.get(VersionArchiveRow, (definition.id, number)) is None:
        s.add(
            VersionArchiveRow(
                definition_id=definition.id, number=number, archived_at=utcnow(), archived_by=by
            )
        )


# -- tags ----------------------------------------------------------------------------------


def tag_target(s: Session, definition: DefinitionRow, tag: str) -> int | None:
    row = s.get(TagRow, (definition.id, tag))
    return None if row is None else row.version


def move_tag(
    s: Session,
    definition: DefinitionRow,
    tag: str,
    number: int,
    *,
    by: str,
    expect: int | None,
    expect_unset: bool = False,
    reason: str | None = None,
) -> tuple[int | None, bool]:
    """Point ``tag`` at version ``number``; returns (previous target, moved).

    Callers serialise moves (one DB writer, and a row lock on databases that have them), so
    the compare-and-set of ``expect`` holds under concurrency."""
    version_row(s, definition, number)
    row = s.scalar(
        select(TagRow)
        .where(TagRow.definition_id == definition.id, TagRow.name == tag)
        .with_for_update()
    )
    current = None if row is None else row.version
    if (expect is not None or expect_unset) and current != expect:
        where = "is not set" if current is None else f"points at version {current}"
        raise TagConflict(
            f"{tag} of '{definition.name}' {where}, not "
            f"{'unset' if expect is None else f'version {expect}'}; "
            "check `lockstep tags history` and retry with the current target",
            current,
        )
    if current == number:
        return current, False
    now = utcnow()
    if row is None:
        row = TagRow(definition_id=definition.id, name=tag, moves=0)
        s.add(row)
    row.version, row.moves, row.moved_at, row.moved_by = number, row.moves + 1, now, by
    s.add(
        TagMoveRow(
            definition_id=definition.id,
            tag=tag,
            from_version=current,
            to_version=number,
            moved_by=by,
            moved_at=now,
            reason=reason,
        )
    )
    s.flush()
    return current, True


def list_tags(s: Session, definition: DefinitionRow) -> list[dict[str, Any]]:
    return [
        {"tag": r.name, "version": r.version, "moved_at": r.moved_at, "moved_by": r.moved_by}
        for r in s.scalars(
            select(TagRow).where(TagRow.definition_id == definition.id).order_by(TagRow.name)
        )
    ]


def tag_history(s: Session, definition: DefinitionRow, tag: str | None) -> list[dict[str, Any]]:
    query = select(TagMoveRow).where(TagMoveRow.definition_id == definition.id)
    if tag is not None:
        query = query.where(TagMoveRow.tag == tag)
    return [
        {
            "tag": m.tag,
            "from": m.from_version,
            "to": m.to_version,
            "by": m.moved_by,
            "at": m.moved_at,
            "reason": m.reason,
        }
        for m in s.scalars(query.order_by(TagMoveRow.id))
    ]


def check_publishable(definition: DefinitionRow) -> None:
    if definition.repository_id is not None:
        raise InvalidRequest(
            f"definition '{definition.name}' comes from a repository: push to it instead "
            "of publishing"
        )
