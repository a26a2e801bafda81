"""Unpacking a tar.gz on the worker (workspace snapshots, artifacts) as a hostile archive.

``tarfile``'s own extraction is never used: its ``data`` filter has been bypassed more than
once (CVE-2025-4517 on the interpreter this project runs on), and its checks resolve paths
with ``realpath``, which a long enough chain of links defeats. Here every member is checked
by name and type, and written through ``confined``: directories are created one component
at a time refusing any link on the way, files with ``O_EXCL|O_NOFOLLOW``, so nothing is ever
written through a link, whatever the archive or the tree it lands in holds.

Refused: absolute names, ``..``, NUL, over-long names, hard links, devices, FIFOs, links whose
target is absolute or leads above the target directory, more than ``max_bytes`` of content
(counted as written, so a member cannot lie about its size) or ``max_entries`` members.
"""

from __future__ import annotations

import os
import posixpath
import tarfile
from typing import IO, BinaryIO

from lockstep.errors import PayloadTooLarge
from lockstep.executors.confined import ConfinedError, clear, create_file, make_dirs

MAX_NAME = 4096
_CHUNK = 1024 * 1024


class UnsafeArchive(ConfinedError):
    """A member of an archive would land outside, or is of a kind never unpacked."""


def member_parts(name: str) -> list[str]:
    """The checked components of a member's name (``[]`` for the top directory itself)."""
    shown = name[:120].encode("unicode_escape").decode()
    if not name or len(name) > MAX_NAME or "\0" in name:
        raise UnsafeArchive(f"member '{shown}' has an empty, over-long or NUL name")
    if name.startswith("/"):
        raise UnsafeArchive(f"member '{shown}' has an absolute name")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive(f"member '{shown}' contains '..'")
    if any(len(p.encode()) > 255 for p in parts):
        raise UnsafeArchive(f"member '{shown}' has a name component over 255 bytes")
    return parts


def link_inside(parts: list[str], target: str) -> bool:
    """Whether a link at ``parts`` pointing to ``target`` stays beneath the top directory,
    read as written (the worker never follows links it did not resolve itself anyway)."""
    if not target or target.startswith("/") or "\0" in target:
        return False
    resolved = posixpath.normpath(posixpath.join("/".join([".", *parts[:-1]]), target))
    return not (resolved == ".." or resolved.startswith("../") or resolved.startswith("/"))


def unpack(fileobj: BinaryIO, dest: int, *, max_bytes: int, max_entries: int, what: str) -> None:
    """Unpack the tar.gz stream ``fileobj`` beneath the directory descriptor ``dest``.

    ``what`` names the archive in errors. Raises ``UnsafeArchive``, ``PayloadTooLarge``,
    ``tarfile.TarError`` or ``OSError``; what was unpacked before stays (the caller removes
    it).
    """
    total = 0
    with tarfile.open(fileobj=fileobj, mode="r|gz") as tar:
        for entries, member in enumerate(tar, start=1):
            if entries > max_entries:
                raise PayloadTooLarge(f"{what} holds more than {max_entries} files")
            parts = member_parts(member.name)
            if member.isdir():
                if parts:
                    os.close(make_dirs(dest, parts, member.name))
                continue
            if not parts:
                raise UnsafeArchive(f"member '{member.name[:120]}' of {what} has no name")
            if member.islnk():
                raise UnsafeArchive(f"{what} holds a hard link ('{member.name[:120]}')")
            if member.issym():
                if not link_inside(parts, member.linkname):
                    raise UnsafeArchive(
                        f"{what} holds a link leading outside ('{member.name[:120]}')"
                    )
                _symlink(dest, parts, member.linkname, member.name)
                continue
            if not member.isreg():
                raise UnsafeArchive(
                    f"{what} holds a device, FIFO or other special file ('{member.name[:120]}')"
                )
            if total + member.size > max_bytes:
                raise PayloadTooLarge(f"{what} expands to more than {max_bytes} bytes")
            source = tar.extractfile(member)
            assert source is not None  # a regular member always has content
            total += _write(dest, parts, member, source, max_bytes - total)


def _symlink(dest: int, parts: list[str], target: str, name: str) -> None:
    parent = make_dirs(dest, parts[:-1], name)
    try:
        clear(parent, parts[-1], name)
        os.symlink(target, parts[-1], dir_fd=parent)
    finally:
        os.close(parent)


def _write(
    dest: int, parts: list[str], member: tarfile.TarInfo, source: IO[bytes], room: int
) -> int:
    parent = make_dirs(dest, parts[:-1], member.name)
    try:
        # owner rw always, x bits kept, never setuid/setgid/sticky
        fd = create_file(parent, parts[-1], (member.mode & 0o755) | 0o600, member.name)
    finally:
        os.close(parent)
    written = 0
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(_CHUNK):
            written += len(chunk)
            if written > room:
                raise PayloadTooLarge("archive content exceeds its size cap")
            out.write(chunk)
        if member.mtime > 0:
            os.utime(out.fileno(), (member.mtime, member.mtime))
    return written
