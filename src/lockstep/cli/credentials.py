"""What `lockstep login` keeps in the config directory, in owner-only files: a token per server
URL (``credentials.json``), and the current context (``context.json``): the server plain
commands talk to, as ``gh`` and ``argo`` keep theirs, until ``logout`` returns to the local
home."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

_CREDENTIALS = "credentials.json"
_CONTEXT = "context.json"


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    tmp.replace(path)
    return path


def load(config_dir: Path, url: str) -> str | None:
    token = _read(config_dir.expanduser() / _CREDENTIALS).get(url.rstrip("/"))
    return token if isinstance(token, str) else None


def save(config_dir: Path, url: str, token: str) -> Path:
    path = config_dir.expanduser() / _CREDENTIALS
    return _write(path, {**_read(path), url.rstrip("/"): token})


def forget(config_dir: Path, url: str) -> None:
    path = config_dir.expanduser() / _CREDENTIALS
    data = _read(path)
    if data.pop(url.rstrip("/"), None) is not None:
        _write(path, data)


def current(config_dir: Path) -> str | None:
    """The server of the current context; None for the local home."""
    url = _read(config_dir.expanduser() / _CONTEXT).get("current")
    return url if isinstance(url, str) and url else None


def use(config_dir: Path, url: str | None) -> Path:
    """Make ``url`` the current context (None: the local home)."""
    return _write(config_dir.expanduser() / _CONTEXT, {"current": url.rstrip("/") if url else None})
