"""``GET /doctor``: the deployment checked end to end (``services/doctor.py``), for a server
administrator."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends

from lockstep.api.deps import Services, services, superuser
from lockstep.auth.principal import Principal

router = APIRouter(tags=["doctor"])


@router.get("/doctor")
async def doctor(
    svc: Annotated[Services, Depends(services)], _: Annotated[Principal, Depends(superuser)]
) -> dict[str, Any]:
    """Each check (name, ok, what was seen or what to fix), and ``ok`` when all passed."""
    checks = await svc.doctor.checks()
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
