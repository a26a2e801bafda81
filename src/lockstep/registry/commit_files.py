"""Load a workflow file as it is at one commit of a mirror, blueprints expanded from that commit
(and published ones, ``DEF@SELECTOR``, through ``read_published`` when given)."""

from __future__ import annotations

from pathlib import Path

from lockstep.registry.mirror import MirrorCache
from lockstep.spec.blueprint_fetch import ReadPublished, load_fetching
from lockstep.spec.blueprint_files import BlueprintUnreadable
from lockstep.spec.git_names import GitError
from lockstep.spec.load import LoadedSpec, load_spec


async def load_at_commit(
    mirrors: MirrorCache,
    mirror: Path,
    sha: str,
    path: str,
    data: bytes,
    *,
    max_bytes: int,
    read_published: ReadPublished | None = None,
) -> LoadedSpec:
    """``data`` (the file ``path`` at ``sha``) loaded, its blueprints read from ``sha``."""

    async def read_file(name: str) -> bytes:
        try:
            return await mirrors.read_file(mirror, sha, name, max_bytes=max_bytes)
        except GitError as exc:
            raise BlueprintUnreadable(str(exc)) from None

    return await load_fetching(
        lambda files, published: load_spec(
            data, path, max_bytes=max_bytes, files=files, path=path, published=published
        ),
        read_file=read_file,
        read_published=read_published,
    )
