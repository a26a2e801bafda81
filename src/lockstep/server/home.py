"""The data directory: its exclusive lock and the file that tells clients where a server is."""

from __future__ import annotations

import fcntl
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lockstep.errors import ConfigError


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
