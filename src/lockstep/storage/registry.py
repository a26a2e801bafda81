"""Repositories, definitions, their per-ref status and versions: queries and the one place
where a scan's findings are recorded."""

from __future__ import annotations

import json
import re
import secrets as _random
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.errors import Conflict, NotFound
from lockstep.registry.scanner import ScanResult
from lockstep.storage import trigger_events
from lockstep.storage.rows import (
    DefinitionRefRow,
    DefinitionRow,
    InstanceRow,
    RepositoryRow,
    VersionRow,
    VersionSourceRow,
)


@dataclass(frozen=True)
class RefStatus:
    ref: str
    sha: str
    status: str  # valid | invalid
    errors: list[str]
    version: int | None
    scanned_at: str


@dataclass(frozen=True)
class DefinitionInfo:
    name: str
    repository: str | None
    path: str
    latest_version: int | None
    refs: list[RefStatus] = field(default_factory=list)
    archived: bool = False


def new_id(kind: str) -> str:
    return f"{kind}_{_random.token_hex(8)}"


def add_repository(
    s: Session,
    project: str,
    *,
    name: str,
    url: str,
    branches: list[str],
    tags: list[str],
    credentials: str | None,
    poll_s: int,
    webhook_secret: str | None = None,
) -> RepositoryRow:
    existing = s.scalar(
        select(RepositoryRow).where(
            RepositoryRow.project_id == project,
            RepositoryRow.name == name,
            RepositoryRow.archived_at.is_(None),
        )
    )
    if existing is not None:
        raise Conflict(f"repository '{name}' already exists in project '{project}'")
    row = RepositoryRow(
        id=new_id("repo"),
        project_id=project,
        name=name,
        url=url,
        branches_json=json.dumps(branches),
        tags_json=json.dumps(tags),
        credentials=credentials,
        poll_s=poll_s,
        created_at=utcnow(),
        webhook_secret=webhook_secret,
    )
    s.add(row)
    s.flush()
    return row


def get_repository(s: Session, project: str, name: str) -> RepositoryRow:
    row = s.scalar(
        select(RepositoryRow).where(
            RepositoryRow.project_id == project,
            RepositoryRow.name == name,
            RepositoryRow.archived_at.is_(None),
        )
    )
    if row is None:
        raise NotFound(f"repository '{name}' not found; list them with `lockstep repos list`")
    return row


def list_repositories(s: Session, project: str) -> list[RepositoryRow]:
    return list(
        s.scalars(
            select(RepositoryRow)
            .where(RepositoryRow.project_id == project, RepositoryRow.archived_at.is_(None))
            .order_by(RepositoryRow.name)
        )
    )


def all_active_repositories(s: Session) -> list[RepositoryRow]:
    return list(s.scalars(select(RepositoryRow).where(RepositoryRow.archived_at.is_(None))))


def remove_repository(s: Session, project: str, name: str) -> None:
    """Archive the repository and its definitions; versions and runs keep their history."""
    row = get_repository(s, project, name)
    now = utcnow()
    row.archived_at = now
    for d in s.scalars(select(DefinitionRow).where(DefinitionRow.repository_id == row.id)):
        d.archived_at = d.archived_at or now


def record_scan(s: Session, repo: RepositoryRow, result: ScanResult, *, error: str | None) -> None:
    repo.scanned_at = utcnow()
    repo.error = error
    if error is not None or not result.changed:
        return
    repo.refs_json = json.dumps(result.refs)
    now = utcnow()
    seen: set[tuple[str, str]] = set()
    for found in result.files:
        definition = _definition_for(s, repo, found.path, found.name)
        version: int | None = None
        if found.valid:
            version = version_for(
                s, definition.id, found.digest, found.text, found.sha, found.path, now
            )
        seen.add((definition.id, found.ref))
        ref_row = s.get(DefinitionRefRow, (definition.id, found.ref))
        if ref_row is None:
            ref_row = DefinitionRefRow(definition_id=definition.id, ref=found.ref)
            s.add(ref_row)
        ref_row.sha = found.sha
        ref_row.status = "valid" if found.valid else "invalid"
        ref_row.errors_json = json.dumps(found.errors)
        ref_row.version = version
        ref_row.scanned_at = now
    # a ref that no longer exists (deleted branch) or no longer holds the file is forgotten;
    # the versions it produced stay
    for definition in s.scalars(
        select(DefinitionRow).where(DefinitionRow.repository_id == repo.id)
    ):
        for ref_row in s.scalars(
            select(DefinitionRefRow).where(DefinitionRefRow.definition_id == definition.id)
        ):
            if (definition.id, ref_row.ref) not in seen:
                s.delete(ref_row)


def _slug(text: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return slug[:63] or "workflow"


def definition_at_path(s: Session, repository_id: str, path: str) -> DefinitionRow | None:
    """The definition scanned from the file ``path`` of a repository, if any."""
    return s.scalar(
        select(DefinitionRow).where(
            DefinitionRow.repository_id == repository_id,
            DefinitionRow.path == path,
            DefinitionRow.archived_at.is_(None),
        )
    )


def _definition_for(s: Session, repo: RepositoryRow, path: str, name: str | None) -> DefinitionRow:
    row = s.scalar(
        select(DefinitionRow).where(
            DefinitionRow.repository_id == repo.id, DefinitionRow.path == path
        )
    )
    if row is not None:
        return row
    wanted = name or _slug(path.removesuffix(".yaml"))
    taken = s.scalar(
        select(DefinitionRow.id).where(
            DefinitionRow.project_id == repo.project_id, DefinitionRow.name == wanted
        )
    )
    if taken is not None:  # the same workflow name in another repository or path
        wanted = f"{repo.name}-{_slug(path.removesuffix('.yaml'))}"[:100]
    row = DefinitionRow(
        id=new_id("def"),
        project_id=repo.project_id,
        repository_id=repo.id,
        path=path,
        name=wanted,
        created_at=utcnow(),
    )
    s.add(row)
    s.flush()
    return row


def version_for(
    s: Session, definition_id: str, digest: str, text: str, sha: str, path: str, now: str
) -> int:
    """The version with this exact content, created on first sight (next number)."""
    number = s.scalar(
        select(VersionRow.number).where(
            VersionRow.definition_id == definition_id, VersionRow.digest == digest
        )
    )
    if number is None:
        last = s.scalar(
            select(func.max(VersionRow.number)).where(VersionRow.definition_id == definition_id)
        )
        number = (last or 0) + 1
        s.add(
            VersionRow(
                definition_id=definition_id,
                number=number,
                digest=digest,
                spec_text=text,
                created_at=now,
            )
        )
        # resource triggers watching the definition's versions (a scanned commit, a commit
        # read from the mirror) fire once per version, committed with it
        definition = s.get_one(DefinitionRow, definition_id)
        data = {"definition": definition.name, "old": last, "new": number}
        trigger_events.add(s, definition.project_id, trigger_events.VERSION, data)
    if s.get(VersionSourceRow, (definition_id, number, sha)) is None:
        s.add(
            VersionSourceRow(
                definition_id=definition_id, number=number, sha=sha, path=path, seen_at=now
            )
        )
    return int(number)


def describe(s: Session, definition: DefinitionRow) -> DefinitionInfo:
    repo = s.get(RepositoryRow, definition.repository_id) if definition.repository_id else None
    latest = s.scalar(
        select(func.max(VersionRow.number)).where(VersionRow.definition_id == definition.id)
    )
    refs = [
        RefStatus(
            ref=r.ref,
            sha=r.sha,
            status=r.status,
            errors=json.loads(r.errors_json),
            version=r.version,
            scanned_at=r.scanned_at,
        )
        for r in s.scalars(
            select(DefinitionRefRow)
            .where(DefinitionRefRow.definition_id == definition.id)
            .order_by(DefinitionRefRow.ref)
        )
    ]
    return DefinitionInfo(
        name=definition.name,
        repository=repo.name if repo else None,
        path=definition.path,
        latest_version=latest,
        refs=refs,
        archived=definition.archived_at is not None,
    )


def list_definitions(s: Session, project: str) -> list[DefinitionInfo]:
    rows = s.scalars(
        select(DefinitionRow)
        .where(DefinitionRow.project_id == project, DefinitionRow.archived_at.is_(None))
        .order_by(DefinitionRow.name)
    )
    return [describe(s, d) for d in rows]


def get_definition(s: Session, project: str, name: str) -> DefinitionInfo:
    return describe(s, definition_row(s, project, name, archived=True))


def definition_row(s: Session, project: str, name: str, *, archived: bool = False) -> DefinitionRow:
    """A definition by name; ``archived``: also one whose repository was removed (history)."""
    query = select(DefinitionRow).where(
        DefinitionRow.project_id == project, DefinitionRow.name == name
    )
    if not archived:
        query = query.where(DefinitionRow.archived_at.is_(None))
    row = s.scalar(query)
    if row is None:
        raise NotFound(f"definition '{name}' not found; list them with `lockstep definitions list`")
    return row


def create_instance(
    s: Session,
    project: str,
    *,
    name: str,
    definition: str,
    ref: str,
    params: list[str],
    pool: str | None = None,
    triggers: dict[str, Any] | None = None,
) -> InstanceRow:
    target = definition_row(s, project, definition)
    if (
        s.scalar(
            select(InstanceRow.id).where(
                InstanceRow.project_id == project, InstanceRow.name == name
            )
        )
        is not None
    ):
        raise Conflict(f"instance '{name}' already exists in project '{project}'")
    row = InstanceRow(
        id=new_id("inst"),
        project_id=project,
        name=name,
        definition_id=target.id,
        ref=ref,
        params_json=json.dumps(params),
        created_at=utcnow(),
        pool=pool,
        triggers_json=json.dumps(triggers or {}, sort_keys=True, default=str),
    )
    s.add(row)
    s.flush()
    return row


def set_instance_triggers(
    s: Session, project: str, name: str, triggers: dict[str, Any]
) -> InstanceRow:
    """Replace an instance's own ``triggers:`` (an empty mapping: it has none)."""
    row = get_instance(s, project, name)
    row.triggers_json = json.dumps(triggers, sort_keys=True, default=str)
    return row


def get_instance(s: Session, project: str, name: str) -> InstanceRow:
    row = s.scalar(
        select(InstanceRow).where(InstanceRow.project_id == project, InstanceRow.name == name)
    )
    if row is None:
        raise NotFound(f"instance '{name}' not found; list them with `lockstep instances list`")
    return row


def list_instances(s: Session, project: str) -> list[dict[str, Any]]:
    out = []
    for inst in s.scalars(
        select(InstanceRow).where(InstanceRow.project_id == project).order_by(InstanceRow.name)
    ):
        definition = s.get(DefinitionRow, inst.definition_id)
        out.append(
            {
                "name": inst.name,
                "definition": definition.name if definition else None,
                "ref": inst.ref,
                "params": json.loads(inst.params_json),
                "pool": inst.pool,
                "triggers": json.loads(inst.triggers_json),
                "created_at": inst.created_at,
            }
        )
    return out


def spec_of(s: Session, definition_id: str, number: int) -> str:
    row = s.get(VersionRow, (definition_id, number))
    if row is None:
        raise NotFound(f"version {number} not found")
    return row.spec_text
