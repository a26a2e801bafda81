"""The workspace of an ad-hoc run (``lockstep run FILE``): the directory of the workflow file,
packed as a deterministic snapshot to upload (``storage/snapshots.py`` has the format)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from lockstep.settings import Settings
from lockstep.storage.snapshots import snapshot_directory


async def pack_workspace(directory: Path, archive: Path, settings: Settings) -> str:
    """Write the snapshot of ``directory`` to ``archive``; returns its sha256. The lockstep
    home is left out (it may sit inside), and the files must fit the snapshot size cap."""
    return await asyncio.to_thread(
        snapshot_directory,
        directory,
        archive,
        exclude=[settings.home_dir],
        max_bytes=settings.max_snapshot_bytes,
    )
