"""The step cache: the latest successful attempt per (project, cache key)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.engine.types import ArtifactRef, CacheHit, StepResult
from lockstep.storage.rows import CacheEntryRow


def remember(
    s: Session, project: str, key: str, run_id: str, step: str, attempt: int, result: StepResult
) -> None:
    row = s.get(CacheEntryRow, (project, key))
    if row is None:
        row = CacheEntryRow(project_id=project, key=key)
        s.add(row)
    row.run_id, row.step_id, row.attempt = run_id, step, attempt
    row.outputs_json = json.dumps(result.outputs)
    row.artifacts_json = json.dumps([asdict(a) for a in result.artifacts])
    row.created_at = utcnow()


def lookup(s: Session, project: str, key: str, ttl_s: float | None) -> CacheHit | None:
    row = s.get(CacheEntryRow, (project, key))
    if row is None:
        return None
    if ttl_s is not None:
        made = datetime.fromisoformat(row.created_at)
        if datetime.fromisoformat(utcnow()) - made > timedelta(seconds=ttl_s):
            return None
    return CacheHit(
        run_id=row.run_id,
        step=row.step_id,
        attempt=row.attempt,
        outputs=json.loads(row.outputs_json),
        artifacts=[ArtifactRef(**a) for a in json.loads(row.artifacts_json)],
    )
