"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from lockstep import __version__
from lockstep.api import errors
from lockstep.api.deps import Services
from lockstep.api.limits import BodyLimit
from lockstep.api.routers import health, runs, snapshots

API = "/api/v1"


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="lockstep",
        version=__version__,
        openapi_url=f"{API}/openapi.json",
        docs_url=f"{API}/docs",
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app)
    for router in (health.router, runs.router, snapshots.router):
        app.include_router(router, prefix=API)
    app.add_middleware(
        BodyLimit,
        default=1024 * 1024,
        overrides={f"{API}/snapshots": services.settings.max_snapshot_bytes},
    )
    return app
