"""What a worker on another host needs from the server, since it has no database: where the
engine is, a place to report itself, the secrets of the run it executes, workspace snapshots
and a log sink. Only server administrators' tokens may call these (workers are run by them)."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lockstep.api.deps import Services, services, worker
from lockstep.api.streams import blob_chunks
from lockstep.auth.principal import Principal
from lockstep.errors import InvalidRequest, NotFound
from lockstep.records import WorkerReport
from lockstep.settings import POOL_PATTERN

router = APIRouter(prefix="/worker", tags=["workers"])
Svc = Annotated[Services, Depends(services)]
Admin = Annotated[Principal, Depends(worker)]  # a worker's token, or an administrator's
_SNAPSHOT = re.compile(r"^snapshots/[a-z0-9-]+/[0-9a-f]{64}\.tar\.gz$")
_STEP = r"[A-Za-z0-9_-]{1,63}(?:\[[0-9]{1,5}\])?"  # an id, or id[i] for a fan-out item
_LOG_KEY = re.compile(rf"^([A-Za-z0-9_-]{{1,64}})/{_STEP}/[0-9]{{1,6}}$")
_CHUNK = 1024 * 1024
_ARTIFACT = re.compile(
    rf"^artifacts/[a-z0-9-]+/[A-Za-z0-9_-]{{1,64}}/{_STEP}/[0-9]{{1,6}}/"
    r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$"
    # outputs stored by reference: their place among the step's outputs
    rf"|^outputs/[a-z0-9-]+/[A-Za-z0-9_-]{{1,64}}/{_STEP}/[0-9]{{1,6}}/[0-9]{{1,4}}\.json$"
)


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    identity: str = Field(pattern=r"^[A-Za-z0-9._:/-]{1,200}$")
    pool: str = Field(pattern=POOL_PATTERN)
    host: str = Field(pattern=r"^[A-Za-z0-9._-]{1,255}$")
    pid: int = Field(ge=0, le=2**31)
    capacity: int = Field(ge=1, le=100_000)
    running: int = Field(ge=0, le=100_000)
    version: str = Field(pattern=r"^[A-Za-z0-9._+-]{1,64}$")
    labels: dict[
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.-]{1,63}$")],
        Annotated[str, StringConstraints(pattern=r"^[\x20-\x7e]{0,200}$")],
    ] = Field(default_factory=dict, max_length=50)
    stopped: bool = False
    #: the worker's clock as it sent this (doctor compares it with the server's)
    sent_at: datetime | None = None


class SecretsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    project: str = Field(max_length=64)
    #: a run's id, or a deployment replica's (``deployment/PROJECT/NAME/NODE/REPLICA/DIGEST``)
    run_id: str = Field(max_length=300)
    names: list[str] = Field(max_length=100)


class LogsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    key: str = Field(max_length=250)
    lines: list[tuple[datetime, Literal["out", "err", "sys"], str]] = Field(max_length=10_000)


@router.get("/config")
async def config(admin: Admin, svc: Svc) -> dict[str, Any]:
    """Where the engine is, so a worker needs only the server's URL and a token."""
    return {
        "temporal_address": svc.engine_address,
        "temporal_namespace": svc.settings.temporal_namespace,
        "heartbeat_timeout": svc.settings.heartbeat_timeout,
    }


@router.post("/report", status_code=204)
async def report(body: ReportIn, admin: Admin, svc: Svc) -> Response:
    sent = body.sent_at.isoformat() if body.sent_at and body.sent_at.tzinfo else None
    await svc.workers.report(WorkerReport(**(body.model_dump() | {"sent_at": sent})))
    return Response(status_code=204)


@router.post("/secrets")
async def secrets(body: SecretsIn, admin: Admin, svc: Svc) -> dict[str, dict[str, str]]:
    """Values of the secrets a running run uses, for the worker executing one of its steps (or
    a deployment's, for a worker running one of its replicas); a name the run's workflow (the
    deployed version) does not use, or a run that is not running, gets nothing."""
    if body.run_id.startswith("deployment/"):
        used = await svc.deployments.secrets_used(body.project, body.run_id)
        values = await svc.secrets.for_replica(body.project, body.run_id, body.names, used)
        return {"values": values}
    values = await svc.secrets.for_running_run(body.project, body.run_id, body.names)
    return {"values": values}


@router.get("/blobs")
async def blob(
    admin: Admin, svc: Svc, key: Annotated[str, Query(max_length=200)]
) -> StreamingResponse:
    """A workspace snapshot or an artifact, streamed (never held in memory whole). An
    artifact's or output's key carries its project and run: they must belong together."""
    found = _SNAPSHOT.fullmatch(key) or (
        _ARTIFACT.fullmatch(key) and await _run_of_project(svc, *key.split("/")[1:3])
    )
    if not found or not svc.blobs.exists(key):
        raise NotFound(f"snapshot '{key[:100]}' not found")
    return StreamingResponse(blob_chunks(svc.blobs, key), media_type="application/gzip")


async def _run_of_project(svc: Services, project: str, run_id: str) -> bool:
    return await svc.runs.exists(run_id, project=project)


@router.put("/blobs", status_code=201)
async def put_blob(
    request: Request, admin: Admin, svc: Svc, key: Annotated[str, Query(max_length=1024)]
) -> dict[str, Any]:
    """An artifact a remote worker stored, streamed to the blob store under its run's prefix."""
    if not _ARTIFACT.fullmatch(key):
        raise InvalidRequest("artifact keys are artifacts/PROJECT/RUN/STEP/ATTEMPT/NAME")
    if not await _run_of_project(svc, *key.split("/")[1:3]):
        raise NotFound(f"run '{key.split('/')[2]}' not found in project '{key.split('/')[1]}'")
    info = await svc.blobs.put_stream(key, request.stream(), svc.settings.max_artifact_bytes)
    return {"key": info.key, "size": info.size, "sha256": info.sha256}


@router.post("/logs", status_code=204)
async def logs(body: LogsIn, admin: Admin, svc: Svc) -> Response:
    """Append a batch of a step attempt's log lines; acknowledged once stored."""
    match = _LOG_KEY.fullmatch(body.key)
    if match is None:
        raise InvalidRequest("invalid log key; expected RUN/STEP/ATTEMPT")
    if not await svc.runs.exists(match.group(1)):
        raise NotFound(f"run '{match.group(1)}' not found")
    await svc.workers.append_log(body.key, body.lines)
    return Response(status_code=204)
