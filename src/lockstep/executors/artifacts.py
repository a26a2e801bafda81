"""Artifacts on the worker: stored from an attempt's workspace after it succeeds, and placed
into a consumer's workspace before it starts — never reading or writing outside either.

One regular file named without a glob is stored as its bytes; anything else (a directory, a
glob) as a tar.gz of the matched paths, relative to the workspace, so it lands where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lockstep.engine.types import ArtifactRef
from lockstep.errors import ExecutionError
from lockstep.spec.artifact_rules import pattern_problem
from lockstep.storage.blobs import BlobStore

T = TypeVar("T")

#: caps on what one artifact may expand to when placed, so a bomb stops early
MAX_EXTRACT_BYTES = 10 * 1024**3
_COPY = 1024 * 1024


class ArtifactError(ExecutionError):
    pass


def _inside(root: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(root)
    except ValueError:
        return False
    return True


def _matches(workspace: Path, name: str, pattern: str) -> list[Path]:
    if why := pattern_problem(pattern):
        raise ArtifactError(f"artifact '{name}': path {pattern[:80]!r} {why}")
    if glob.has_magic(pattern):
        paths = sorted(workspace.glob(pattern))
    else:
        paths = [workspace / pattern] if (workspace / pattern).exists() else []
    if not paths:
        raise ArtifactError(f"artifact '{name}': nothing matches '{pattern}' in the workspace")
    for path in paths:
        if not _inside(workspace, path):
            raise ArtifactError(
                f"artifact '{name}': '{path.relative_to(workspace)}' points outside the workspace"
            )
    return paths


def _tar(workspace: Path, name: str, paths: list[Path], dest: Path) -> None:
    # level 1: several times faster than the default 9 and nearly as small on real build
    # output; incompressible data (most large artifacts) gains nothing at any level
    with tarfile.open(dest, "w:gz", compresslevel=1) as tar:
        for path in paths:
            for item in [path, *sorted(path.rglob("*"))] if path.is_dir() else [path]:
                if item.is_symlink() and not _inside(workspace, item):
                    raise ArtifactError(
                        f"artifact '{name}': '{item.relative_to(workspace)}' is a link out of "
                        "the workspace"
                    )
                tar.add(item, arcname=str(item.relative_to(workspace)), recursive=False)


def _store(
    blobs: BlobStore, workspace: Path, step: str, name: str, pattern: str, key: str
) -> ArtifactRef:
    workspace = workspace.resolve()
    paths = _matches(workspace, name, pattern)
    rel = [str(p.relative_to(workspace)) for p in paths]
    if len(paths) == 1 and not glob.has_magic(pattern) and paths[0].is_file():
        info = blobs.put_file(key, paths[0])
        return ArtifactRef(step, name, key, "file", info.size, info.sha256, rel)
    # next to the workspace, not in /tmp: same disk, and /tmp may be small or in memory
    with tempfile.TemporaryDirectory(dir=workspace.parent, prefix=".artifact-") as tmp:
        archive = Path(tmp) / "artifact.tar.gz"
        _tar(workspace, name, paths, archive)
        info = blobs.put_file(key, archive)
    return ArtifactRef(step, name, key, "tar", info.size, info.sha256, rel)


async def store_artifacts(
    blobs: BlobStore, workspace: Path, *, step: str, patterns: dict[str, str], prefix: str
) -> list[ArtifactRef]:
    """Store each declared artifact under ``prefix/NAME``; raise ``ArtifactError`` naming the
    artifact and path when one is missing or reaches outside the workspace."""
    refs = []
    for name, pattern in patterns.items():
        store = (blobs, workspace, step, name, pattern, f"{prefix}/{name}")
        refs.append(await _to_the_end(_store, *store))
    return refs


async def _to_the_end(fn: Callable[..., T], *args: Any) -> T:
    """``fn`` in a thread, awaited to its end even when the attempt is cancelled: a thread
    cannot be stopped, and the attempt's cleanup must not pull its workspace out from under
    it (nor may it go on writing after the attempt is over)."""
    work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(work)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await work
        raise


def _place(blobs: BlobStore, workspace: Path, ref: ArtifactRef) -> None:
    workspace = workspace.resolve()
    if ref.kind == "file":
        dest = workspace / ref.paths[0]
        for parent in [*reversed(dest.relative_to(workspace).parents)][1:]:
            if (workspace / parent).is_symlink():
                raise ArtifactError(f"artifact '{ref.step}.{ref.name}' would land through a link")
        if not _inside(workspace, dest.parent):
            raise ArtifactError(f"artifact '{ref.step}.{ref.name}' would land outside")
        dest.parent.mkdir(parents=True, exist_ok=True)
        with blobs.open(ref.key) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, _COPY)
        return
    with blobs.open(ref.key) as src, tarfile.open(fileobj=src, mode="r|gz") as tar:
        total = 0
        for member in tar:
            total += member.size
            if total > MAX_EXTRACT_BYTES:
                raise ArtifactError(
                    f"artifact '{ref.step}.{ref.name}' expands to more than "
                    f"{MAX_EXTRACT_BYTES} bytes"
                )
            # "data" refuses absolute paths, '..', links out of the tree and devices
            tar.extract(member, workspace, filter="data")


async def place_artifacts(blobs: BlobStore, workspace: Path, refs: list[ArtifactRef]) -> None:
    """Put each upstream artifact into ``workspace`` where its producer had it."""
    for ref in refs:
        try:
            await _to_the_end(_place, blobs, workspace, ref)
        except (OSError, tarfile.TarError) as exc:
            raise ArtifactError(
                f"cannot place artifact '{ref.step}.{ref.name}': {exc}; retry the run"
            ) from None
