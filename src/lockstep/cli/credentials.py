"""Tokens saved by `lockstep login`, per server URL, in an owner-only file."""

from __future__ import annotations

import json
import os
from pathlib import Path


def _path(config_dir: Path) -> Path:
    return config_dir.expanduser() / "credentials.json"


def load(config_dir: Path, url: str) -> str | None:
    try:
        data = json.loads(_path(config_dir).read_text())
    except (OSError, ValueError):
        return None
    token = data.get(url.rstrip("/")) if isinstance(data, dict) else None
    return token if isinstance(token, str) else None


def save(config_dir: Path, url: str, token: str) -> Path:
    path = _path(config_dir)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            data = {}
    except (OSError, ValueError):
        data = {}
    data[url.rstrip("/")] = token
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    tmp.replace(path)
    return path
