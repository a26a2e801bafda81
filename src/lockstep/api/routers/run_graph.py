"""A run's graph (steps, what each comes after, kinds): what the web UI draws as a DAG."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from lockstep.api.deps import Services, services
from lockstep.api.routers.runs import BASE, Read, RunId

router = APIRouter(tags=["runs"])
Svc = Annotated[Services, Depends(services)]


@router.get(BASE + "/{run_id}/graph")
async def run_graph(run_id: RunId, svc: Svc, access: Read) -> dict[str, Any]:
    """The run's steps and the steps each comes after, from the spec it was recorded with
    (it never changes: a client asks once per run)."""
    return await svc.runs.graph(access.project, run_id)
