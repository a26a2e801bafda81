"""API tokens: high-entropy random strings, stored only as their SHA-256."""

from __future__ import annotations

import hashlib
import re
import secrets

PREFIX = "lst_"
_FORMAT = re.compile(r"^lst_[A-Za-z0-9_-]{43}$")


def new_token() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def well_formed(token: str) -> bool:
    return bool(_FORMAT.fullmatch(token))


def token_hash(token: str) -> str:
    # tokens carry 256 random bits: a fast hash is enough, no password stretching needed
    return hashlib.sha256(token.encode()).hexdigest()


def display_prefix(token: str) -> str:
    return token[:10]
