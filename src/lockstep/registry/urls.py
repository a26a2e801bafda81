"""The credentials a remote is fetched with. The grammar of remote URLs, ref names and SHAs is
``spec.git_names`` (a workflow's ``sources:`` are checked with it, and spec sits below the
registry)."""

from __future__ import annotations

from lockstep.spec.git_names import RemoteUrl


def url_with_secret(remote: RemoteUrl, secret_value: str) -> str:
    """``remote`` with the ``user:token`` held by a credentials secret (user defaults to git)."""
    user, _, token = secret_value.rpartition(":")
    return remote.with_credentials(user or "git", token)
