"""The data directory: its exclusive lock and the file that tells clients where a server is."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lockstep.auth.roles import Role
from lockstep.errors import ConfigError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


class HomeBusy(ConfigError):
    """Another one-shot CLI run holds the home: this one is refused before it starts."""


@dataclass
class HomeLock:
    """An exclusive lock on a home directory, held for the life of the process."""

    home: Path
    _fd: int | None = None

    def acquire(self, role: str) -> None:
        try:
            self.home.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create lockstep home {self.home}: {exc.strerror}") from exc
        path = self.home / "lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read(path)
            os.close(fd)
            if holder.get("role") == "cli" and role == "cli":
                raise HomeBusy(
                    f"{self.home} is busy with another `lockstep run` (pid "
                    f"{holder.get('pid', '?')}); wait for it, or start `lockstep server` in "
                    "this home and every run goes through it at once"
                ) from None
            raise ConfigError(
                f"{self.home} is already in use by lockstep {holder.get('role', '?')} "
                f"(pid {holder.get('pid', '?')}); stop it or use another LOCKSTEP_HOME"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "role": role}).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def is_locked(home: Path) -> bool:
    path = home / "lock"
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def write_server_info(home: Path, info: dict[str, Any]) -> None:
    tmp = home / "server.json.tmp"
    tmp.write_text(json.dumps(info))
    tmp.replace(home / "server.json")


def running_server(home: Path) -> dict[str, Any] | None:
    """The server serving ``home``, if one is running (its lock is held)."""
    info = _read(home / "server.json")
    if info.get("url") and is_locked(home) and _read(home / "lock").get("role") == "server":
        return info
    return None


def clear_server_info(home: Path) -> None:
    (home / "server.json").unlink(missing_ok=True)


def read_json(path: Path) -> dict[str, Any]:
    return _read(path)


ADMIN_TOKEN_FILE = "admin.token"  # noqa: S105 - a file name, not a secret


def bootstrap_admin(s: Session, home: Path) -> str | None:
    """On a server's first start: an administrator and its token, written to a file only the
    owner can read (so the local CLI works) and returned to be printed once."""
    # imported here: the CLI reads this module on every call and needs no database for it
    from lockstep.storage import identity

    if identity.has_users(s):
        return None
    admin = identity.ensure_user(s, "admin", superuser=True)
    identity.set_member(s, "default", "admin", Role.admin)
    token, _ = identity.create_token(s, admin, "initial admin token")
    path = home / ADMIN_TOKEN_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    path.chmod(0o600)
    return token


def local_admin_token(home: Path) -> str | None:
    try:
        return (home / ADMIN_TOKEN_FILE).read_text().strip() or None
    except OSError:
        return None
