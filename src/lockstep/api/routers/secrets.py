"""Project secrets: write-only. A value goes in and is never returned, listed or logged."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api.deps import Access, Services, require, services
from lockstep.spec.names import SECRET_NAME_PATTERN

router = APIRouter(tags=["secrets"])
Svc = Annotated[Services, Depends(services)]
Name = Annotated[str, Path(pattern=SECRET_NAME_PATTERN, max_length=128)]
BASE = "/projects/{project}/secrets"


class SecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    value: str = Field(min_length=1, max_length=65536, repr=False)


class SecretOut(BaseModel):
    name: str
    created_at: str
    updated_at: str
    updated_by: str | None = None


@router.put(BASE + "/{name}", response_model=SecretOut)
async def set_secret(
    name: Name,
    body: SecretIn,
    svc: Svc,
    access: Annotated[Access, Depends(require("secrets:write"))],
    response: Response,
) -> SecretOut:
    info, created = await svc.secrets.set(
        access.project, name, body.value, by=access.principal.name
    )
    response.status_code = 201 if created else 200
    return SecretOut(**info.__dict__)


@router.get(BASE, response_model=list[SecretOut])
async def list_secrets(
    svc: Svc, access: Annotated[Access, Depends(require("secrets:read"))]
) -> list[SecretOut]:
    return [SecretOut(**i.__dict__) for i in await svc.secrets.list(access.project)]


@router.delete(BASE + "/{name}", status_code=204)
async def delete_secret(
    name: Name, svc: Svc, access: Annotated[Access, Depends(require("secrets:write"))]
) -> Response:
    await svc.secrets.delete(access.project, name)
    return Response(status_code=204)
