"""Workspace snapshots: the tar.gz of a directory an ad-hoc run executes in."""

from __future__ import annotations

import asyncio
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from lockstep.api.deps import Access, Services, require, services
from lockstep.errors import PayloadTooLarge

router = APIRouter(tags=["snapshots"])


class SnapshotOut(BaseModel):
    snapshot: str
    size: int


@router.post("/projects/{project}/snapshots", status_code=201, response_model=SnapshotOut)
async def upload_snapshot(
    request: Request,
    svc: Annotated[Services, Depends(services)],
    access: Annotated[Access, Depends(require("runs:write"))],
) -> SnapshotOut:
    cap = svc.settings.max_snapshot_bytes
    digest, size = hashlib.sha256(), 0
    fd, name = await asyncio.to_thread(tempfile.mkstemp, dir=svc.settings.home_dir)
    tmp_path = Path(name)
    try:
        with os.fdopen(fd, "wb") as tmp:
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:
                    raise PayloadTooLarge(f"snapshot is larger than {cap} bytes")
                digest.update(chunk)
                await asyncio.to_thread(tmp.write, chunk)
        # per project: a digest learnt from one project never opens another's files
        key = f"snapshots/{access.project}/{digest.hexdigest()}.tar.gz"
        if not await asyncio.to_thread(svc.blobs.exists, key):
            await asyncio.to_thread(svc.blobs.put_file, key, tmp_path)
    finally:
        await asyncio.to_thread(tmp_path.unlink, missing_ok=True)
    return SnapshotOut(snapshot=key, size=size)
