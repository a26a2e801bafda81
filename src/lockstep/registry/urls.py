"""The registry's door to git names: the grammar of remote URLs, ref names and SHAs (defined
once in ``spec.git_names``, since a workflow's ``sources:`` are checked with it and spec sits
below the registry) and the credentials a remote is fetched with."""

from __future__ import annotations

from lockstep.spec.git_names import (
    ALLOWED_SCHEMES,
    GitError,
    RemoteUrl,
    check_ref_name,
    check_sha,
    is_sha,
    mask_credentials,
    parse_remote,
)

__all__ = [
    "ALLOWED_SCHEMES",
    "GitError",
    "RemoteUrl",
    "check_ref_name",
    "check_sha",
    "is_sha",
    "mask_credentials",
    "parse_remote",
    "url_with_secret",
]


def url_with_secret(remote: RemoteUrl, secret_value: str) -> str:
    """``remote`` with the ``user:token`` held by a credentials secret (user defaults to git)."""
    user, _, token = secret_value.rpartition(":")
    return remote.with_credentials(user or "git", token)
