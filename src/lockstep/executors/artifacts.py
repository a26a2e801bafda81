"""Artifacts on the worker: stored from an attempt's workspace after it succeeds, and placed
into a consumer's workspace before it starts — never reading or writing outside either.

One regular file named without a glob is stored as its bytes; anything else (a directory, a
glob) as a tar.gz of the matched paths, relative to the workspace, so it lands where it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import glob
import os
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, Protocol, TypeVar

from lockstep.engine.types import ArtifactRef
from lockstep.errors import ExecutionError
from lockstep.executors import confined
from lockstep.executors.untar import link_inside, member_parts, unpack
from lockstep.spec.artifact_rules import pattern_problem
from lockstep.storage.blobs import BlobStore

T = TypeVar("T")

#: caps on what one artifact may expand to when placed, so a bomb stops early
MAX_EXTRACT_BYTES = 10 * 1024**3
MAX_EXTRACT_ENTRIES = 1_000_000
_COPY = 1024 * 1024


class ArtifactError(ExecutionError):
    pass


def _join(base: str, name: str) -> str:
    return f"{base}/{name}" if base else name


def _listing(root: int, rel: str) -> list[tuple[str, bool]]:
    """``(name, is a directory itself, not a link)`` of each entry of ``rel``, sorted."""
    fd = confined.open_dir(root, rel)
    try:
        names = confined.names(fd)
        return [(n, stat.S_ISDIR(confined.entry_mode(fd, n))) for n in names]
    finally:
        os.close(fd)


def _is_dir(root: int, rel: str) -> bool:
    """Whether ``rel`` is a directory beneath ``root`` (links inside followed, a link out
    raises ``ConfinedError``)."""
    try:
        os.close(confined.open_dir(root, rel))
    except (FileNotFoundError, NotADirectoryError):
        return False
    return True


def _exists(root: int, rel: str) -> bool:
    parent, _, name = rel.rpartition("/")
    if not _is_dir(root, parent):
        return False
    fd = confined.open_dir(root, parent)
    try:
        confined.entry_mode(fd, name)
    except FileNotFoundError:
        return False
    finally:
        os.close(fd)
    return True


def _glob(root: int, parts: list[str], base: str = "") -> list[str]:
    """Paths beneath ``root`` matching ``parts`` as pathlib globs them (``**``: this directory
    and every one below it, links not descended into), found by listing directories through
    ``confined``: a directory reached through a link out is refused, never listed."""
    if not parts:
        return [base]
    part, rest = parts[0], parts[1:]
    found: list[str] = []
    if part == "**":
        found += _glob(root, rest, base)
        for name, is_dir in _listing(root, base):
            if is_dir:
                found += _glob(root, parts, _join(base, name))
        return found
    names = (
        [n for n, _ in _listing(root, base) if fnmatch.fnmatchcase(n, part)]
        if glob.has_magic(part)
        else [part]
    )
    for name in names:
        path = _join(base, name)
        if not rest:
            if _exists(root, path):
                found.append(path)
        elif _is_dir(root, path):
            found += _glob(root, rest, path)
    return found


def _matches(root: int, name: str, pattern: str) -> list[str]:
    if why := pattern_problem(pattern):
        raise ArtifactError(f"artifact '{name}': path {pattern[:80]!r} {why}")
    parts = [p for p in pattern.split("/") if p not in ("", ".")]
    paths = sorted(dict.fromkeys(_glob(root, parts))) if parts else [""]
    if not paths:
        raise ArtifactError(f"artifact '{name}': nothing matches '{pattern}' in the workspace")
    return paths


def _link_member(arc: str, target: str) -> tarfile.TarInfo:
    if not link_inside(arc.split("/"), target):
        raise confined.ConfinedError(f"'{arc}' is a link pointing outside", path=arc)
    info = tarfile.TarInfo(arc)
    info.type, info.linkname = tarfile.SYMTYPE, target
    return info


class _Adds(Protocol):
    def addfile(self, tarinfo: tarfile.TarInfo, fileobj: IO[bytes] | None = None) -> None: ...


class _Sampler:
    """Stands in for the archive on a first walk: estimates how well it would compress from
    the start of each regular file (within a budget), weighted by the files' sizes. zlib at
    its fastest level still moves only tens of MB/s through random bytes, and gains nothing
    there: such an archive is written without compressing (still a valid tar.gz)."""

    EACH = 64 * 1024
    BUDGET = 4 * 1024 * 1024

    def __init__(self) -> None:
        self.sampled = 0
        self.weighed = 0  # bytes of the files sampled
        self.packed = 0.0  # their estimated compressed size

    def addfile(self, tarinfo: tarfile.TarInfo, fileobj: IO[bytes] | None = None) -> None:
        if fileobj is None or not tarinfo.isreg() or self.sampled >= self.BUDGET:
            return  # files beyond the budget are taken to compress like those before
        head = fileobj.read(self.EACH)
        if head:
            self.sampled += len(head)
            self.weighed += tarinfo.size
            self.packed += tarinfo.size * len(zlib.compress(head, 1)) / len(head)

    def level(self) -> int:
        """1 (fast, nearly as small as 9 on real build output), or 0 when a sample shrank by
        less than a tenth."""
        worth = not self.weighed or self.packed / self.weighed < 0.9
        return 1 if worth else 0


def _add_at(tar: _Adds, dir_fd: int, name: str, arc: str, seen: set[str]) -> None:
    """Add ``name`` in ``dir_fd`` (and what is below it) as ``arc``; links are added as links
    when they stay inside, files are read through descriptors opened without following."""
    if arc in seen:
        return
    seen.add(arc)
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if stat.S_ISLNK(st.st_mode):
        tar.addfile(_link_member(arc, os.readlink(name, dir_fd=dir_fd)))
    elif stat.S_ISREG(st.st_mode):
        with os.fdopen(confined.open_regular_at(dir_fd, name, arc), "rb") as f:
            info = tarfile.TarInfo(arc)
            real = os.fstat(f.fileno())
            info.size, info.mode, info.mtime = real.st_size, real.st_mode & 0o755, real.st_mtime
            tar.addfile(info, f)
    elif stat.S_ISDIR(st.st_mode):
        sub = confined.open_dir_at(dir_fd, name, arc)
        try:
            info = tarfile.TarInfo(arc)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, st.st_mtime
            tar.addfile(info)
            for child in confined.names(sub):
                _add_at(tar, sub, child, _join(arc, child), seen)
        finally:
            os.close(sub)
    else:
        raise confined.ConfinedError(f"'{arc}' is a FIFO, socket or device", path=arc)


def _tar(root: int, paths: list[str], dest: Path) -> None:
    sampler = _Sampler()
    _walk(sampler, root, paths)
    with tarfile.open(dest, "w:gz", compresslevel=sampler.level()) as tar:
        _walk(tar, root, paths)


def _walk(tar: _Adds, root: int, paths: list[str]) -> None:
    seen: set[str] = set()
    for path in paths:
        if not path:  # the whole workspace
            for child in confined.names(root):
                _add_at(tar, root, child, child, seen)
            continue
        parent, _, name = path.rpartition("/")
        fd = confined.open_dir(root, parent)
        try:
            _add_at(tar, fd, name, path, seen)
        finally:
            os.close(fd)


def _store(
    blobs: BlobStore, workspace: Path, step: str, name: str, pattern: str, key: str
) -> ArtifactRef:
    root = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        try:
            paths = _matches(root, name, pattern)
            if len(paths) == 1 and paths[0] and not glob.has_magic(pattern):
                with contextlib.suppress(confined.ConfinedError):
                    return _store_file(blobs, root, step, name, paths[0], key)
            # next to the workspace, not in /tmp: same disk, and /tmp may be small or in memory
            with tempfile.TemporaryDirectory(dir=workspace.parent, prefix=".artifact-") as tmp:
                archive = Path(tmp) / "artifact.tar.gz"
                _tar(root, paths, archive)
                info = blobs.put_file(key, archive)
        except confined.ConfinedError as exc:
            raise ArtifactError(
                f"artifact '{name}': {exc}; the worker reads only files inside the workspace"
            ) from None
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ArtifactError(
                f"artifact '{name}': '{exc.filename}' vanished or is not a directory"
            ) from None
    finally:
        os.close(root)
    rel = [p or "." for p in paths]
    return ArtifactRef(step, name, key, "tar", info.size, info.sha256, rel)


def _store_file(
    blobs: BlobStore, root: int, step: str, name: str, path: str, key: str
) -> ArtifactRef:
    """One regular file, stored as its bytes; ``ConfinedError`` when it is not one."""
    fd = confined.open_file(root, path)
    try:
        with confined.pinned(fd) as pinned:
            info = blobs.put_file(key, pinned)
    finally:
        os.close(fd)
    return ArtifactRef(step, name, key, "file", info.size, info.sha256, [path])


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
    what = f"artifact '{ref.step}.{ref.name}'"
    root = os.open(workspace, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if ref.kind == "file":
            parts = member_parts(ref.paths[0])
            if not parts:
                raise ArtifactError(f"{what} has no file name")
            parent = confined.make_dirs(root, parts[:-1], ref.paths[0])
            try:
                fd = confined.create_file(parent, parts[-1], 0o644, ref.paths[0])
            finally:
                os.close(parent)
            with blobs.open(ref.key) as src, os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, _COPY)
            return
        with blobs.open(ref.key) as src:
            unpack(
                src, root, max_bytes=MAX_EXTRACT_BYTES, max_entries=MAX_EXTRACT_ENTRIES, what=what
            )
    except confined.ConfinedError as exc:
        raise ArtifactError(f"{what} would land outside the workspace: {exc}") from None
    finally:
        os.close(root)


async def place_artifacts(blobs: BlobStore, workspace: Path, refs: list[ArtifactRef]) -> None:
    """Put each upstream artifact into ``workspace`` where its producer had it."""
    for ref in refs:
        try:
            await _to_the_end(_place, blobs, workspace, ref)
        except (OSError, tarfile.TarError, EOFError) as exc:
            raise ArtifactError(
                f"cannot place artifact '{ref.step}.{ref.name}': {exc}; retry the run"
            ) from None
