"""Deployments of pipelines: plans, deploys, rollbacks, pause/resume/delete, and reads.

Reading needs ``deployments:read``; every change ``deployments:write``. Each change is an
event of the deployment (who, when, why) and, as every mutating call, in the audit log.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lockstep.api.deps import Access, Services, require, services
from lockstep.spec.names import ENV_NAME_PATTERN

router = APIRouter(tags=["deployments"])
Svc = Annotated[Services, Depends(services)]
Read = Annotated[Access, Depends(require("deployments:read"))]
Write = Annotated[Access, Depends(require("deployments:write"))]
NamePath = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]
PlanPath = Annotated[str, Path(pattern=r"^[0-9a-f]{16}$")]
Short = Annotated[str, StringConstraints(max_length=63)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN, max_length=128)]
Reason = Field(None, max_length=2000, description="why: kept with the event")
ONE = "/projects/{project}/deployments/{name}"


def _who(access: Access) -> str:
    return f"user:{access.principal.name}"


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: Annotated[str, StringConstraints(max_length=320)] | None = Field(
        None, description="DEF@SELECTOR (default: the deployed selector, resolved again)"
    )
    placement: dict[Short, Short] = Field(
        default_factory=dict, max_length=500, description="node or group -> pool"
    )
    replicas: dict[Short, int | Short] = Field(
        default_factory=dict, max_length=500, description="node or group -> replicas (0..100)"
    )
    overrides: dict[Short, dict[EnvName, Annotated[str, StringConstraints(max_length=4096)]]] | (
        None
    ) = Field(None, max_length=500, description="node -> env values over the version's")
    recompute: bool = Field(False, description="rebuild the state of changed stateful nodes")
    reason: str | None = Reason


class DeployIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    plan: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
    reason: str | None = Reason


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: int | None = Field(None, ge=1, description="the version (default: the previous deploy)")
    reason: str | None = Reason


class ReasonIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Reason


@router.get("/projects/{project}/deployments")
async def list_deployments(svc: Svc, access: Read) -> list[dict[str, Any]]:
    return await svc.deployments.list_all(access.project)


@router.get("/projects/{project}/workloads")
async def list_workloads(
    svc: Svc,
    access: Read,
    deployment: Annotated[str | None, Query(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")] = None,
) -> list[dict[str, Any]]:
    """What runs where: a row per replica (deployment, node, worker, since, counters)."""
    return await svc.deployments.workloads(access.project, deployment)


@router.get(ONE)
async def show_deployment(name: NamePath, svc: Svc, access: Read) -> dict[str, Any]:
    """The deployment's desired state, where each node runs, and every deploy."""
    return await svc.deployments.show(access.project, name)


@router.delete(ONE, status_code=204)
async def delete_deployment(
    name: NamePath,
    svc: Svc,
    access: Write,
    reason: Annotated[str | None, Query(max_length=2000)] = None,
) -> None:
    """Stop the deployment (its replicas stop); plans, deploys and events are kept."""
    await svc.deployments.delete(access.project, name, by=_who(access), reason=reason)


@router.post(ONE + "/plans", status_code=201)
async def make_plan(name: NamePath, body: PlanIn, svc: Svc, access: Write) -> dict[str, Any]:
    """The change set a deploy would make, kept under its id; nothing runs."""
    return await svc.deployments.plan(
        access.project,
        name,
        version=body.version,
        placement=dict(body.placement),
        replicas=dict(body.replicas),
        overrides=body.overrides,
        recompute=body.recompute,
        by=_who(access),
        reason=body.reason,
    )


@router.get(ONE + "/plans/{plan_id}")
async def show_plan(name: NamePath, plan_id: PlanPath, svc: Svc, access: Read) -> dict[str, Any]:
    return await svc.deployments.get_plan(access.project, name, plan_id)


@router.post(ONE + "/deploy")
async def deploy(name: NamePath, body: DeployIn, svc: Svc, access: Write) -> dict[str, Any]:
    """Apply exactly a kept plan (409 when it is stale)."""
    return await svc.deployments.deploy(
        access.project, name, body.plan, by=_who(access), reason=body.reason
    )


@router.post(ONE + "/rollback")
async def rollback(name: NamePath, body: RollbackIn, svc: Svc, access: Write) -> dict[str, Any]:
    """Plan and deploy an earlier desired state through the same path as a deploy."""
    return await svc.deployments.rollback(
        access.project, name, to=body.to, by=_who(access), reason=body.reason
    )


@router.post(ONE + "/pause")
async def pause(name: NamePath, body: ReasonIn, svc: Svc, access: Write) -> dict[str, Any]:
    """The reconciler leaves the replicas as they are and only reports drift."""
    return await svc.deployments.set_paused(
        access.project, name, True, by=_who(access), reason=body.reason
    )


@router.post(ONE + "/resume")
async def resume(name: NamePath, body: ReasonIn, svc: Svc, access: Write) -> dict[str, Any]:
    return await svc.deployments.set_paused(
        access.project, name, False, by=_who(access), reason=body.reason
    )


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drift: Literal["reconcile", "report"] = Field(
        description="what the reconciler does with a change made outside lockstep"
    )
    reason: str | None = Reason


@router.post(ONE + "/policy")
async def set_policy(name: NamePath, body: PolicyIn, svc: Svc, access: Write) -> dict[str, Any]:
    """Set the drift policy: ``reconcile`` (converge back) or ``report`` (record only)."""
    return await svc.deployments.set_drift_policy(
        access.project, name, body.drift, by=_who(access), reason=body.reason
    )


@router.get(ONE + "/events")
async def deployment_events(
    name: NamePath,
    svc: Svc,
    access: Read,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> list[dict[str, Any]]:
    """The deployment's events (plans, deploys, rollbacks, pause…), oldest first."""
    return await svc.deployments.events(access.project, name, limit=limit)
