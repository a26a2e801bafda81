"""Resources: a project's named, versioned configuration. Viewers read them; maintainers
create them and write versions; runs read and write them through their workflows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api.deps import Access, Services, require, services
from lockstep.records import ResourceDiff, ResourceRecord, ResourceVersionRecord
from lockstep.spec.resources import check_name

router = APIRouter(tags=["resources"])
Svc = Annotated[Services, Depends(services)]
Read = Annotated[Access, Depends(require("resources:read"))]
Write = Annotated[Access, Depends(require("resources:write"))]
BASE = "/projects/{project}/resources"
Number = Annotated[int, Field(ge=1, le=999_999_999)]


class ResourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=63)
    data: Any = Field(description="version 1's data: a JSON object")
    schema_: dict[str, Any] | None = Field(
        None, alias="schema", description="JSON Schema every version must satisfy"
    )
    description: str | None = Field(None, max_length=2000)
    message: str | None = Field(None, max_length=2000)


class VersionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    data: Any = Field(description="the next version's data: a JSON object")
    message: str | None = Field(None, max_length=2000)


class ResourceShow(BaseModel):
    resource: ResourceRecord
    version: ResourceVersionRecord


def _name(name: str) -> str:
    return check_name(name)  # one line naming the rule, before anything is looked up


@router.get(BASE, response_model=list[ResourceRecord])
async def list_resources(svc: Svc, access: Read) -> list[ResourceRecord]:
    return await svc.resources.list(access.project)


@router.post(BASE, status_code=201, response_model=ResourceVersionRecord)
async def create_resource(body: ResourceIn, svc: Svc, access: Write) -> ResourceVersionRecord:
    """A new resource with its version 1 (refused whole when the data breaks the schema)."""
    return await svc.resources.create(
        access.project,
        body.name,
        data=body.data,
        schema=body.schema_,
        description=body.description,
        message=body.message,
        by=access.principal.name,
    )


@router.get(BASE + "/{name}", response_model=ResourceShow)
async def show_resource(
    name: str, svc: Svc, access: Read, version: Annotated[Number | None, Query()] = None
) -> ResourceShow:
    """The resource and one version of it (its latest unless ``version`` says which)."""
    _name(name)
    return ResourceShow(
        resource=await svc.resources.get(access.project, name),
        version=await svc.resources.version(access.project, name, version),
    )


@router.get(BASE + "/{name}/versions", response_model=list[ResourceVersionRecord])
async def resource_history(name: str, svc: Svc, access: Read) -> list[ResourceVersionRecord]:
    """Every version, newest first."""
    _name(name)
    return await svc.resources.history(access.project, name)


@router.post(BASE + "/{name}/versions", status_code=201, response_model=ResourceVersionRecord)
async def write_resource(
    name: str, body: VersionIn, svc: Svc, access: Write
) -> ResourceVersionRecord:
    """The next version, written by the caller."""
    _name(name)
    return await svc.resources.write(
        access.project, name, body.data, message=body.message, by=access.principal.name
    )


@router.get(BASE + "/{name}/diff", response_model=ResourceDiff)
async def diff_resource(
    name: str,
    svc: Svc,
    access: Read,
    old: Annotated[Number, Query(description="the version to compare from")],
    new: Annotated[Number, Query(description="the version to compare to")],
) -> ResourceDiff:
    _name(name)
    return await svc.resources.diff(access.project, name, old, new)
