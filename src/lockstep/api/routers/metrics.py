"""``GET /metrics``: Prometheus' text format, for a server administrator's token (the figures
name every project): scrape with ``authorization: Bearer <token>``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import PlainTextResponse

from lockstep.api.deps import Services, services, superuser
from lockstep.auth.principal import Principal

router = APIRouter(tags=["metrics"])

#: what Prometheus asks for and reads
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(
    svc: Annotated[Services, Depends(services)], _: Annotated[Principal, Depends(superuser)]
) -> PlainTextResponse:
    """Runs by project and status, live workers and their slots by pool, trigger fires and
    notification deliveries by status, and how long reading them took."""
    return PlainTextResponse(await svc.metrics.exposition(), media_type=CONTENT_TYPE)
