"""Reading the audit log (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from lockstep.api.deps import Access, Services, require, services, superuser
from lockstep.auth.principal import Principal

router = APIRouter(tags=["audit"])
Svc = Annotated[Services, Depends(services)]
Limit = Annotated[int, Query(ge=1, le=1000)]
#: the next page: entries older than the one with this ``id`` (the last one of a page)
Before = Annotated[int | None, Query(ge=1, le=2**62)]


@router.get("/projects/{project}/audit")
async def project_audit(
    svc: Svc,
    access: Annotated[Access, Depends(require("audit:read"))],
    limit: Limit = 100,
    before: Before = None,
) -> list[dict[str, Any]]:
    return await svc.audit.read(access.project, limit=limit, before=before)


@router.get("/audit")
async def server_audit(
    svc: Svc, _: Annotated[Principal, Depends(superuser)], limit: Limit = 100, before: Before = None
) -> list[dict[str, Any]]:
    return await svc.audit.read(None, limit=limit, before=before)
