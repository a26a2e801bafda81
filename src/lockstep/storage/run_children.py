"""A run's children: the runs its ``workflow:`` steps started (linked by ``parent_run_id``,
``parent_step``, written once from the child's cause), and how deep a run sits under parents."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from lockstep.storage.rows import RunRow

#: a cycle in stored parents cannot be (a child is made after its parent); stop anyway
_MAX_WALK = 1000


@dataclass(frozen=True)
class ChildRef:
    step: str
    run_id: str
    status: str
    workflow: str
    created_at: str


def children(s: Session, project: str, run_id: str) -> list[ChildRef]:
    """The runs ``run_id``'s steps started, oldest first."""
    rows = s.scalars(
        select(RunRow)
        .where(RunRow.project_id == project, RunRow.parent_run_id == run_id)
        .order_by(RunRow.created_at, RunRow.id)
    )
    return [ChildRef(r.parent_step or "", r.id, r.status, r.workflow, r.created_at) for r in rows]


def of_step(s: Session, project: str, run_id: str, step: str) -> list[RunRow]:
    """The runs one step of ``run_id`` started (a retried step: one per failed try), newest
    first."""
    return list(
        s.scalars(
            select(RunRow)
            .where(
                RunRow.project_id == project,
                RunRow.parent_run_id == run_id,
                RunRow.parent_step == step,
            )
            .order_by(RunRow.created_at.desc(), RunRow.id.desc())
        )
    )


def depth(s: Session, project: str, run_id: str) -> int:
    """How many parents ``run_id`` has above it (0: nobody started it as a child)."""
    found, current = 0, run_id
    while found < _MAX_WALK:
        parent = s.scalar(
            select(RunRow.parent_run_id).where(RunRow.project_id == project, RunRow.id == current)
        )
        if parent is None:
            return found
        found, current = found + 1, parent
    return found
