"""Deterministic gzip tarballs of a directory: the workspace of an ad-hoc run.

The same content always gives the same bytes (sorted entries, zeroed times and owners,
normalised modes, no gzip timestamp), so the digest can key a cache and prove two runs saw the
same files. What ``.gitignore`` and ``.lockstepignore`` list is left out (see ``ignore``), and
the size cap is checked while walking, before anything is compressed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import posixpath
import secrets
import stat
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from lockstep.errors import InvalidRequest, PayloadTooLarge
from lockstep.storage.ignore import IgnoreRules

DEFAULT_MAX_BYTES = 200 * 1024 * 1024
#: never part of a workspace: VCS metadata, lockstep's own state, bytecode caches
SKIPPED_NAMES = frozenset({".git", ".lockstep", "__pycache__"})


class SnapshotError(InvalidRequest):
    """The directory cannot be snapshotted as it is (unreadable, changing underneath us)."""


@dataclass(frozen=True)
class _Entry:
    name: str  # path inside the archive, '/'-separated
    kind: str  # "dir", "file" or "symlink"
    path: Path
    size: int = 0
    executable: bool = False
    target: str = ""


def _human(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.3g} {unit}"
        size /= 1024
    return f"{size:.3g} GiB"


def _short(path: object) -> str:
    """A path fit for a one-line message: its start and its end when it is very long."""
    text = os.fsdecode(path) if isinstance(path, str | bytes | os.PathLike) else str(path)
    return text if len(text) <= 120 else f"{text[:50]}...{text[-60:]}"


def _link_stays_inside(root: Path, link: Path, name: str, target: str) -> bool:
    if not target or target.startswith("/"):
        return False
    # Lexically first: that is what the worker's extraction (executors/untar.py) judges by.
    lexical = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
    if lexical == ".." or lexical.startswith("../"):
        return False
    # Then as the filesystem resolves it, which catches a hop through another symlink.
    resolved = os.path.realpath(link.parent / target)
    return resolved == str(root) or resolved.startswith(str(root) + os.sep)


def _walk(root: Path, excluded: set[str], max_bytes: int) -> list[_Entry]:
    entries: list[_Entry] = []
    total = 0
    stack: list[tuple[Path, str, IgnoreRules]] = [(root, "", IgnoreRules.above(root))]
    while stack:
        directory, prefix, rules = stack.pop()
        rules = rules.entering(directory)
        try:
            children = sorted(os.scandir(directory), key=lambda e: e.name)
        except FileNotFoundError:
            continue  # removed while we walked: it is simply not part of the snapshot
        except OSError as exc:
            raise SnapshotError(f"cannot read {_short(directory)}: {exc.strerror}") from None
        subdirs: list[tuple[Path, str, IgnoreRules]] = []
        for child in children:
            path = Path(child.path)
            name = prefix + child.name
            if child.name in SKIPPED_NAMES or str(path) in excluded:
                continue
            try:
                st = child.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            if rules.ignores(path, is_dir=stat.S_ISDIR(st.st_mode)):
                continue
            if stat.S_ISLNK(st.st_mode):
                target = str(path.readlink())
                if _link_stays_inside(root, path, name, target):
                    entries.append(_Entry(name, "symlink", path, target=target))
            elif stat.S_ISDIR(st.st_mode):
                entries.append(_Entry(name, "dir", path))
                subdirs.append((path, name + "/", rules))
            elif stat.S_ISREG(st.st_mode):
                total += st.st_size
                if total > max_bytes:
                    raise PayloadTooLarge(
                        f"directory {root} is larger than {_human(max_bytes)}; list what the "
                        "run does not need in .lockstepignore (or .gitignore), move it out, or "
                        "pass large inputs another way"
                    )
                executable = bool(st.st_mode & stat.S_IXUSR)
                entries.append(_Entry(name, "file", path, st.st_size, executable))
            # sockets, FIFOs and devices are not workspace content
        stack.extend(reversed(subdirs))
    entries.sort(key=lambda e: e.name)
    return entries


class _HashingWriter(io.RawIOBase):
    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.digest = hashlib.sha256()

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self.digest.update(data)
        self._out.write(data)
        return len(data)


def _tarinfo(entry: _Entry) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.name)
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        info.mode = 0o755
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.target
        info.mode = 0o777
    else:
        info.type = tarfile.REGTYPE
        info.size = entry.size
        info.mode = 0o755 if entry.executable else 0o644
    return info


def snapshot_directory(
    src: Path,
    dest: Path,
    *,
    exclude: Sequence[Path] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> str:
    """Write a deterministic tar.gz of ``src`` to ``dest``; return its sha256 hex digest.

    Symlinks are kept only when they point inside ``src``; special files are skipped. Raises
    ``PayloadTooLarge`` when the files add up to more than ``max_bytes`` (uncompressed).
    """
    root = src.resolve()
    if not root.is_dir():
        raise SnapshotError(f"cannot snapshot {src}: not a directory")
    excluded = {str(p if p.is_absolute() else root / p) for p in exclude}
    excluded.add(str(dest.absolute()))  # a previous snapshot written inside src
    excluded |= {os.path.realpath(p) for p in excluded}
    try:
        entries = _walk(root, excluded, max_bytes)
    except SnapshotError:
        raise
    except OSError as exc:  # e.g. a path longer than the system's PATH_MAX
        where = os.fsdecode(exc.filename) if exc.filename is not None else str(root)
        inside = where.startswith(str(root) + os.sep)
        shown = f"{_short(where[len(str(root)) + 1 :])} in {root}" if inside else _short(where)
        raise SnapshotError(
            f"cannot snapshot {shown}: {exc.strerror or exc}; move it out of the directory or "
            "list it in .lockstepignore"
        ) from None

    dest.parent.mkdir(parents=True, exist_ok=True)
    temp = dest.with_name(f".{dest.name}.{secrets.token_hex(6)}.tmp")
    try:
        with temp.open("wb") as raw:
            hashing = _HashingWriter(raw)
            # filename="" and mtime=0 keep the gzip header free of anything but the content.
            with (
                gzip.GzipFile(
                    filename="", mode="wb", fileobj=hashing, mtime=0, compresslevel=6
                ) as gz,
                tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
            ):
                for entry in entries:
                    _add(tar, entry)
            digest = hashing.digest.hexdigest()
        temp.replace(dest)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return digest


def _add(tar: tarfile.TarFile, entry: _Entry) -> None:
    info = _tarinfo(entry)
    if entry.kind != "file":
        tar.addfile(info)
        return
    try:
        f = entry.path.open("rb")
    except FileNotFoundError:
        return  # removed since the walk (a temp file): leave it out rather than fail the run
    except OSError as exc:
        raise SnapshotError(f"cannot snapshot {_short(entry.path)}: {exc.strerror}") from None
    try:
        with f:
            tar.addfile(info, f)
    except OSError as exc:
        # tarfile reports a file that shrank since the walk as "unexpected end of data".
        reason = exc.strerror or str(exc)
        raise SnapshotError(
            f"cannot snapshot {_short(entry.path)}: {reason}; make sure nothing is writing to the "
            "directory and try again"
        ) from None
