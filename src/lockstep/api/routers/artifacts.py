"""A run's artifacts: listed, and downloaded as a stream (never whole in memory)."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path
from fastapi.responses import StreamingResponse

from lockstep.api.deps import Services, services
from lockstep.api.routers.runs import Read, RunId
from lockstep.api.streams import attachment, blob_chunks
from lockstep.spec.names import RECORDED_STEP_PATTERN

router = APIRouter(tags=["artifacts"])
Svc = Annotated[Services, Depends(services)]
StepId = Annotated[str, Path(pattern=RECORDED_STEP_PATTERN, max_length=80)]
Name = Annotated[str, Path(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")]
BASE = "/projects/{project}/runs/{run_id}/artifacts"


@router.get(BASE)
async def list_artifacts(run_id: RunId, svc: Svc, access: Read) -> list[dict[str, Any]]:
    refs = await svc.runs.artifacts(access.project, run_id)
    return [{k: v for k, v in asdict(r).items() if k != "key"} for r in refs]


@router.get(BASE + "/{step}/{name}")
async def download_artifact(
    run_id: RunId, step: StepId, name: Name, svc: Svc, access: Read
) -> StreamingResponse:
    """The artifact's bytes: the file itself, or a tar.gz of a directory or glob."""
    ref = await svc.runs.artifact(access.project, run_id, step, name)

    if ref.kind == "file":
        filename, media = PurePosixPath(ref.paths[0]).name, "application/octet-stream"
    else:
        filename, media = f"{name}.tar.gz", "application/gzip"
    return StreamingResponse(
        blob_chunks(svc.blobs, ref.key),
        media_type=media,
        headers={
            "content-disposition": attachment(filename),
            "content-length": str(ref.size),
            "x-lockstep-sha256": ref.sha256,
        },
    )
