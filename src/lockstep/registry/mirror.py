"""Bare mirror caches of remote repositories: incremental sync, resolving revisions,
reading workflow files and making clean checkouts, all through the safe ``run_git``."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

from lockstep.registry.git import MiB, auth_env, run_git
from lockstep.spec.git_names import GitError, RemoteUrl, check_ref_name, check_sha, is_sha

_REGULAR_MODES = ("100644", "100755")


def _tree_size(path: Path) -> int:
    total = 0
    for base, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += (Path(base) / name).lstat().st_size
    return total


def _empty_dir(path: Path) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    return not any(path.iterdir())


def _check_repo_path(path: str) -> str:
    parts = path.split("/")
    if (
        not path
        or len(path) > 4096
        or path.startswith("/")
        or any(ord(c) < 0x20 or c in "\x7f\\" for c in path)
        or any(p in ("", ".", "..") for p in parts)
    ):
        shown = "".join(c if c.isprintable() else "?" for c in path)[:200]
        raise GitError(f"invalid path {shown!r} in repository: use a relative path without "
                       "'..', '.' or empty components", reason="invalid-path")  # fmt: skip
    return path


def is_workflow_path(path: str) -> bool:
    """The file names the scanner registers as workflow definitions."""
    name = path.rpartition("/")[2]
    if name == "workflow.yaml" or name.endswith(".workflow.yaml"):
        return True
    folder, _, rest = path.partition("/")
    return folder == ".lockstep" and "/" not in rest and rest.endswith(".yaml")


_memory_locks: dict[str, asyncio.Lock] = {}


class MirrorCache:
    """One bare mirror per repository under ``root``, named by a hash of its credential-free URL."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def mirror_path(self, remote: RemoteUrl) -> Path:
        return self.root / f"{remote.key}.git"

    async def sync(
        self,
        remote: RemoteUrl,
        refs: dict[str, str] | None = None,
        *,
        auth_url: str | None = None,
        allow_file: bool = False,
        timeout_s: float = 120,
        max_bytes: int = 500 * MiB,
    ) -> Path:
        """Create or update the mirror of ``remote``; returns its path.

        When ``refs`` (a full ``ls_remote`` result) equals what the mirror already holds, no fetch
        happens. Deleted branches and tags are pruned; force-pushed branches follow the remote.
        """
        mirror = self.mirror_path(remote)
        self.root.mkdir(parents=True, exist_ok=True)
        lock = _memory_locks.setdefault(str(mirror.resolve()), asyncio.Lock())
        async with lock, _file_lock(self.root / f"{remote.key}.lock", timeout_s, remote.display):
            exists = await asyncio.to_thread(mirror.is_dir)
            if refs is not None and exists and await self.local_refs(mirror) == refs:
                return mirror
            await self._fetch(remote, mirror, auth_url, allow_file, timeout_s, max_bytes)
        return mirror

    async def _fetch(
        self,
        remote: RemoteUrl,
        mirror: Path,
        auth_url: str | None,
        allow_file: bool,
        timeout_s: float,
        max_bytes: int,
    ) -> None:
        fresh = not await asyncio.to_thread(mirror.is_dir)
        # A first fetch goes to a temporary name so a failure never leaves a half mirror behind.
        target = self.root / f"{remote.key}.tmp-{uuid.uuid4().hex}" if fresh else mirror
        env, redact = auth_env(remote, auth_url)
        too_big = (f"repository {remote.display} is larger than the {max_bytes // MiB} MiB cap; "
                   "ask an administrator to raise it")  # fmt: skip
        try:
            if fresh:
                await run_git(["init", "--bare", "--quiet", "--template=", "--", str(target)],
                              cwd=None, timeout_s=30)  # fmt: skip
                # keeps commits a force-push orphaned readable for runs pinned to them
                await run_git([f"--git-dir={target}", "config", "gc.pruneExpire", "never"],
                              cwd=None, timeout_s=30)  # fmt: skip
            await run_git(
                [f"--git-dir={target}", "fetch", "--prune", "--no-tags", "--no-recurse-submodules",
                 "--no-write-fetch-head", "--quiet", "--", remote.url,
                 "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"],
                cwd=None, timeout_s=timeout_s, env_extra=env, allow_file=allow_file,
                display=remote.display, redact=redact,
                abort_check=lambda: too_big if _tree_size(target) > max_bytes else None,
            )  # fmt: skip
            if await asyncio.to_thread(_tree_size, target) > max_bytes:
                raise GitError(too_big, reason="too-large")
        except BaseException as exc:
            if fresh or (isinstance(exc, GitError) and exc.reason == "too-large"):
                await asyncio.to_thread(shutil.rmtree, target, True)
            raise
        if fresh:
            target.rename(mirror)

    async def local_refs(self, mirror: Path) -> dict[str, str]:
        """Branches and tags the mirror holds, in the same shape ``ls_remote`` returns."""
        raw = await run_git(
            [f"--git-dir={mirror}", "for-each-ref",
             "--format=%(refname)%00%(objectname)%00%(*objectname)", "refs/heads", "refs/tags"],
            cwd=None, timeout_s=30, max_output=256 * MiB,
        )  # fmt: skip
        refs: dict[str, str] = {}
        for line in raw.decode("utf-8", "replace").splitlines():
            name, _, rest = line.partition("\x00")
            sha, _, peeled = rest.partition("\x00")
            refs[name] = peeled or sha
        return refs

    async def resolve(self, mirror: Path, rev: str) -> str:
        """Full commit SHA for a branch, tag, full ref name or SHA (prefix of at least 7)."""
        if is_sha(rev) and len(rev) in (40, 64):
            return await self._commit_by_prefix(mirror, rev.lower())
        if not is_sha(rev):
            check_ref_name(rev)
        refs = await self.local_refs(mirror)
        names = [rev] if rev.startswith("refs/") else [f"refs/heads/{rev}", f"refs/tags/{rev}"]
        hits = {n: refs[n] for n in names if n in refs}
        if len(set(hits.values())) > 1:
            raise GitError(f"{rev!r} is both a branch and a tag at different commits; say "
                           f"refs/heads/{rev} or refs/tags/{rev}", reason="ambiguous")  # fmt: skip
        if hits:
            return next(iter(hits.values()))
        if is_sha(rev):
            return await self._commit_by_prefix(mirror, rev.lower())
        raise GitError(
            f"revision {rev!r} not found: it is not a branch, tag or commit of the "
            "repository; check the name or rescan the repository",
            reason="not-found",
        )

    async def _commit_by_prefix(self, mirror: Path, prefix: str) -> str:
        check_sha(prefix)
        listed = await run_git([f"--git-dir={mirror}", "rev-parse", f"--disambiguate={prefix}"],
                               cwd=None, timeout_s=30)  # fmt: skip
        oids = listed.decode().split()
        commits: list[str] = []
        if oids:
            typed = await run_git(
                [f"--git-dir={mirror}", "cat-file", "--batch-check=%(objectname) %(objecttype)"],
                cwd=None, timeout_s=30, stdin="\n".join(oids).encode() + b"\n",
            )  # fmt: skip
            commits = [
                ln.split()[0] for ln in typed.decode().splitlines() if ln.endswith(" commit")
            ]
        if len(commits) == 1:
            return commits[0]
        if commits:
            shown = ", ".join(sorted(commits)[:10])
            raise GitError(f"commit prefix {prefix} is ambiguous ({shown}); give more digits",
                           reason="ambiguous")  # fmt: skip
        raise GitError(f"commit {prefix} not found in the repository; check the SHA or sync the "
                       "repository again", reason="not-found")  # fmt: skip

    async def read_file(
        self, mirror: Path, sha: str, path: str, *, max_bytes: int = 1 * MiB
    ) -> bytes:
        """Bytes of the regular file ``path`` at commit ``sha``; the caller decodes them.

        Only git objects are read, never the filesystem, and the size is checked before reading.
        """
        sha, path = check_sha(sha), _check_repo_path(path)
        listing = await run_git(
            [f"--git-dir={mirror}", "ls-tree", "-l", "-z", "--full-tree", sha, "--", path],
            cwd=None, timeout_s=30,
        )  # fmt: skip
        entry = next((e for e in listing.split(b"\x00") if e.partition(b"\t")[2] == path.encode()),
                     None)  # fmt: skip
        if entry is None:
            raise GitError(f"{path} does not exist at commit {sha[:12]}", reason="not-found")
        mode, kind, oid, size = entry.partition(b"\t")[0].decode().split()
        if mode == "120000":
            raise GitError(f"{path} is a symbolic link; workflow files must be regular files",
                           reason="not-regular")  # fmt: skip
        if mode == "160000":
            raise GitError(f"{path} is a submodule; workflow files must be regular files in the "
                           "repository itself", reason="not-regular")  # fmt: skip
        if mode not in _REGULAR_MODES or kind != "blob":
            raise GitError(f"{path} is not a regular file (mode {mode}); workflow files must be "
                           "regular files", reason="not-regular")  # fmt: skip
        if int(size) > max_bytes:
            raise GitError(f"{path} is {int(size)} bytes, over the {max_bytes} byte limit for "
                           "workflow files; make it smaller", reason="too-large")  # fmt: skip
        return await run_git([f"--git-dir={mirror}", "cat-file", "blob", oid],
                             cwd=None, timeout_s=30, max_output=max_bytes)  # fmt: skip

    async def list_workflow_files(
        self, mirror: Path, sha: str, *, regular_only: bool = True
    ) -> list[str]:
        """Sorted workflow file paths at ``sha``: ``workflow.yaml``, ``*.workflow.yaml`` anywhere
        and ``.lockstep/*.yaml``. With ``regular_only=False`` symlinks and submodules with such
        names are listed too, so the scanner can report them (``read_file`` then refuses them).
        """
        sha = check_sha(sha)
        raw = await run_git([f"--git-dir={mirror}", "ls-tree", "-r", "-z", "--full-tree", sha],
                            cwd=None, timeout_s=60, max_output=256 * MiB)  # fmt: skip
        found: list[str] = []
        for entry in raw.split(b"\x00"):
            meta, _, name = entry.partition(b"\t")
            path = name.decode("utf-8", "surrogateescape")
            if not meta or not is_workflow_path(path):
                continue
            if regular_only and meta.split()[0].decode() not in _REGULAR_MODES:
                continue
            found.append(path)
        return sorted(found)

    async def checkout(self, mirror: Path, sha: str, dest: Path, *, timeout_s: float = 120) -> None:
        """Write exactly commit ``sha`` into the empty or missing directory ``dest``.

        The copy has no ``.git``: a step cannot reach, and so cannot poison, the shared mirror.
        Submodules stay empty directories and no hook runs.
        """
        sha = check_sha(sha)
        if not await asyncio.to_thread(_empty_dir, dest):
            raise GitError(f"checkout directory {dest} is not empty", reason="invalid-path")
        with tempfile.TemporaryDirectory(prefix="lockstep-index-") as scratch:
            await run_git(
                [f"--git-dir={mirror}", f"--work-tree={dest}", "read-tree", "--reset", "-u",
                 f"{sha}^{{commit}}"],
                cwd=None, timeout_s=timeout_s, max_output=1 * MiB,
                env_extra={"GIT_INDEX_FILE": str(Path(scratch) / "index")},
            )  # fmt: skip


@contextlib.asynccontextmanager
async def _file_lock(path: Path, timeout_s: float, display: str) -> AsyncIterator[None]:
    """Exclusive flock so two processes never fetch into the same mirror at once."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        deadline = asyncio.get_running_loop().time() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if asyncio.get_running_loop().time() > deadline:
                    raise GitError(
                        f"timed out after {timeout_s:g}s waiting for another sync of "
                        f"{display}; retry later",
                        reason="timeout",
                    ) from None
                await asyncio.sleep(0.05)
        yield
    finally:
        os.close(fd)
