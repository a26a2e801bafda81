"""Approvals as stored: the row of each approval step that waited (written by the recorder,
the one writer of run state, from the engine's events) and the reads the approvals service
makes of them."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lockstep.errors import Conflict, NotFound
from lockstep.storage.rows import Base, RunRow, StepRow

WAITING = "waiting"


class ApprovalRow(Base):
    __tablename__ = "approvals"
    __table_args__ = (Index("ix_approvals_project_status", "project_id", "status"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id"), primary_key=True)
    step_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    #: waiting, approved, rejected, timed_out, cancelled
    status: Mapped[str] = mapped_column(String(16))
    ask_json: Mapped[str] = mapped_column(Text)
    decisions_json: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[str] = mapped_column(String(32))
    deadline: Mapped[str | None] = mapped_column(String(32), nullable=True)
    closed_at: Mapped[str | None] = mapped_column(String(32), nullable=True)


@dataclass(frozen=True)
class Approval:
    """One approval step of a run: what it asks, who decided what, how it stands."""

    project: str
    run_id: str
    step: str
    workflow: str
    status: str
    approvers: list[str]
    required: int
    allow_self: bool
    message: str | None
    input_schema: dict[str, Any] | None
    requested_at: str
    deadline: str | None
    on_timeout: str
    started_by: str | None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    closed_at: str | None = None


# -- the recorder's writes


def opened(s: Session, run: RunRow, step: str, ask: dict[str, Any], at: str) -> None:
    if s.get(ApprovalRow, (run.id, step)) is not None:
        return  # a replayed batch
    s.add(
        ApprovalRow(
            run_id=run.id,
            step_id=step,
            project_id=run.project_id,
            status=WAITING,
            ask_json=json.dumps(ask, sort_keys=True),
            decisions_json="[]",
            requested_at=at,
            deadline=ask.get("deadline"),
        )
    )


def decided(s: Session, run: RunRow, step: str, decision: dict[str, Any]) -> None:
    row = s.get(ApprovalRow, (run.id, step))
    if row is None:
        return
    decisions = json.loads(row.decisions_json)
    if any(d.get("user") == decision.get("user") for d in decisions):
        return  # a replayed batch
    row.decisions_json = json.dumps([*decisions, decision], sort_keys=True)


def closed(s: Session, run: RunRow, step: str, state: str, at: str) -> None:
    row = s.get(ApprovalRow, (run.id, step))
    if row is not None and row.status == WAITING:
        row.status, row.closed_at = state, at


# -- reads


def listed(s: Session, project: str, status: str | None = WAITING) -> list[Approval]:
    query = (
        select(ApprovalRow, RunRow)
        .join(RunRow, RunRow.id == ApprovalRow.run_id)
        .where(ApprovalRow.project_id == project)
        .order_by(ApprovalRow.requested_at, ApprovalRow.run_id, ApprovalRow.step_id)
    )
    if status is not None:
        query = query.where(ApprovalRow.status == status)
    return [_out(row, run) for row, run in s.execute(query)]


def get(s: Session, project: str, run_id: str, step: str) -> Approval:
    row = s.get(ApprovalRow, (run_id, step))
    run = s.get(RunRow, run_id)
    if row is None or run is None or row.project_id != project:
        raise NotFound(
            f"run {run_id} has no approval step '{step}'; list waiting ones with "
            "`lockstep approvals list`"
        )
    return _out(row, run)


def decisions_of(s: Session, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """The decisions on each approval step of ``run_id`` that has any, in the order made."""
    query = select(ApprovalRow.step_id, ApprovalRow.decisions_json).where(
        ApprovalRow.run_id == run_id
    )
    found = {step: json.loads(text) for step, text in s.execute(query)}
    return {step: made for step, made in found.items() if made}


def to_decide(s: Session, project: str, run_id: str, step: str) -> Approval:
    """The approval a person means to decide: a step of the run that never waited (pending
    behind its ``needs``, say) is a Conflict naming its state; no such step is NotFound."""
    if s.get(ApprovalRow, (run_id, step)) is None:
        run = s.get(RunRow, run_id)
        row = s.get(StepRow, (run_id, step)) if run is not None else None
        if run is not None and row is not None and run.project_id == project:
            raise Conflict(
                f"step '{step}' of run {run_id} is not waiting for approval: it is {row.status}"
            )
    return get(s, project, run_id, step)


def _out(row: ApprovalRow, run: RunRow) -> Approval:
    ask = json.loads(row.ask_json)
    by = run.triggered_by or ""
    return Approval(
        project=row.project_id,
        run_id=row.run_id,
        step=row.step_id,
        workflow=run.workflow,
        status=row.status,
        approvers=list(ask.get("approvers") or []),
        required=int(ask.get("required") or 1),
        allow_self=bool(ask.get("allow_self", True)),
        message=ask.get("message"),
        input_schema=ask.get("input_schema"),
        requested_at=row.requested_at,
        deadline=row.deadline,
        on_timeout=str(ask.get("on_timeout") or "fail"),
        started_by=by.removeprefix("user:") if by.startswith("user:") else None,
        decisions=json.loads(row.decisions_json),
        closed_at=row.closed_at,
    )
