"""Private working copies for step attempts.

Each attempt gets its own directory, so parallel steps (and fan-out items) can never see each
other's writes. A snapshot blob is extracted once into a per-worker cache and copied from there
for every attempt, which keeps repeated attempts cheap without sharing any file between them.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import NamedTuple

from lockstep.engine.types import Workspace
from lockstep.errors import ExecutionError, PayloadTooLarge
from lockstep.executors.confined import ConfinedError
from lockstep.executors.untar import unpack
from lockstep.storage.blobs import BlobStore

#: caps on what one snapshot may expand to, so a decompression bomb stops early
DEFAULT_MAX_EXTRACT_BYTES = 1024 * 1024 * 1024
DEFAULT_MAX_EXTRACT_ENTRIES = 200_000
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")


class WorkspaceError(ExecutionError):
    pass


class SourceAuth(NamedTuple):
    """Which credentials secret a private remote needs, and for which run."""

    project: str
    secret: str
    run_id: str


class WorkspaceManager:
    """Hands out fresh attempt directories under ``root/attempts``.

    Snapshot blob keys must be immutable (content-addressed): the extracted tree is cached by
    key under ``root/snapshots`` and never re-checked against the blob.
    """

    def __init__(
        self,
        root: Path,
        blobs: BlobStore,
        *,
        max_extract_bytes: int = DEFAULT_MAX_EXTRACT_BYTES,
        max_extract_entries: int = DEFAULT_MAX_EXTRACT_ENTRIES,
    ) -> None:
        # Absolute, because attempt paths are handed to steps whose cwd is somewhere else.
        self.root = root.absolute()
        self._blobs = blobs
        self._max_bytes = max_extract_bytes
        self._max_entries = max_extract_entries
        self._locks: dict[str, asyncio.Lock] = {}

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    @property
    def attempts_dir(self) -> Path:
        return self.root / "attempts"

    @property
    def snapshots_dir(self) -> Path:
        return self.root / "snapshots"

    #: fills an empty directory with ``repo`` at ``sha`` (set by workers that serve git runs);
    #: the last argument is (project, secret name) when the remote needs credentials
    checkout: Callable[[str, str, Path, SourceAuth | None], Awaitable[None]] | None = None

    async def prepare(
        self, workspace: Workspace, name: str, *, project: str = "default", run_id: str = ""
    ) -> Path:
        """Return a new, empty-or-populated directory that belongs to this attempt alone: the
        run's commit or snapshot, with every locked ``sources:`` entry checked out inside."""
        if workspace.sha is not None and workspace.repo is not None:
            path = await self._checked_out(workspace.repo, workspace.sha, name, None)
        else:
            path = await self._copied(workspace, name)
        try:
            for source in workspace.sources:
                dest = await asyncio.to_thread(_source_dir, path, source.path)
                auth = (
                    SourceAuth(project, source.credentials, run_id) if source.credentials else None
                )
                await self._fill(source.repo, source.sha, dest, auth)
        except BaseException:
            await self.cleanup(path)
            raise
        return path

    async def _copied(self, workspace: Workspace, name: str) -> Path:
        source = None
        if workspace.snapshot is not None:
            source = await self._extracted(workspace.snapshot)
        safe = _UNSAFE_NAME.sub("_", name)[:60] or "attempt"
        # The copy runs in a thread that cancellation cannot stop; if the caller is cancelled
        # the directory is removed once that thread is done instead of being leaked.
        job = asyncio.ensure_future(asyncio.to_thread(self._make_attempt, safe, source))
        try:
            return await asyncio.shield(job)
        except asyncio.CancelledError:
            job.add_done_callback(_remove_result)
            raise

    async def _checked_out(self, repo: str, sha: str, name: str, auth: SourceAuth | None) -> Path:
        safe = _UNSAFE_NAME.sub("_", name)[:60] or "attempt"
        path = await asyncio.to_thread(self._make_attempt, safe, None)
        try:
            await self._fill(repo, sha, path, auth)
        except BaseException:
            await self.cleanup(path)
            raise
        return path

    async def _fill(self, repo: str, sha: str, dest: Path, auth: SourceAuth | None) -> None:
        if self.checkout is None:
            raise WorkspaceError(f"this worker cannot check out git workspaces ({repo})")
        await self.checkout(repo, sha, dest, auth)

    async def cleanup(self, path: Path) -> None:
        """Remove an attempt directory; errors are ignored (a leftover costs only disk)."""
        await asyncio.to_thread(shutil.rmtree, path, ignore_errors=True)

    def purge_attempts(self) -> None:
        """Remove every attempt directory. Only safe while no attempt uses this root, e.g. when
        a worker that owns ``root`` exclusively starts after a crash."""
        shutil.rmtree(self.attempts_dir, ignore_errors=True)

    def _make_attempt(self, safe: str, source: Path | None) -> Path:
        self.attempts_dir.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=self.attempts_dir))
        try:
            if source is not None:
                shutil.copytree(source, path, symlinks=True, dirs_exist_ok=True)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return path

    async def _extracted(self, key: str) -> Path:
        digest = hashlib.sha256(key.encode()).hexdigest()[:32]
        final = self.snapshots_dir / digest
        if final.is_dir():
            return final
        # One extraction per key in this process; other processes are handled by the rename.
        lock = self._locks.setdefault(digest, asyncio.Lock())
        async with lock:
            if not final.is_dir():
                await asyncio.shield(asyncio.to_thread(self._extract, key, final))
        return final

    def _extract(self, key: str, final: Path) -> None:
        self.snapshots_dir.mkdir(parents=True, exist_ok=True)
        temp = Path(tempfile.mkdtemp(prefix=".extract-", dir=self.snapshots_dir))
        try:
            what = f"snapshot {key!r}"
            fd = os.open(temp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                with self._blobs.open(key) as blob:
                    unpack(
                        blob,
                        fd,
                        max_bytes=self._max_bytes,
                        max_entries=self._max_entries,
                        what=what,
                    )
            except PayloadTooLarge as exc:
                raise PayloadTooLarge(f"{exc}; make the workspace smaller") from None
            finally:
                os.close(fd)
            try:
                temp.rename(final)
            except OSError:
                if not final.is_dir():
                    raise
                shutil.rmtree(temp, ignore_errors=True)  # another process won the race
        except (tarfile.TarError, EOFError, OSError, ConfinedError) as exc:
            shutil.rmtree(temp, ignore_errors=True)
            raise WorkspaceError(
                f"cannot unpack workspace snapshot {key!r}: {exc}; re-submit the run"
            ) from None
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            raise


def _source_dir(root: Path, relative: str) -> Path:
    """The empty directory a source lands in. The checkout above it came from a repository, so
    a symlink on the way (``vendor -> /etc``) must not carry the clone out of the workspace."""
    dest = root
    for part in relative.split("/"):
        dest = dest / part
        if dest.is_symlink():
            raise WorkspaceError(
                f"source path '{relative}' goes through a symlink in the checkout; "
                "choose a path the repository does not use"
            )
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise WorkspaceError(
            f"source path '{relative}' already exists in the checkout; "
            "choose a path the repository does not use"
        )
    dest.mkdir(parents=True, exist_ok=True)
    return dest


def _remove_result(job: asyncio.Future[Path]) -> None:
    if not job.cancelled() and job.exception() is None:
        shutil.rmtree(job.result(), ignore_errors=True)
