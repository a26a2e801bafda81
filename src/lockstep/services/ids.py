"""Run ids: short, URL-safe, and sortable by creation time."""

from __future__ import annotations

import base64
import secrets
import time


def new_run_id() -> str:
    stamp = int(time.time() * 1000).to_bytes(6, "big")
    raw = base64.b32encode(stamp + secrets.token_bytes(4)).decode().rstrip("=").lower()
    return f"r{raw}"
