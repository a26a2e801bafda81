"""Push webhooks from GitHub, GitLab and Gitea: verify, then rescan the repository.

Each repository has its own secret (created with it and shown once). A delivery is matched
to repositories by the URLs in its payload and accepted only if its signature (GitHub,
Gitea: HMAC-SHA256 of the raw body) or token (GitLab) verifies, compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any

from lockstep.errors import InvalidRequest, Unauthenticated
from lockstep.storage.rows import RepositoryRow


def normalize_url(url: str) -> str:
    return url.strip().rstrip("/").removesuffix(".git").lower()


def payload_urls(body: bytes) -> set[str]:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise InvalidRequest("the webhook body is not JSON") from exc
    if not isinstance(data, dict):
        raise InvalidRequest("the webhook body is not a JSON object")
    urls: set[str] = set()
    for section, keys in (
        (
            "repository",
            ("clone_url", "html_url", "ssh_url", "git_url", "url", "git_http_url", "git_ssh_url"),
        ),
        ("project", ("git_http_url", "git_ssh_url", "http_url", "web_url")),
    ):
        block: Any = data.get(section)
        if isinstance(block, dict):
            urls |= {normalize_url(v) for k in keys if isinstance(v := block.get(k), str)}
    return urls


def verified(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    github = headers.get("x-hub-signature-256", "")
    if github:
        return hmac.compare_digest(github, "sha256=" + digest)
    gitea = headers.get("x-gitea-signature", "")
    if gitea:
        return hmac.compare_digest(gitea, digest)
    gitlab = headers.get("x-gitlab-token", "")
    if gitlab:
        return hmac.compare_digest(gitlab.encode(), secret.encode())
    return False


def accepted(
    candidates: list[tuple[RepositoryRow, str]], body: bytes, headers: Mapping[str, str]
) -> list[RepositoryRow]:
    """The repositories (with their decrypted secrets) this delivery proves itself for."""
    urls = payload_urls(body)
    matched = [(row, secret) for row, secret in candidates if normalize_url(row.url) in urls]
    ok = [row for row, secret in matched if verified(secret, body, headers)]
    if not ok:
        # unknown repository and bad signature look the same from outside
        raise Unauthenticated("webhook not accepted: unknown repository or invalid signature")
    return ok
