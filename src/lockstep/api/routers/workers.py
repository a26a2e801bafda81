"""Workers: who serves which pool, how busy, and when they were last heard from."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api.deps import Caller, Services, services, superuser
from lockstep.api.routers.tokens import NewTokenOut, new_token_out
from lockstep.auth.principal import Principal

router = APIRouter(tags=["workers"])
Svc = Annotated[Services, Depends(services)]
Admin = Annotated[Principal, Depends(superuser)]


class WorkerTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,55}$", description="the worker identity")
    expires_in_days: int | None = Field(None, ge=1, le=3650)


@router.get("/workers")
async def list_workers(caller: Caller, svc: Svc, all: bool = False) -> list[dict[str, Any]]:
    """Live workers (``all``: also stopped and gone ones). Workers are shared infrastructure:
    any signed-in user may see them; they name no project's runs."""
    return await svc.workers.list(include_gone=all)


@router.post("/workers/tokens", status_code=201, response_model=NewTokenOut)
async def worker_token(body: WorkerTokenIn, admin: Admin, svc: Svc) -> NewTokenOut:
    """A token for workers on other hosts (``LOCKSTEP_TOKEN``): it may use the worker API
    (engine address, reports, a running run's secrets, blobs, logs) and nothing else, so a
    worker machine never holds an administrator's power. Revoke it like any token."""
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    return new_token_out(await svc.tokens.create_for_worker(body.name, expires_in=expires))
