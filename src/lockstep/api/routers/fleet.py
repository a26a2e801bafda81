"""The fleet seen from a project: pools, workers, capacity, and what each worker runs of it.

Per project, not server-wide: workers are shared infrastructure that any signed-in user may
list (``GET /workers``), but the work on them belongs to projects, so the route names only the
project's own step attempts and replicas (both readable by its viewers) and counts the rest.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from lockstep.api.deps import Access, Services, require, services
from lockstep.services.fleet import FleetService

router = APIRouter(tags=["workers"])
Svc = Annotated[Services, Depends(services)]
Runs = Annotated[Access, Depends(require("runs:read"))]
Deployments = Annotated[Access, Depends(require("deployments:read"))]


@router.get("/projects/{project}/fleet")
async def fleet(svc: Svc, access: Runs, _deployments: Deployments) -> dict[str, Any]:
    """Pools with their workers (live, or lost in the last hour: ``stale``), slots total and
    free over live workers, and per worker the project's step attempts and replicas on it
    (``other``: how many more of its slots are busy, naming nothing); attempts and replicas
    whose worker is not known are listed under their pool."""
    return await FleetService(svc.workers, svc.deployments, svc.runs).fleet(access.project)
