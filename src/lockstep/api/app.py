"""The FastAPI application factory."""

from __future__ import annotations

from fastapi import FastAPI

from lockstep import __version__
from lockstep.api import errors
from lockstep.api.audit import AuditLog
from lockstep.api.deps import Services
from lockstep.api.headers import SecurityHeaders
from lockstep.api.limits import BodyLimit, BodyTimeout
from lockstep.api.routers import (
    approvals,
    artifacts,
    audit,
    deployments,
    doctor,
    fleet,
    health,
    hooks,
    metrics,
    notifications,
    projects,
    registry,
    resources,
    run_events,
    run_graph,
    runs,
    secrets,
    snapshots,
    tokens,
    triggers,
    ui,
    versions,
    worker_api,
    workers,
)

API = "/api/v1"


def create_app(services: Services) -> FastAPI:
    app = FastAPI(
        title="lockstep",
        version=__version__,
        openapi_url=f"{API}/openapi.json",
        # the API's description is public (it holds no data); no OAuth2 redirect page is
        docs_url=f"{API}/docs",
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.state.services = services
    errors.install(app)
    routers = (
        health.router,
        projects.router,
        tokens.router,
        run_events.router,  # before runs: /runs/events is no run id
        runs.router,
        run_graph.router,
        snapshots.router,
        audit.router,
        artifacts.router,
        secrets.router,
        registry.router,
        versions.router,
        triggers.router,
        hooks.router,
        notifications.router,
        approvals.router,
        deployments.router,
        workers.router,
        fleet.router,
        doctor.router,
        worker_api.router,
        resources.router,
    )
    for router in routers:
        app.include_router(router, prefix=API)
    app.include_router(metrics.router)  # /metrics, where Prometheus looks
    ui.install(app)  # the web UI at / (another client of the same API)
    app.add_middleware(
        BodyLimit,
        default=1024 * 1024,
        overrides={},
        prefix_overrides={f"{API}/hooks/": services.settings.max_webhook_bytes},
        suffix_overrides={
            "/snapshots": services.settings.max_snapshot_bytes,
            "/worker/blobs": services.settings.max_artifact_bytes,
        },
    )
    app.add_middleware(AuditLog, audit=services.audit)
    app.add_middleware(SecurityHeaders)
    # outermost: a body that does not come in time is cut off whatever route it was for
    app.add_middleware(BodyTimeout, seconds=services.settings.http_body_timeout)
    return app
