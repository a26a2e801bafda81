"""Workers: who serves which pool, how busy, and when they were last heard from."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends

from lockstep.api.deps import Caller, Services, services
from lockstep.storage import workers as store

router = APIRouter(tags=["workers"])
Svc = Annotated[Services, Depends(services)]


@router.get("/workers")
async def list_workers(caller: Caller, svc: Svc, all: bool = False) -> list[dict[str, Any]]:
    """Live workers (``all``: also stopped and gone ones). Workers are shared infrastructure:
    any signed-in user may see them; they name no project's runs."""
    return await svc.db.call(lambda s: store.list_workers(s, include_gone=all))
