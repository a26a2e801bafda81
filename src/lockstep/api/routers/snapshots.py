"""Workspace snapshots: the tar.gz of a directory an ad-hoc run executes in."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from lockstep.api.deps import Services, services
from lockstep.errors import PayloadTooLarge

router = APIRouter(tags=["snapshots"])


class SnapshotOut(BaseModel):
    snapshot: str
    size: int


@router.post("/snapshots", status_code=201, response_model=SnapshotOut)
async def upload_snapshot(
    request: Request, svc: Annotated[Services, Depends(services)]
) -> SnapshotOut:
    cap = svc.settings.max_snapshot_bytes
    digest, size = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(dir=svc.settings.home_dir, delete=False) as tmp:
        tmp_path = Path(tmp.name)
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > cap:
                    raise PayloadTooLarge(f"snapshot is larger than {cap} bytes")
                digest.update(chunk)
                tmp.write(chunk)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
    key = f"snapshots/{digest.hexdigest()}.tar.gz"
    try:
        if not svc.blobs.exists(key):
            svc.blobs.put_file(key, tmp_path)
    finally:
        tmp_path.unlink(missing_ok=True)
    return SnapshotOut(snapshot=key, size=size)
