"""Scanning one repository: which workflow files each watched ref holds, and are they valid.

Pure with respect to the database: it returns what it found; ``storage.registry`` records it.
An unchanged remote (same refs as the last scan) costs one ``ls-remote`` and nothing else.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from lockstep.errors import SpecError
from lockstep.registry.git import ls_remote
from lockstep.registry.mirror import MirrorCache
from lockstep.spec.git_names import GitError, RemoteUrl

if TYPE_CHECKING:
    from lockstep.spec.blueprint_fetch import ReadPublished

MAX_WORKFLOW_BYTES = 1024 * 1024


@dataclass(frozen=True)
class FoundFile:
    ref: str  # e.g. "main" or "v1.2.0"
    sha: str
    path: str
    name: str | None  # the workflow's name when it parsed that far
    valid: bool
    text: str = ""
    digest: str = ""
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ScanResult:
    refs: dict[str, str]  # every ref of the remote (full names) -> sha
    changed: bool
    files: list[FoundFile] = field(default_factory=list)


def watched_refs(refs: dict[str, str], branches: list[str], tags: list[str]) -> dict[str, str]:
    """Short ref name -> sha for the branches and tags matching the repository's patterns."""
    out: dict[str, str] = {}
    for full, sha in refs.items():
        for prefix, patterns in (("refs/heads/", branches), ("refs/tags/", tags)):
            if full.startswith(prefix):
                short = full.removeprefix(prefix)
                if any(fnmatch.fnmatchcase(short, p) for p in patterns):
                    out[short] = sha
    return dict(sorted(out.items()))


async def scan(
    remote: RemoteUrl,
    mirrors: MirrorCache,
    *,
    branches: list[str],
    tags: list[str],
    previous: dict[str, str] | None,
    auth_url: str | None = None,
    allow_file: bool = False,
    timeout_s: float = 60,
    read_published: ReadPublished | None = None,
) -> ScanResult:
    refs = await ls_remote(remote, auth_url=auth_url, allow_file=allow_file, timeout_s=timeout_s)
    if previous is not None and refs == previous:
        return ScanResult(refs=refs, changed=False)
    mirror = await mirrors.sync(
        remote, refs, auth_url=auth_url, allow_file=allow_file, timeout_s=timeout_s * 2
    )
    files: list[FoundFile] = []
    for ref, sha in watched_refs(refs, branches, tags).items():
        for path in await mirrors.list_workflow_files(mirror, sha, regular_only=False):
            files.append(await _examine(mirrors, mirror, ref, sha, path, read_published))
    return ScanResult(refs=refs, changed=True, files=files)


async def _examine(
    mirrors: MirrorCache,
    mirror: Path,
    ref: str,
    sha: str,
    path: str,
    read_published: ReadPublished | None,
) -> FoundFile:
    # here: listing records never needs the spec package
    from lockstep.registry.commit_files import load_at_commit

    try:
        data = await mirrors.read_file(mirror, sha, path, max_bytes=MAX_WORKFLOW_BYTES)
    except GitError as exc:
        return FoundFile(ref=ref, sha=sha, path=path, name=None, valid=False, errors=[str(exc)])
    try:
        loaded = await load_at_commit(
            mirrors,
            mirror,
            sha,
            path,
            data,
            max_bytes=MAX_WORKFLOW_BYTES,
            read_published=read_published,  # uses: DEF@SELECTOR, of the repository's project
        )
    except SpecError as exc:
        return FoundFile(
            ref=ref,
            sha=sha,
            path=path,
            name=_name_hint(data),
            valid=False,
            errors=[str(d) for d in exc.diagnostics] or [str(exc)],
        )
    return FoundFile(
        ref=ref,
        sha=sha,
        path=path,
        name=loaded.spec.name,
        valid=True,
        text=loaded.text,
        digest=loaded.digest,
    )


def _name_hint(data: bytes) -> str | None:
    # an invalid file still names its definition when its `name:` line is readable
    for line in data.decode("utf-8", "replace").splitlines():
        if line.startswith("name:"):
            value = line.removeprefix("name:").strip().strip("'\"")
            return value or None
    return None


__all__ = ["FoundFile", "ScanResult", "scan", "watched_refs"]
