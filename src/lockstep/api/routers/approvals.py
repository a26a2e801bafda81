"""Approvals: the approval steps waiting in a project, one approval with its decisions, and
a person's approve or reject (only the step's approvers; 404 across projects)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api.audit import audit_detail
from lockstep.api.deps import Access, Services, require, services
from lockstep.spec.names import STEP_ID_PATTERN

router = APIRouter(tags=["approvals"])
Svc = Annotated[Services, Depends(services)]
Read = Annotated[Access, Depends(require("approvals:read"))]
Decide = Annotated[Access, Depends(require("approvals:write"))]
RunIdPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
StepPath = Annotated[str, Path(pattern=STEP_ID_PATTERN)]
ONE = "/projects/{project}/runs/{run_id}/approvals/{step}"


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(None, max_length=2000)
    input: dict[str, Any] = Field(
        default_factory=dict, description="what the approval's input schema asks (approve only)"
    )


@router.get("/projects/{project}/approvals")
async def list_approvals(
    svc: Svc,
    access: Read,
    status: Annotated[
        Literal["waiting", "approved", "rejected", "timed_out", "cancelled", "all"], Query()
    ] = "waiting",
) -> list[dict[str, Any]]:
    """The project's approval steps (waiting ones by default), oldest first."""
    found = await svc.approvals.list(access.project, None if status == "all" else status)
    return [asdict(a) for a in found]


@router.get(ONE)
async def show_approval(
    run_id: RunIdPath, step: StepPath, svc: Svc, access: Read
) -> dict[str, Any]:
    whole = await svc.runs.resolve_id(access.project, run_id)
    return asdict(await svc.approvals.get(access.project, whole, step))


@router.post(ONE + "/approve")
async def approve(
    run_id: RunIdPath,
    step: StepPath,
    body: DecisionIn,
    svc: Svc,
    access: Decide,
    request: Request,
) -> dict[str, Any]:
    """Approve; with ``input`` when the step asks for it (checked against its schema)."""
    whole = await svc.runs.resolve_id(access.project, run_id)
    audit_detail(request, run=whole, step=step, comment=body.comment, input=body.input)
    return await svc.approvals.decide(
        access.project,
        whole,
        step,
        access.principal,
        approve=True,
        comment=body.comment,
        given=body.input,
    )


@router.post(ONE + "/reject")
async def reject(
    run_id: RunIdPath,
    step: StepPath,
    body: DecisionIn,
    svc: Svc,
    access: Decide,
    request: Request,
) -> dict[str, Any]:
    """Reject: the step fails (its run too, unless it may continue on error)."""
    whole = await svc.runs.resolve_id(access.project, run_id)
    audit_detail(request, run=whole, step=step, comment=body.comment)
    return await svc.approvals.decide(
        access.project, whole, step, access.principal, approve=False, comment=body.comment
    )
