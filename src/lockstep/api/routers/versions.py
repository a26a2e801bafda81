"""Versions, drafts, tags, selectors and diffs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api.deps import Access, Services, require, services
from lockstep.errors import InvalidRequest
from lockstep.registry.selectors import DEFINITION_PATTERN, MAX_SELECTOR, TAG_PATTERN

router = APIRouter(tags=["versions"])
Svc = Annotated[Services, Depends(services)]
Read = Annotated[Access, Depends(require("definitions:read"))]
Write = Annotated[Access, Depends(require("definitions:write"))]
Promote = Annotated[Access, Depends(require("tags:write"))]
DefName = Annotated[str, Path(pattern=DEFINITION_PATTERN)]
TagName = Annotated[str, Path(pattern=TAG_PATTERN, max_length=64)]
Number = Annotated[int, Path(ge=1, le=999_999_999)]
Sel = Annotated[str, Query(min_length=1, max_length=MAX_SELECTOR)]
DEFS = "/projects/{project}/definitions"


def _who(access: Access) -> str:
    return f"user:{access.principal.name}"


class DefinitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=DEFINITION_PATTERN)
    description: str | None = Field(None, max_length=2000)


class PublishIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    message: str | None = Field(None, max_length=2000)


class TagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, le=999_999_999)
    expect: int | None = Field(
        None, ge=1, description="move only if the tag points at this version now"
    )
    expect_unset: bool = Field(False, description="move only if the tag is not set yet")
    reason: str | None = Field(None, max_length=2000)
    dry_run: bool = Field(False, description="show the move and its diff; change nothing")


@router.post(DEFS, status_code=201)
async def create_definition(body: DefinitionIn, svc: Svc, access: Write) -> dict[str, Any]:
    """A definition published through the API (a git-backed one is found by the scanner)."""
    await svc.versions.create(access.project, body.name, body.description)
    return {"name": body.name, "description": body.description, "origin": "published"}


@router.get(DEFS + "/{name}/draft")
async def get_draft(name: DefName, svc: Svc, access: Read) -> dict[str, Any]:
    return await svc.versions.get_draft(access.project, name)


@router.put(DEFS + "/{name}/draft")
async def save_draft(name: DefName, request: Request, svc: Svc, access: Write) -> dict[str, Any]:
    """The body is the spec as YAML or JSON. Saved even when invalid (work in progress); the
    answer lists every problem with its position, and only a valid draft can be published."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidRequest("the draft must be UTF-8 text (YAML or JSON)") from None
    return await svc.versions.save_draft(access.project, name, text, _who(access))


@router.post(DEFS + "/{name}/publish", status_code=201)
async def publish(
    name: DefName, body: PublishIn, svc: Svc, access: Write, response: Response
) -> dict[str, Any]:
    """The draft becomes the next version; identical content returns the existing one (200)."""
    version, created = await svc.versions.publish(
        access.project, name, by=_who(access), message=body.message
    )
    if not created:
        response.status_code = 200
    return {**version, "created": created}


@router.get(DEFS + "/{name}/versions")
async def list_versions(
    name: DefName, svc: Svc, access: Read, archived: bool = False
) -> list[dict[str, Any]]:
    return await svc.versions.list_versions(access.project, name, archived=archived)


@router.get(DEFS + "/{name}/versions/{number}")
async def show_version(name: DefName, number: Number, svc: Svc, access: Read) -> dict[str, Any]:
    return await svc.versions.show(access.project, f"{name}@{number}")


@router.post(DEFS + "/{name}/versions/{number}/archive", status_code=204)
async def archive_version(name: DefName, number: Number, svc: Svc, access: Write) -> Response:
    """Hide a version from listings; runs keep it and ``D@N`` still reaches it."""
    await svc.versions.archive(access.project, name, number, _who(access))
    return Response(status_code=204)


@router.get("/projects/{project}/resolve")
async def resolve_selector(selector: Sel, svc: Svc, access: Read) -> dict[str, Any]:
    """What a selector names now: the version (with its spec) and, for git, the commit."""
    return await svc.versions.show(access.project, selector)


@router.get("/projects/{project}/diff")
async def diff_versions(
    svc: Svc,
    access: Read,
    old: Annotated[str, Query(alias="from", min_length=1, max_length=MAX_SELECTOR)],
    new: Annotated[str, Query(alias="to", min_length=1, max_length=MAX_SELECTOR)],
) -> dict[str, Any]:
    return await svc.versions.diff(access.project, old, new)


@router.get(DEFS + "/{name}/tags")
async def list_tags(name: DefName, svc: Svc, access: Read) -> list[dict[str, Any]]:
    return await svc.versions.tags(access.project, name)


@router.get(DEFS + "/{name}/tags/{tag}")
async def tagged_version(name: DefName, tag: TagName, svc: Svc, access: Read) -> dict[str, Any]:
    """The version a tag points at, whole, in one call."""
    return await svc.versions.tagged(access.project, name, tag)


@router.put(DEFS + "/{name}/tags/{tag}")
async def set_tag(
    name: DefName, tag: TagName, body: TagIn, svc: Svc, access: Promote
) -> dict[str, Any]:
    """Move a tag atomically; ``expect`` makes it a compare-and-set (409 with ``current``)."""
    return await svc.versions.set_tag(
        access.project,
        name,
        tag,
        body.version,
        by=_who(access),
        expect=body.expect,
        expect_unset=body.expect_unset,
        reason=body.reason,
        dry_run=body.dry_run,
    )


@router.get(DEFS + "/{name}/history")
async def tag_history(
    name: DefName,
    svc: Svc,
    access: Read,
    tag: Annotated[str | None, Query(pattern=TAG_PATTERN, max_length=64)] = None,
) -> list[dict[str, Any]]:
    """Every move of the definition's tags (or of one): from, to, who, when, why."""
    return await svc.versions.history(access.project, name, tag)
