"""The blob store a process uses: the home's directory, with artifacts in S3 when
``LOCKSTEP_ARTIFACTS`` says so (imported only then: boto3 costs start-up time)."""

from __future__ import annotations

from pathlib import Path

from lockstep.settings import Settings
from lockstep.storage.blobs import BlobStore, DirectoryBlobStore


def blob_store(settings: Settings, root: Path) -> BlobStore:
    local = DirectoryBlobStore(root)
    if not settings.artifacts:
        return local
    from lockstep.storage.s3 import ArtifactRouting, S3BlobStore

    remote = S3BlobStore(settings.artifacts, endpoint=settings.s3_endpoint)
    return ArtifactRouting(local, remote)
