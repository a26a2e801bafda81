"""Registered triggers of a project, paused and resumed by a person (issue 15; fire,
history and backfill come next)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query

from lockstep.api.deps import Access, Services, require, services

router = APIRouter(tags=["triggers"])
Svc = Annotated[Services, Depends(services)]
Write = Annotated[Access, Depends(require("triggers:write"))]
DefName = Annotated[str, Path(max_length=100)]
TriggerId = Annotated[str, Path(max_length=63)]


@router.get("/projects/{project}/triggers")
async def list_triggers(
    svc: Svc,
    access: Annotated[Access, Depends(require("triggers:read"))],
    definition: Annotated[str | None, Query(max_length=100)] = None,
) -> list[dict[str, Any]]:
    """Each registered trigger: its definition, id, kind, the version it runs, its spec, who
    paused it, and when it fires next and fired last."""
    listed = await svc.triggers.list(access.project, definition)
    return [{**asdict(t), **await svc.triggers.fire_times(t)} for t in listed]


@router.post("/projects/{project}/triggers/{definition}/{trigger}/pause")
async def pause_trigger(
    definition: DefName, trigger: TriggerId, svc: Svc, access: Write
) -> dict[str, Any]:
    """No fires until resumed, whatever versions go live meanwhile."""
    got = await svc.triggers.pause(access.project, definition, trigger, _who(access))
    return asdict(got)


@router.post("/projects/{project}/triggers/{definition}/{trigger}/resume")
async def resume_trigger(
    definition: DefName, trigger: TriggerId, svc: Svc, access: Write
) -> dict[str, Any]:
    got = await svc.triggers.resume(access.project, definition, trigger, _who(access))
    return asdict(got)


def _who(access: Access) -> str:
    return f"user:{access.principal.name}"
