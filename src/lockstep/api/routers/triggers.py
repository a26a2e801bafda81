"""Registered triggers of a project (issue 15; pause, resume, fire and history come next)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from lockstep.api.deps import Access, Services, require, services

router = APIRouter(tags=["triggers"])
Svc = Annotated[Services, Depends(services)]


@router.get("/projects/{project}/triggers")
async def list_triggers(
    svc: Svc,
    access: Annotated[Access, Depends(require("triggers:read"))],
    definition: Annotated[str | None, Query(max_length=100)] = None,
) -> list[dict[str, Any]]:
    """Each registered trigger: its definition, id, kind, the version it runs and its spec."""
    return [asdict(t) for t in await svc.triggers.list(access.project, definition)]
