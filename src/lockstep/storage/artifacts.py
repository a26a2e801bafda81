"""Artifact records of runs (the bytes are in the blob store)."""

from __future__ import annotations

import json

from sqlalchemy import select
from sqlalchemy.orm import Session

from lockstep.engine.types import ArtifactRef
from lockstep.errors import NotFound
from lockstep.storage.rows import ArtifactRow
from lockstep.storage.runs import get_row


def artifacts(s: Session, project: str, run_id: str) -> list[ArtifactRef]:
    """What a run's steps stored, in step then name order."""
    get_row(s, project, run_id)
    return [
        ArtifactRef(
            step=a.step_id,
            name=a.name,
            key=a.key,
            kind=a.kind,
            size=a.size,
            sha256=a.sha256,
            paths=json.loads(a.paths_json),
        )
        for a in s.scalars(
            select(ArtifactRow)
            .where(ArtifactRow.run_id == run_id)
            .order_by(ArtifactRow.step_id, ArtifactRow.name)
        )
    ]


def artifact(s: Session, project: str, run_id: str, step: str, name: str) -> ArtifactRef:
    for ref in artifacts(s, project, run_id):
        if ref.step == step and ref.name == name:
            return ref
    raise NotFound(
        f"artifact '{name}' of step '{step}' not found in run {run_id}; "
        f"list them with `lockstep runs artifacts {run_id}`"
    )
