"""Deployments as stored: each deployment's desired state and generation, the plans made for
it, every deploy (a revision, so rollback can find an earlier desired state), and its events
(who, when, what, why). The deployment service is the only caller."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from lockstep.clock import utcnow
from lockstep.errors import Conflict, NotFound
from lockstep.storage.rows import Base

PLANNED, DEPLOYED, ROLLED_BACK = "planned", "deployed", "rolled_back"
PAUSED, RESUMED, DELETED = "paused", "resumed", "deleted"
POLICY = "policy_changed"
#: the reconciler's: a change made outside lockstep, and what it did about it
DRIFT = "drift"
#: what the reconciler does with drift
DRIFT_POLICIES = ("reconcile", "report")
#: the reconciler's: the deployment's summary changed (e.g. now waiting for a pool)
STATUS = "status"


class DeploymentRow(Base):
    __tablename__ = "deployments"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    name: Mapped[str] = mapped_column(String(63), primary_key=True)
    definition: Mapped[str] = mapped_column(String(100))
    #: +1 on every deploy; a plan records the generation it was computed against
    generation: Mapped[int] = mapped_column(Integer)
    #: ``deployments.model.Desired`` as JSON; None once deleted
    desired_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    paused: Mapped[int] = mapped_column(Integer, default=0)
    drift_policy: Mapped[str] = mapped_column(String(16), default="reconcile")
    created_at: Mapped[str] = mapped_column(String(32))
    updated_at: Mapped[str] = mapped_column(String(32))
    deleted_at: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: what the reconciler last saw, per node (``deployments.status``), and when
    status_json: Mapped[str | None] = mapped_column(Text, nullable=True)
    observed_at: Mapped[str | None] = mapped_column(String(32), nullable=True)


class DeploymentPlanRow(Base):
    __tablename__ = "deployment_plans"
    __table_args__ = (Index("ix_deployment_plans_deployment", "project_id", "deployment"),)

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    id: Mapped[str] = mapped_column(String(16), primary_key=True)
    deployment: Mapped[str] = mapped_column(String(63))
    base_generation: Mapped[int] = mapped_column(Integer)
    plan_json: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[str] = mapped_column(String(32))
    #: the generation its deploy made (None: not deployed)
    applied_generation: Mapped[int | None] = mapped_column(Integer, nullable=True)


class DeploymentRevisionRow(Base):
    """One deploy: the desired state it made current, by which plan, who and why."""

    __tablename__ = "deployment_revisions"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"), primary_key=True)
    deployment: Mapped[str] = mapped_column(String(63), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, primary_key=True)
    plan_id: Mapped[str] = mapped_column(String(16))
    action: Mapped[str] = mapped_column(String(16))
    desired_json: Mapped[str] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(64))
    at: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class DeploymentEventRow(Base):
    __tablename__ = "deployment_events"
    __table_args__ = (Index("ix_deployment_events_deployment", "project_id", "deployment", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id"))
    deployment: Mapped[str] = mapped_column(String(63))
    at: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    detail_json: Mapped[str] = mapped_column(Text)


# -- reads


def find(s: Session, project: str, name: str) -> DeploymentRow | None:
    return s.get(DeploymentRow, (project, name))


def live(s: Session, project: str, name: str) -> DeploymentRow:
    """A deployment that exists (not deleted), or NotFound."""
    row = find(s, project, name)
    if row is None or row.deleted_at is not None:
        raise NotFound(f"deployment '{name}' not found; make one with `lockstep plan {name}`")
    return row


def out(row: DeploymentRow) -> dict[str, Any]:
    return {
        "name": row.name,
        "definition": row.definition,
        "generation": row.generation,
        "desired": json.loads(row.desired_json) if row.desired_json else None,
        "paused": bool(row.paused),
        "drift_policy": row.drift_policy,
        "state": "deleted" if row.deleted_at else ("paused" if row.paused else "active"),
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "deleted_at": row.deleted_at,
        "status": _observed(row),
        "observed_at": row.observed_at,
    }


def _observed(row: DeploymentRow) -> dict[str, Any] | None:
    """What the reconciler last saw; None before its first round (of this deployment's life)."""
    status: dict[str, Any] = json.loads(row.status_json) if row.status_json else {}
    return status if "summary" in status else None


def list_deployments(s: Session, project: str) -> list[dict[str, Any]]:
    query = (
        select(DeploymentRow)
        .where(DeploymentRow.project_id == project, DeploymentRow.deleted_at.is_(None))
        .order_by(DeploymentRow.name)
    )
    return [out(r) for r in s.scalars(query)]


def get_plan(s: Session, project: str, name: str, plan_id: str) -> dict[str, Any]:
    row = s.get(DeploymentPlanRow, (project, plan_id))
    if row is None or row.deployment != name:
        raise NotFound(f"plan '{plan_id}' of deployment '{name}' not found; make one first")
    plan: dict[str, Any] = json.loads(row.plan_json)
    return {**plan, "applied_generation": row.applied_generation, "created_by": row.created_by}


def revisions(s: Session, project: str, name: str) -> list[dict[str, Any]]:
    """Every deploy of the deployment, newest first."""
    query = (
        select(DeploymentRevisionRow)
        .where(DeploymentRevisionRow.project_id == project)
        .where(DeploymentRevisionRow.deployment == name)
        .order_by(DeploymentRevisionRow.generation.desc())
    )
    return [
        {
            "generation": r.generation,
            "plan": r.plan_id,
            "action": r.action,
            "desired": json.loads(r.desired_json),
            "by": r.by,
            "at": r.at,
            "reason": r.reason,
        }
        for r in s.scalars(query)
    ]


def events(s: Session, project: str, name: str, *, limit: int) -> list[dict[str, Any]]:
    """The deployment's events, oldest first (the newest ``limit``)."""
    query = (
        select(DeploymentEventRow)
        .where(DeploymentEventRow.project_id == project, DeploymentEventRow.deployment == name)
        .order_by(DeploymentEventRow.id.desc())
        .limit(limit)
    )
    rows = list(s.scalars(query))
    return [
        {
            "id": r.id,
            "at": r.at,
            "actor": r.actor,
            "kind": r.kind,
            "reason": r.reason,
            **json.loads(r.detail_json),
        }
        for r in reversed(rows)
    ]


# -- writes


def add_event(
    s: Session,
    project: str,
    name: str,
    kind: str,
    actor: str,
    reason: str | None,
    detail: dict[str, Any],
) -> None:
    s.add(
        DeploymentEventRow(
            project_id=project,
            deployment=name,
            at=utcnow(),
            actor=actor,
            kind=kind,
            reason=reason,
            detail_json=json.dumps(detail, sort_keys=True),
        )
    )


def save_plan(s: Session, project: str, plan: dict[str, Any], by: str, reason: str | None) -> None:
    """Keep a plan (the same plan asked for twice is kept once) and its ``planned`` event."""
    if s.get(DeploymentPlanRow, (project, plan["id"])) is None:
        s.add(
            DeploymentPlanRow(
                project_id=project,
                id=plan["id"],
                deployment=plan["deployment"],
                base_generation=plan["base_generation"],
                plan_json=json.dumps(plan, sort_keys=True),
                created_by=by,
                created_at=utcnow(),
            )
        )
    detail = {"plan": plan["id"], "version": plan["desired"]["version"]}
    add_event(s, project, plan["deployment"], PLANNED, by, reason, detail)


def apply(
    s: Session,
    project: str,
    plan: dict[str, Any],
    *,
    action: str,
    by: str,
    reason: str | None,
) -> int:
    """Make the plan's desired state the deployment's, in one transaction with the check that
    nothing was deployed since the plan was made; returns the new generation."""
    name = plan["deployment"]
    row = find(s, project, name)
    generation = row.generation if row is not None else 0
    if generation != plan["base_generation"]:
        raise Conflict(
            f"plan {plan['id']} is stale: deployment '{name}' is at generation {generation}, "
            f"the plan was made at {plan['base_generation']}; make a new plan"
        )
    now = utcnow()
    desired = plan["desired"]
    if row is None:
        row = DeploymentRow(
            project_id=project, name=name, created_at=now, paused=0, drift_policy="reconcile"
        )
        s.add(row)
    if row.deleted_at is not None:  # made again: no status of the deleted one is shown, but
        # the replicas it still had are kept for the reconciler to stop (or adopt)
        before = json.loads(row.status_json) if row.status_json else {}
        row.status_json = json.dumps({"replicas": before.get("replicas", [])})
        row.observed_at = None
    row.definition = desired["definition"]
    row.generation = generation + 1
    row.desired_json = json.dumps(desired, sort_keys=True)
    row.updated_at = now
    row.deleted_at = None
    s.add(
        DeploymentRevisionRow(
            project_id=project,
            deployment=name,
            generation=row.generation,
            plan_id=plan["id"],
            action=action,
            desired_json=row.desired_json,
            by=by,
            at=now,
            reason=reason,
        )
    )
    stored = s.get(DeploymentPlanRow, (project, plan["id"]))
    if stored is not None:
        stored.applied_generation = row.generation
    detail = {"plan": plan["id"], "generation": row.generation, "version": desired["version"]}
    add_event(
        s, project, name, ROLLED_BACK if action == "rollback" else DEPLOYED, by, reason, detail
    )
    return row.generation


def set_paused(
    s: Session, project: str, name: str, paused: bool, by: str, reason: str | None
) -> dict[str, Any]:
    row = live(s, project, name)
    if bool(row.paused) != paused:
        row.paused = int(paused)
        row.updated_at = utcnow()
        add_event(s, project, name, PAUSED if paused else RESUMED, by, reason, {})
    return out(row)


def set_drift_policy(
    s: Session, project: str, name: str, policy: str, by: str, reason: str | None
) -> dict[str, Any]:
    row = live(s, project, name)
    if row.drift_policy != policy:
        detail = {"from": row.drift_policy, "to": policy}
        row.drift_policy = policy
        row.updated_at = utcnow()
        add_event(s, project, name, POLICY, by, reason or f"drift policy {policy}", detail)
    return out(row)


def delete(s: Session, project: str, name: str, by: str, reason: str | None) -> None:
    """The deployment stops (no desired replicas); its plans, revisions and events stay."""
    row = live(s, project, name)
    row.deleted_at = row.updated_at = utcnow()
    row.desired_json = None
    row.generation += 1  # plans made before the delete are stale
    add_event(s, project, name, DELETED, by, reason, {"generation": row.generation})


def record_status(s: Session, project: str, name: str, status: dict[str, Any]) -> bool:
    """Keep what the reconciler saw; an event when its summary changed. Whether the deployment
    is still there (False: deleted, its controller ends)."""
    row = find(s, project, name)
    if row is None or row.deleted_at is not None:
        return False
    before = json.loads(row.status_json) if row.status_json else {}
    row.status_json = json.dumps(status, sort_keys=True)
    row.observed_at = utcnow()
    if before.get("summary") != status.get("summary"):
        detail = {"generation": row.generation, "summary": status.get("summary")}
        add_event(s, project, name, STATUS, "reconciler", status.get("summary"), detail)
    return True


def live_names(s: Session) -> list[tuple[str, str]]:
    """(project, name) of every deployment not deleted: each has a controller."""
    query = select(DeploymentRow.project_id, DeploymentRow.name).where(
        DeploymentRow.deleted_at.is_(None)
    )
    return [(p, n) for p, n in s.execute(query)]
