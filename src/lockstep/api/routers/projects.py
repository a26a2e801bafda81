"""Projects (the tenancy boundary), their members, and who the caller is."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api.deps import (
    PROJECT_PATTERN,
    Access,
    Caller,
    Services,
    require,
    services,
    superuser,
)
from lockstep.auth.principal import Principal
from lockstep.auth.roles import Role

router = APIRouter(tags=["projects"])
Svc = Annotated[Services, Depends(services)]
USER_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"


class ProjectOut(BaseModel):
    name: str
    role: str


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=PROJECT_PATTERN)


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user: str = Field(pattern=USER_PATTERN)
    role: Literal["viewer", "operator", "maintainer", "admin"]


class MemberOut(BaseModel):
    user: str
    role: str


class MeOut(BaseModel):
    user: str
    superuser: bool
    projects: list[ProjectOut]


@router.get("/me", response_model=MeOut)
async def me(caller: Caller, svc: Svc) -> MeOut:
    projects = await svc.projects.visible(caller)
    return MeOut(
        user=caller.name,
        superuser=caller.superuser,
        projects=[ProjectOut(name=n, role=r) for n, r in projects],
    )


@router.get("/projects", response_model=list[ProjectOut])
async def list_projects(caller: Caller, svc: Svc) -> list[ProjectOut]:
    projects = await svc.projects.visible(caller)
    return [ProjectOut(name=n, role=r) for n, r in projects]


@router.post("/projects", status_code=201, response_model=ProjectOut)
async def create_project(
    body: ProjectIn, svc: Svc, admin: Annotated[Principal, Depends(superuser)]
) -> ProjectOut:
    await svc.projects.create(body.name, admin)
    return ProjectOut(name=body.name, role=Role.admin.name)


@router.get("/projects/{project}", response_model=ProjectOut)
async def show_project(access: Annotated[Access, Depends(require("project:read"))]) -> ProjectOut:
    role = access.principal.role_in(access.project)
    return ProjectOut(name=access.project, role=role.name if role else "")


@router.get("/projects/{project}/members", response_model=list[MemberOut])
async def list_members(
    svc: Svc, access: Annotated[Access, Depends(require("members:read"))]
) -> list[MemberOut]:
    rows = await svc.projects.members(access.project)
    return [MemberOut(user=u, role=r) for u, r in rows]


@router.put("/projects/{project}/members", response_model=MemberOut)
async def set_member(
    body: MemberIn,
    svc: Svc,
    access: Annotated[Access, Depends(require("members:write"))],
    response: Response,
) -> MemberOut:
    created = await svc.projects.set_member(access.project, body.user, Role[body.role])
    response.status_code = 201 if created else 200
    return MemberOut(user=body.user, role=body.role)


@router.delete("/projects/{project}/members/{user}", status_code=204)
async def remove_member(
    user: Annotated[str, Path(pattern=USER_PATTERN)],
    svc: Svc,
    access: Annotated[Access, Depends(require("members:write"))],
) -> Response:
    await svc.projects.remove_member(access.project, user)
    return Response(status_code=204)
