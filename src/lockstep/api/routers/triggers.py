"""Registered triggers of a project: listed, paused and resumed, fired by a person, and the
history of their fires."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api.deps import Access, Services, require, services

router = APIRouter(tags=["triggers"])
Svc = Annotated[Services, Depends(services)]
Write = Annotated[Access, Depends(require("triggers:write"))]
DefName = Annotated[str, Path(max_length=100)]
#: a file's trigger id, or an instance's ``<instance>/<id>`` (hence ``{trigger:path}``)
TriggerId = Annotated[str, Path(max_length=200)]


@router.get("/projects/{project}/triggers")
async def list_triggers(
    svc: Svc,
    access: Annotated[Access, Depends(require("triggers:read"))],
    definition: Annotated[str | None, Query(max_length=100)] = None,
) -> list[dict[str, Any]]:
    """Each registered trigger: its definition, id, kind, the version it runs, its spec, who
    paused it, when it fires next (schedules) and fired last, and its last failed fire."""
    return await svc.triggers.overview(access.project, definition)


@router.post("/projects/{project}/triggers/{definition}/{trigger:path}/pause")
async def pause_trigger(
    definition: DefName, trigger: TriggerId, svc: Svc, access: Write
) -> dict[str, Any]:
    """No fires until resumed, whatever versions go live meanwhile."""
    got = await svc.triggers.pause(access.project, definition, trigger, _who(access))
    return asdict(got)


@router.post("/projects/{project}/triggers/{definition}/{trigger:path}/resume")
async def resume_trigger(
    definition: DefName, trigger: TriggerId, svc: Svc, access: Write
) -> dict[str, Any]:
    got = await svc.triggers.resume(access.project, definition, trigger, _who(access))
    return asdict(got)


class FireIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: dict[str, Any] = Field(
        default_factory=dict, max_length=100, description="params that win over the trigger's"
    )
    args: list[Annotated[str, Field(max_length=100_000)]] = Field(
        default_factory=list,
        max_length=100,
        description="params as key=value, typed by the version's params schema (like a run's "
        "-p); they win over 'params'",
    )


@router.post("/projects/{project}/triggers/{definition}/{trigger:path}/fire")
async def fire_trigger(
    definition: DefName, trigger: TriggerId, body: FireIn, svc: Svc, access: Write
) -> dict[str, Any]:
    """Fire a trigger now, as a person (recorded as a manual run of it; a paused trigger
    fires too): the fire, with the run it made or why none."""
    params = {**body.params, **await _typed(svc, access.project, definition, trigger, body.args)}
    fire = await svc.dispatcher.fire_manually(
        access.project, definition, trigger, params, access.principal.name
    )
    return asdict(fire)


async def _typed(
    svc: Services, project: str, definition: str, trigger: str, args: list[str]
) -> dict[str, Any]:
    """``key=value`` pairs typed by the params schema of the version the trigger runs."""
    if not args:
        return {}
    from lockstep.spec.params import parse_cli_params

    registered = await svc.triggers.registered(project, definition, trigger)
    got = await svc.versions.resolve(project, f"{definition}@{registered.version}")
    return parse_cli_params(args, got.params_schema())


class BackfillIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    start: datetime = Field(alias="from", description="the first fire time (UTC if no zone)")
    end: datetime = Field(alias="to", description="the last fire time, included")


@router.post("/projects/{project}/triggers/{definition}/{trigger:path}/backfill")
async def backfill_trigger(
    definition: DefName, trigger: TriggerId, body: BackfillIn, svc: Svc, access: Write
) -> dict[str, Any]:
    """Fire a schedule trigger now for each of its fire times in a range that has passed (at
    most 1000), under its overlap policy: one run per time, none for a time that has one."""
    times = await svc.triggers.backfill(access.project, definition, trigger, body.start, body.end)
    return {"definition": definition, "trigger": trigger, "times": times}


@router.get("/projects/{project}/triggers/{definition}/{trigger:path}/history")
async def trigger_history(
    definition: DefName,
    trigger: TriggerId,
    svc: Svc,
    access: Annotated[Access, Depends(require("triggers:read"))],
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[dict[str, Any]]:
    """The trigger's fires, newest first: each event's key, what became of it (fired,
    filtered, skipped, failed, or accepted and not yet handled), its run or its error."""
    return [
        asdict(f) for f in await svc.triggers.history(access.project, definition, trigger, limit)
    ]


def _who(access: Access) -> str:
    return f"user:{access.principal.name}"
