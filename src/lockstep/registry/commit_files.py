"""Load a workflow file as it is at one commit of a mirror, blueprints expanded from that commit.

The expansion is synchronous and the mirror is read asynchronously, so the blueprint files are
fetched as the expansion asks for them: it runs, stops at the first file not read yet, that file
is read, and it runs again (a workflow reads at most ``MAX_FILES`` blueprint files).
"""

from __future__ import annotations

from pathlib import Path

from lockstep.registry.mirror import MirrorCache
from lockstep.spec.blueprint_files import MAX_FILES, BlueprintUnreadable
from lockstep.spec.git_names import GitError
from lockstep.spec.load import LoadedSpec, load_spec


class _NotReadYet(Exception):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class _CommitFiles:
    """The blueprint files read so far: their bytes, or why they cannot be read."""

    def __init__(self) -> None:
        self.found: dict[str, bytes | str] = {}

    def read(self, path: str) -> bytes:
        got = self.found.get(path)
        if got is None:
            raise _NotReadYet(path)
        if isinstance(got, str):
            raise BlueprintUnreadable(got)
        return got


async def load_at_commit(
    mirrors: MirrorCache, mirror: Path, sha: str, path: str, data: bytes, *, max_bytes: int
) -> LoadedSpec:
    """``data`` (the file ``path`` at ``sha``) loaded, its blueprints read from ``sha``."""
    files = _CommitFiles()
    for _ in range(MAX_FILES + 1):
        try:
            return load_spec(data, path, max_bytes=max_bytes, files=files, path=path)
        except _NotReadYet as missing:
            try:
                files.found[missing.path] = await mirrors.read_file(
                    mirror, sha, missing.path, max_bytes=max_bytes
                )
            except GitError as exc:
                files.found[missing.path] = str(exc)
    raise AssertionError("unreachable: the expansion reads at most MAX_FILES files")
