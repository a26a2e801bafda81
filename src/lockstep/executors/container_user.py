"""Who a container step runs as, and making its mounts usable by that user.

A container runs as the step's explicit ``user:``, else the image's own ``USER``, else the
worker's configured non-root default (``LOCKSTEP_CONTAINER_USER``, ``65534:65534``): never as
root just because nobody said otherwise. The attempt's workspace and outputs directory belong to
the attempt alone, so they are handed to that user (``chown`` for a numeric user; for a user name
only the image knows, or a worker that may not chown, they are opened up with ``chmod``).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # no docker until a container step runs
    from docker.api import APIClient


#: image id -> its USER; an id names the image's content, so what it says never changes
_USERS: dict[str, str] = {}


def image_user(api: APIClient, *, image_id: str) -> str:
    """The image's ``USER`` ("" when it sets none)."""
    if image_id not in _USERS:
        info: dict[str, Any] = api.inspect_image(image_id)  # type: ignore[no-untyped-call]
        _USERS[image_id] = str((info.get("Config") or {}).get("User") or "")
    return _USERS[image_id]


def _numeric(user: str) -> tuple[int, int] | None:
    """(uid, gid) of a numeric ``uid[:gid]`` (gid -1: keep the group); None for names."""
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or (gid and not gid.isdigit()):
        return None
    return int(uid), int(gid) if gid else -1


def grant(paths: list[Path], user: str) -> None:
    """Make everything under ``paths`` readable and writable by ``user`` inside a container.
    Never follows a symlink: the trees are the step's own and may hold hostile ones."""
    ids = _numeric(user)
    if ids == (0, 0) or user in ("0", "root", "root:root"):
        return  # root can already
    for top in paths:
        for path in [top, *_walk(top)]:
            if ids is not None:
                try:
                    os.chown(path, *ids, follow_symlinks=False)
                    continue
                except PermissionError:
                    pass  # a worker that is not root: fall back to the mode bits
            _open_up(path)


def _walk(top: Path) -> list[Path]:
    found: list[Path] = []
    for root, dirs, files in os.walk(top):  # os.walk does not descend into symlinked dirs
        found.extend(Path(root, name) for name in dirs + files)
    return found


def _open_up(path: Path) -> None:
    with contextlib.suppress(OSError):
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            return
        extra = 0o777 if stat.S_ISDIR(mode) else 0o666
        path.chmod(stat.S_IMODE(mode) | extra)  # not a symlink: checked just above
