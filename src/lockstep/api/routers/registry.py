"""Connected repositories and the definitions the scanner finds in them."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api.deps import Access, Services, require, services
from lockstep.records import Cause, RunRecord
from lockstep.services.registry import RepositoryInfo
from lockstep.settings import POOL_PATTERN

router = APIRouter(tags=["registry"])
Svc = Annotated[Services, Depends(services)]
RepoName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
DefName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")]
REPOS = "/projects/{project}/repositories"


class RepositoryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=2000)
    name: str | None = Field(None, max_length=100)
    branches: list[str] = Field(default_factory=lambda: ["main"], max_length=50)
    tags: list[str] = Field(default_factory=list, max_length=50)
    credentials: str | None = Field(None, pattern=r"^[A-Z_][A-Z0-9_]*$", max_length=128)
    poll_s: int = Field(60, ge=5, le=86400)


class RepositoryOut(BaseModel):
    name: str
    url: str
    branches: list[str]
    tags: list[str]
    credentials: str | None = None
    poll_s: int
    created_at: str
    scanned_at: str | None = None
    error: str | None = None


class NewRepositoryOut(RepositoryOut):
    webhook_secret: str = Field(description="shown this once: sign push webhooks with it")
    webhook_url: str = "/api/v1/hooks/git"


class ScanOut(BaseModel):
    repository: RepositoryOut
    changed: bool
    files: int


class RefOut(BaseModel):
    ref: str
    sha: str
    status: str
    errors: list[str]
    version: int | None = None
    scanned_at: str


class DefinitionOut(BaseModel):
    name: str
    repository: str | None = None
    path: str
    latest_version: int | None = None
    archived: bool = False
    refs: list[RefOut]


def _repo(info: RepositoryInfo) -> RepositoryOut:
    return RepositoryOut(**asdict(info))


@router.post(REPOS, status_code=201, response_model=NewRepositoryOut)
async def add_repository(
    body: RepositoryIn, svc: Svc, access: Annotated[Access, Depends(require("repos:write"))]
) -> NewRepositoryOut:
    repo, hook_secret = await svc.registry.add(
        access.project,
        url=body.url,
        name=body.name,
        branches=body.branches,
        tags=body.tags,
        credentials=body.credentials,
        poll_s=body.poll_s,
    )
    return NewRepositoryOut(**_repo(repo).model_dump(), webhook_secret=hook_secret)


@router.post("/hooks/git", status_code=202)
async def git_push_hook(request: Request, svc: Svc) -> dict[str, int]:
    """A push event (GitHub, GitLab or Gitea shape), signed with the repository's secret.
    Acknowledged at once; the rescan runs in the background."""
    return {"accepted": await svc.poller.push(await request.body(), request.headers)}


@router.get(REPOS, response_model=list[RepositoryOut])
async def list_repositories(
    svc: Svc, access: Annotated[Access, Depends(require("repos:read"))]
) -> list[RepositoryOut]:
    return [_repo(r) for r in await svc.registry.repositories(access.project)]


@router.post(REPOS + "/{name}/scan", response_model=ScanOut)
async def scan_repository(
    name: RepoName, svc: Svc, access: Annotated[Access, Depends(require("repos:write"))]
) -> ScanOut:
    repo, result = await svc.registry.scan(access.project, name)
    return ScanOut(
        repository=_repo(repo),
        changed=bool(result and result.changed),
        files=len(result.files) if result else 0,
    )


@router.delete(REPOS + "/{name}", status_code=204)
async def remove_repository(
    name: RepoName, svc: Svc, access: Annotated[Access, Depends(require("repos:write"))]
) -> Response:
    await svc.registry.remove(access.project, name)
    return Response(status_code=204)


@router.get("/projects/{project}/definitions", response_model=list[DefinitionOut])
async def list_definitions(
    svc: Svc, access: Annotated[Access, Depends(require("definitions:read"))]
) -> list[DefinitionOut]:
    infos = await svc.registry.definitions(access.project)
    return [DefinitionOut.model_validate(i, from_attributes=True) for i in infos]


@router.get("/projects/{project}/definitions/{name}", response_model=DefinitionOut)
async def show_definition(
    name: DefName, svc: Svc, access: Annotated[Access, Depends(require("definitions:read"))]
) -> DefinitionOut:
    info = await svc.registry.definition(access.project, name)
    return DefinitionOut.model_validate(info, from_attributes=True)


class InstanceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$")
    definition: str = Field(max_length=100)
    ref: str = Field(min_length=1, max_length=255, description="branch, git tag or commit SHA")
    params: list[str] = Field(
        default_factory=list, max_length=100, description="default key=value params"
    )
    pool: str | None = Field(
        None, pattern=POOL_PATTERN, description="worker pool for steps that name none"
    )
    triggers: dict[str, Any] = Field(
        default_factory=dict,
        max_length=50,
        description="its own triggers (workflow.yaml's shape); an id the file has inherits "
        "its fields; they run this instance",
    )


class InstanceTriggersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    triggers: dict[str, Any] = Field(
        max_length=50, description="the instance's own triggers, whole; {} removes them"
    )


class InstanceRunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    params: list[str] = Field(default_factory=list, max_length=100)


@router.post("/projects/{project}/instances", status_code=201)
async def create_instance(
    body: InstanceIn, svc: Svc, access: Annotated[Access, Depends(require("instances:write"))]
) -> dict[str, Any]:
    return await svc.instances.create(
        access.project,
        name=body.name,
        definition=body.definition,
        ref=body.ref,
        params=body.params,
        pool=body.pool,
        triggers=body.triggers,
    )


@router.put("/projects/{project}/instances/{name}/triggers")
async def set_instance_triggers(
    name: DefName,
    body: InstanceTriggersIn,
    svc: Svc,
    access: Annotated[Access, Depends(require("instances:write"))],
) -> dict[str, Any]:
    """Replace the instance's own triggers (validated first: nothing is stored when one is
    wrong) and register them: Schedules made, changed or removed."""
    return await svc.instances.set_triggers(access.project, name, body.triggers)


@router.get("/projects/{project}/instances")
async def list_instances(
    svc: Svc, access: Annotated[Access, Depends(require("instances:read"))]
) -> list[dict[str, Any]]:
    return await svc.instances.list(access.project)


@router.post("/projects/{project}/instances/{name}/runs", status_code=201, response_model=RunRecord)
async def run_instance(
    name: DefName,
    body: InstanceRunIn,
    svc: Svc,
    access: Annotated[Access, Depends(require("runs:write"))],
) -> RunRecord:
    return await svc.instances.run(
        access.project,
        name,
        params=body.params,
        cause=Cause.manual(access.principal.name),
    )
