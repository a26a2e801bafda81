"""Files beneath a directory a step owns, opened without ever leaving it.

A step controls every name in its workspace and its outputs directory: any of them may be a
symlink (absolute, or climbing out with ``..``), a FIFO that would block a reader forever, or
a device. The worker therefore never hands such a path to ``open()``. It walks the path one
component at a time from a descriptor of the root (``openat`` with ``O_NOFOLLOW``), keeping the
descriptors of the directories it went through: a link is resolved by the walk itself (at most
``MAX_HOPS`` of them), a ``..`` steps back to the previous descriptor, and a link that is
absolute or climbs above the root is refused. Whatever the walk ends on is checked with
``fstat`` to be a regular file (or a directory, when one is asked for).

This does not depend on the kernel's ``openat2(RESOLVE_BENEATH)`` nor on the interpreter's
patch level; the names checked are the ones opened, so a link swapped in between a check and
an open makes the open fail (``ELOOP``) instead of following it.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from lockstep.errors import ExecutionError

#: as the kernel's own limit on links followed while resolving one path
MAX_HOPS = 40
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class ConfinedError(ExecutionError):
    """A path beneath a root is a link out of it, or not the kind of file expected."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message)
        self.path = path


def _split(rel: str) -> list[str]:
    if not rel or rel.startswith("/") or "\0" in rel:
        raise ConfinedError(f"'{rel[:200]}' is not a relative path", path=rel)
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ConfinedError(f"'{rel[:200]}' contains '..'", path=rel)
    return parts


def _root_fd(root: Path | int) -> int:
    if isinstance(root, int):
        return os.dup(root)
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _outside(rel: str) -> ConfinedError:
    return ConfinedError(f"'{rel[:200]}' is a link pointing outside", path=rel)


def _resolve(root: Path | int, rel: str, *, follow_last: bool) -> tuple[int, str | None]:
    """``(fd of the directory holding the last component, its name)``; name ``None`` when the
    path resolves to that directory itself. The caller owns (closes) the descriptor."""
    todo = _split(rel)
    stack = [_root_fd(root)]
    hops = 0
    try:
        while todo:
            part = todo.pop(0)
            if part in ("", "."):
                continue
            if part == "..":  # only from a link's target: back one real directory
                if len(stack) == 1:
                    raise _outside(rel)
                os.close(stack.pop())
                continue
            st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                hops += 1
                target = os.readlink(part, dir_fd=stack[-1])
                if hops > MAX_HOPS:
                    raise ConfinedError(f"'{rel[:200]}' has too many levels of links", path=rel)
                if target.startswith("/"):
                    raise _outside(rel)
                todo = target.split("/") + todo
                continue
            if not todo:
                return stack.pop(), part
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "Not a directory", rel)
            stack.append(open_dir_at(stack[-1], part, rel))
        return stack.pop(), None
    finally:
        for fd in stack:
            os.close(fd)


def open_dir_at(dir_fd: int, name: str, rel: str = "") -> int:
    """The directory ``name`` in ``dir_fd`` itself (never a link)."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # became a link after it was looked at
            raise _outside(rel or name) from None
        raise


def open_file(root: Path | int, rel: str, *, sole: bool = False) -> int:
    """A read-only descriptor of the regular file ``rel`` beneath ``root`` (links that stay
    inside are followed). ``ConfinedError`` for a link out, a FIFO, a device or a directory;
    ``FileNotFoundError`` when nothing is there. ``sole``: a file with other hard links (one
    may be a file outside the root) is refused too."""
    parent, name = _resolve(root, rel, follow_last=True)
    try:
        if name is None:
            raise ConfinedError(f"'{rel[:200]}' is a directory, not a file", path=rel)
        return open_regular_at(parent, name, rel, sole=sole)
    finally:
        os.close(parent)


def open_regular_at(dir_fd: int, name: str, rel: str = "", *, sole: bool = False) -> int:
    """``name`` in ``dir_fd``, read-only, if it is a regular file (never a link, never a
    FIFO opened: a FIFO would block the worker); ``sole``: with no other hard link."""
    rel = rel or name
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISREG(st.st_mode):
        raise ConfinedError(f"'{rel[:200]}' is not a regular file", path=rel)
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise _outside(rel) from None
        raise
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):  # swapped in between
        os.close(fd)
        raise ConfinedError(f"'{rel[:200]}' is not a regular file", path=rel)
    if sole and st.st_nlink > 1:
        os.close(fd)
        raise ConfinedError(f"'{rel[:200]}' has other hard links", path=rel)
    os.set_blocking(fd, True)
    return fd


def open_dir(root: Path | int, rel: str) -> int:
    """A descriptor of the directory ``rel`` beneath ``root`` (links inside followed; ``''``
    is the root itself)."""
    if rel in ("", ".") or not _split(rel):
        return _root_fd(root)
    parent, name = _resolve(root, rel, follow_last=True)
    if name is None:
        return parent
    try:
        st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, "Not a directory", rel)
        return open_dir_at(parent, name, rel)
    finally:
        os.close(parent)


def read_file(root: Path | int, rel: str, max_bytes: int, *, sole: bool = False) -> bytes:
    """At most ``max_bytes + 1`` bytes of the regular file ``rel`` beneath ``root``."""
    with os.fdopen(open_file(root, rel, sole=sole), "rb") as f:
        return f.read(max_bytes + 1)


def make_dirs(root: Path | int, parts: list[str], rel: str = "") -> int:
    """A descriptor of ``root/parts...``, creating missing directories; an existing link or
    file on the way is refused (nothing is ever created through a link)."""
    rel = rel or "/".join(parts)
    fd = _root_fd(root)
    try:
        for part in parts:
            if part in ("", ".", ".."):
                raise ConfinedError(f"'{rel[:200]}' contains '{part}'", path=rel)
            with suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            st = os.stat(part, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise ConfinedError(f"'{rel[:200]}' goes through a link", path=rel)
            if not stat.S_ISDIR(st.st_mode):
                raise ConfinedError(f"'{rel[:200]}' goes through a file", path=rel)
            nxt = open_dir_at(fd, part, rel)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        os.close(fd)
        raise


def clear(dir_fd: int, name: str, rel: str = "") -> None:
    """Remove the file or link ``name`` in ``dir_fd`` if there is one (a directory there is
    an error: an artifact never replaces a directory)."""
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        raise ConfinedError(f"'{(rel or name)[:200]}' is a directory", path=rel or name)
    os.unlink(name, dir_fd=dir_fd)


def create_file(dir_fd: int, name: str, mode: int = 0o644, rel: str = "") -> int:
    """A new regular file ``name`` in ``dir_fd``, open for writing. Whatever was there (a
    file, a link: never written through) is replaced; a directory there is an error."""
    rel = rel or name
    clear(dir_fd, name, rel)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    return os.open(name, flags, mode & 0o777, dir_fd=dir_fd)


def names(dir_fd: int) -> list[str]:
    """The entries of the open directory ``dir_fd``, sorted."""
    return sorted(os.listdir(dir_fd))


def entry_mode(dir_fd: int, name: str) -> int:
    """``st_mode`` of ``name`` in ``dir_fd`` itself (a link is not followed)."""
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode


@contextmanager
def pinned(fd: int) -> Iterator[Path]:
    """A path that names exactly the open file ``fd`` (Linux's ``/proc/self/fd``), for APIs
    that take a path: whatever happens to the name the step sees, this is the file checked."""
    path = Path(f"/proc/self/fd/{fd}")
    if not path.exists():  # pragma: no cover - every supported worker host is Linux
        raise ExecutionError("this worker needs /proc (Linux) to read a step's files safely")
    yield path
