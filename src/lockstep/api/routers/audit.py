"""Reading the audit log (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from lockstep.api.deps import Access, Services, require, services, superuser
from lockstep.auth.principal import Principal
from lockstep.storage import identity

router = APIRouter(tags=["audit"])
Svc = Annotated[Services, Depends(services)]
Limit = Annotated[int, Query(ge=1, le=1000)]


@router.get("/projects/{project}/audit")
async def project_audit(
    svc: Svc, access: Annotated[Access, Depends(require("audit:read"))], limit: Limit = 100
) -> list[dict[str, Any]]:
    return await svc.db.call(lambda s: identity.read_audit(s, access.project, limit=limit))


@router.get("/audit")
async def server_audit(
    svc: Svc, _: Annotated[Principal, Depends(superuser)], limit: Limit = 100
) -> list[dict[str, Any]]:
    return await svc.db.call(lambda s: identity.read_audit(s, None, limit=limit))
