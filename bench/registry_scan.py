"""Cost of lockstep's Git registry scanner on many repositories, against plain git floors.

Creates N bare repositories (default 200) on the local disk, each holding F workflow files
(default 5: workflow.yaml, ci/a.workflow.yaml, ci/b.workflow.yaml, .lockstep/nightly.yaml,
.lockstep/release.yaml) plus a few files that are not workflows, connects them all to an
in-process lockstep registry (SQLite metadata DB in a temporary home, no server, file://
remotes) and times, with bounded concurrency:
  * the first scan (ls-remote, mirror fetch, listing and reading every workflow file, versions),
  * an unchanged rescan with if_changed (the poller's path: it must not fetch; checked by
    counting git fetches and by comparing every mirror file's mtime before and after),
  * a forced rescan of unchanged remotes (the manual `repos scan` path: no fetch, files re-read),
  * a rescan after one new commit to workflow.yaml in every tenth repository,
and, as floors, plain `git ls-remote` (the cheapest poll) and `git clone --mirror` + `ls-tree -r`
+ `cat-file -p` of the workflow files (the least a first scan can do).

    python bench/registry_scan.py [--repos 200] [--files 5] [--concurrency 4] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

import lockstep.registry.git as lockstep_git
from lockstep.registry.mirror import is_workflow_path
from lockstep.server.runtime import secret_box
from lockstep.services.registry import RegistryService
from lockstep.settings import Settings
from lockstep.storage.database import Database
from lockstep.storage.rows import DefinitionRefRow, DefinitionRow, RepositoryRow, VersionRow

PROJECT = "default"
FIXED_PATHS = (
    "workflow.yaml",
    "ci/a.workflow.yaml",
    "ci/b.workflow.yaml",
    ".lockstep/nightly.yaml",
    ".lockstep/release.yaml",
)
OTHER_FILES = {  # not workflows: the scanner must skip them
    "README.md": "# bench repository\n",
    "src/app.py": "print('hello')\n",
    "ci/notes.yaml": "not: a workflow\n",
    ".lockstep/scripts/build.yaml": "also: not a workflow (nested under .lockstep)\n",
}
PLAIN_GIT_ENV = {
    **{k: v for k, v in os.environ.items() if not k.startswith("GIT_")},
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": "/dev/null",
    "LC_ALL": "C",
}


# -- repositories --------------------------------------------------------------------------


def workflow_paths(files: int) -> list[str]:
    extra = [f".lockstep/extra-{i}.yaml" for i in range(len(FIXED_PATHS), files)]
    return [*FIXED_PATHS[:files], *extra]


def workflow_text(repo: str, index: int, revision: int = 0) -> str:
    suffix = f" r{revision}" if revision else ""
    return (
        f"name: wf-{repo}-{index}\n"
        "steps:\n"
        "  a: {run: 'true'}\n"
        f"  b: {{run: 'echo hi{suffix}', needs: [a]}}\n"
    )


def fast_import_stream(files: dict[str, str], message: str, *, on_top: bool) -> bytes:
    """One commit on refs/heads/main holding ``files`` (added to the current tree if on_top)."""
    out = bytearray(b"commit refs/heads/main\n")
    out += f"committer Bench <bench@example.invalid> {int(time.time())} +0000\n".encode()
    msg = message.encode()
    out += b"data %d\n%s\n" % (len(msg), msg)
    if on_top:
        out += b"from refs/heads/main^0\n"
    for path, text in files.items():
        data = text.encode()
        out += b"M 100644 inline %s\ndata %d\n%s\n" % (path.encode(), len(data), data)
    return bytes(out)


async def git(*args: str, stdin: bytes | None = None) -> bytes:
    """Plain git, as a user would run it (no lockstep hardening); raises on failure."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=PLAIN_GIT_ENV,
    )
    out, err = await proc.communicate(stdin)
    if proc.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed: {err.decode(errors='replace').strip()}")
    return out


async def create_repo(path: Path, repo: str, files: int) -> None:
    await git("init", "--bare", "--quiet", "--initial-branch=main", str(path))
    content = {p: workflow_text(repo, i) for i, p in enumerate(workflow_paths(files))}
    content.update(OTHER_FILES)
    stream = fast_import_stream(content, f"initial {repo}", on_top=False)
    await git(f"--git-dir={path}", "fast-import", "--quiet", stdin=stream)


async def push_change(path: Path, repo: str) -> None:
    """A new commit on main changing workflow.yaml, as a `git push` would leave the remote."""
    stream = fast_import_stream({"workflow.yaml": workflow_text(repo, 0, 1)}, "change", on_top=True)
    await git(f"--git-dir={path}", "fast-import", "--quiet", stdin=stream)


async def bounded(limit: int, jobs: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return await asyncio.gather(*(one(j) for j in jobs))


# -- plain git floors ----------------------------------------------------------------------


async def floor_ls_remote(url: str) -> None:
    await git("ls-remote", "--heads", "--tags", url)


async def floor_clone_and_read(url: str, dest: Path) -> int:
    await git("clone", "--mirror", "--quiet", url, str(dest))
    listing = await git(f"--git-dir={dest}", "ls-tree", "-r", "-z", "--full-tree", "main")
    read = 0
    for entry in listing.split(b"\x00"):
        meta, _, name = entry.partition(b"\t")
        if meta and is_workflow_path(name.decode()):
            await git(f"--git-dir={dest}", "cat-file", "-p", meta.split()[2].decode())
            read += 1
    return read


# -- lockstep measurements -----------------------------------------------------------------


class GitCalls:
    """Counts the git processes lockstep spawns, by subcommand (wraps its one spawn point)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        original = lockstep_git._spawn

        async def counted(args: list[str], *rest: Any) -> Any:
            self.counts[next((a for a in args if not a.startswith("-")), "git")] += 1
            return await original(args, *rest)

        lockstep_git._spawn = counted

    def take(self) -> Counter[str]:
        taken, self.counts = self.counts, Counter()
        return taken


def mirror_snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every file and directory under the mirror cache -> (mtime_ns, size)."""
    out: dict[str, tuple[int, int]] = {}
    for base, dirs, files in os.walk(root):
        for name in [*dirs, *files]:
            st = (Path(base) / name).lstat()
            out[str(Path(base) / name)] = (st.st_mtime_ns, st.st_size)
    return out


def changed(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> int:
    return sum(1 for k in before.keys() | after.keys() if before.get(k) != after.get(k))


@dataclass(frozen=True)
class Census:
    definitions: int
    names: set[str]
    versions: int
    refs_valid_v1: int
    refs_valid_v2: int
    refs_other: int
    repo_errors: list[str]


def census(s: Session) -> Census:
    refs = s.execute(select(DefinitionRefRow.status, DefinitionRefRow.version)).all()
    errors = s.execute(select(RepositoryRow.name, RepositoryRow.error)).all()
    return Census(
        definitions=s.scalar(select(func.count()).select_from(DefinitionRow)) or 0,
        names=set(s.scalars(select(DefinitionRow.name))),
        versions=s.scalar(select(func.count()).select_from(VersionRow)) or 0,
        refs_valid_v1=sum(1 for st, v in refs if st == "valid" and v == 1),
        refs_valid_v2=sum(1 for st, v in refs if st == "valid" and v == 2),
        refs_other=sum(1 for st, v in refs if st != "valid" or v not in (1, 2)),
        repo_errors=[f"{n}: {e}" for n, e in errors if e],
    )


async def scan_all(
    registry: RegistryService, names: list[str], limit: int, *, if_changed: bool
) -> tuple[float, int]:
    """Scan every repository; returns (seconds, files the scanner read and examined)."""

    async def job(name: str) -> int:
        row, result = await registry.scan(PROJECT, name, if_changed=if_changed)
        if result is None:
            raise SystemExit(f"scan of {name} failed: {row.error}")
        return len(result.files)

    t0 = time.perf_counter()
    found = await bounded(limit, [partial(job, name) for name in names])
    return time.perf_counter() - t0, sum(found)


def per_repo(counts: Counter[str], repos: int) -> str:
    return f"{sum(counts.values()) / repos:.1f}"


# -- the benchmark -------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    phase: str
    seconds: float
    notes: str


async def run(args: argparse.Namespace, tmp: Path) -> list[Row]:
    n, files, limit = args.repos, args.files, args.concurrency
    names = [f"r{i:04d}" for i in range(n)]
    remotes = {name: tmp / "remotes" / f"{name}.git" for name in names}
    urls = {name: f"file://{path}" for name, path in remotes.items()}

    t0 = time.perf_counter()
    await bounded(max(8, limit), [partial(create_repo, remotes[m], m, files) for m in names])
    settings = Settings(home=tmp / "home", git_allow_file=True, database_url=None, secret_key=None)
    db = Database(settings.sqlalchemy_url())
    db.open()  # migrations, and the "default" project
    registry = RegistryService(
        settings=settings, db=db, box=secret_box(settings), root=settings.home_dir / "mirrors"
    )
    for name in names:
        await registry.add(
            PROJECT,
            url=urls[name],
            name=name,
            branches=["main"],
            tags=[],
            credentials=None,
            poll_s=86400,
        )
    print(f"setup: {n} repositories x {files} workflow files in {time.perf_counter() - t0:.1f}s")
    calls = GitCalls()
    rows: list[Row] = []
    try:
        # first scan
        secs, read = await scan_all(registry, names, limit, if_changed=False)
        git_calls = calls.take()
        after_first = await db.call(census)
        expected_names = {f"wf-{m}-{i}" for m in names for i in range(files)}
        assert not after_first.repo_errors, after_first.repo_errors[:5]
        assert after_first.definitions == n * files, after_first.definitions
        assert after_first.names == expected_names, "definitions were renamed or are missing"
        assert after_first.versions == n * files, after_first.versions
        assert after_first.refs_valid_v1 == n * files and after_first.refs_other == 0
        rows.append(
            Row(
                "lockstep first scan",
                secs,
                f"files: {read}, versions: {after_first.versions} (all v1, valid), "
                f"fetches: {git_calls['fetch']}, "
                f"git procs/repo: {per_repo(git_calls, n)}",
            )
        )

        # floor for the first scan
        floor_dir = tmp / "floor"
        floor_dir.mkdir()
        t0 = time.perf_counter()
        floor_read = await bounded(
            limit, [partial(floor_clone_and_read, urls[m], floor_dir / f"{m}.git") for m in names]
        )
        rows.append(
            Row(
                "git floor: clone --mirror + read",
                time.perf_counter() - t0,
                f"files: {sum(floor_read)}, git procs/repo: {2 + files}",
            )
        )

        # unchanged rescan, the poller's path: one ls-remote per repository, no fetch
        before = mirror_snapshot(registry.mirrors.root)
        secs, read = await scan_all(registry, names, limit, if_changed=True)
        git_calls = calls.take()
        touched = changed(before, mirror_snapshot(registry.mirrors.root))
        new = (await db.call(census)).versions - after_first.versions
        assert git_calls["fetch"] == 0 and touched == 0, (git_calls, touched)
        assert new == 0 and read == 0, (new, read)
        rows.append(
            Row(
                "lockstep unchanged rescan (poll)",
                secs,
                f"fetches: {git_calls['fetch']}, mirror files changed: {touched}/{len(before)}, "
                f"new versions: {new}, git procs/repo: {per_repo(git_calls, n)}",
            )
        )

        t0 = time.perf_counter()
        await bounded(limit, [partial(floor_ls_remote, urls[m]) for m in names])
        rows.append(Row("git floor: ls-remote only", time.perf_counter() - t0, "git procs/repo: 1"))

        # forced rescan of unchanged remotes: refs equal, so no fetch, but files are re-read
        before = mirror_snapshot(registry.mirrors.root)
        secs, read = await scan_all(registry, names, limit, if_changed=False)
        git_calls = calls.take()
        touched = changed(before, mirror_snapshot(registry.mirrors.root))
        new = (await db.call(census)).versions - after_first.versions
        assert git_calls["fetch"] == 0 and new == 0, (git_calls, new)
        rows.append(
            Row(
                "lockstep forced rescan",
                secs,
                f"files re-read: {read}, fetches: {git_calls['fetch']}, mirror files changed: "
                f"{touched}/{len(before)}, new versions: {new}, "
                f"git procs/repo: {per_repo(git_calls, n)}",
            )
        )

        # one push to every tenth repository, then the poller's rescan of all of them
        pushed = names[::10]
        await bounded(max(8, limit), [partial(push_change, remotes[m], m) for m in pushed])
        secs, read = await scan_all(registry, names, limit, if_changed=True)
        git_calls = calls.take()
        final = await db.call(census)
        new_versions = final.versions - after_first.versions
        assert new_versions == len(pushed), (new_versions, len(pushed))
        assert final.refs_valid_v2 == len(pushed) and git_calls["fetch"] == len(pushed)
        assert not final.repo_errors, final.repo_errors[:5]
        rows.append(
            Row(
                f"lockstep rescan after {len(pushed)} pushes",
                secs,
                f"fetches: {git_calls['fetch']}, files read: {read}, "
                f"new versions: {new_versions}, "
                f"git procs/repo: {per_repo(git_calls, n)}",
            )
        )
    finally:
        db.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--files", type=int, default=5, help="workflow files per repository")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    if args.repos < 1 or args.files < 1 or args.concurrency < 1:
        parser.error("--repos, --files and --concurrency must be at least 1")

    started = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="lockstep-regscan-"))
    try:
        rows = asyncio.run(run(args, tmp))
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(
        f"\n{args.repos} repositories x {args.files} workflow files, "
        f"concurrency {args.concurrency}, git {_git_version()}"
    )
    print(f"{'phase':<36}{'total s':>9}{'ms/repo':>10}   notes")
    for row in rows:
        ms = row.seconds / args.repos * 1000
        print(f"{row.phase:<36}{row.seconds:>9.2f}{ms:>10.1f}   {row.notes}")
    print(f"wall time (setup included): {time.perf_counter() - started:.1f}s")
    if args.keep:
        print(f"kept {tmp}")


def _git_version() -> str:
    return asyncio.run(git("--version")).decode().split()[-1]


if __name__ == "__main__":
    main()
