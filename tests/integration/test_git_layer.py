"""The git layer against real git: file:// and a loopback git daemon, hostile repositories,
hostile input, force-pushes, vanished and stalled remotes. No git is mocked."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lockstep.registry.git import ls_remote, run_git
from lockstep.registry.mirror import MirrorCache
from lockstep.spec.git_names import GitError, RemoteUrl, check_ref_name, parse_remote

IDENT = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "init.defaultBranch=main"]
WORKFLOW = b"name: demo\nsteps:\n  a:\n    run: echo hi\n"


def git(cwd: Path, *args: str) -> str:
    proc = subprocess.run(
        ["git", *IDENT, *args], cwd=cwd, capture_output=True, text=True, check=True,
        env={**os.environ, "GIT_CONFIG_GLOBAL": "/dev/null", "GIT_CONFIG_NOSYSTEM": "1"},
    )  # fmt: skip
    return proc.stdout.strip()


class Origin:
    """A bare repository plus a working clone used to push commits into it."""

    def __init__(self, base: Path, name: str) -> None:
        self.bare = base / f"{name}.git"
        self.work = base / f"{name}-work"
        git(base, "init", "--bare", "-q", str(self.bare))
        git(base, "init", "-q", str(self.work))
        git(self.work, "remote", "add", "origin", str(self.bare))

    def write(self, path: str, data: bytes) -> None:
        target = self.work / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    def commit(self, message: str) -> str:
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        return git(self.work, "rev-parse", "HEAD")

    def push(self, *refs: str, force: bool = False) -> None:
        git(self.work, "push", "-q", *(["-f"] if force else []), "origin", *refs)

    @property
    def file_url(self) -> RemoteUrl:
        return parse_remote(f"file://{self.bare}", allow_file=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for_port(port: int, deadline_s: float = 10) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.02)
    raise AssertionError(f"nothing listening on {port}")


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    base = tmp_path_factory.mktemp("daemon")
    port = free_port()
    proc = subprocess.Popen(
        ["git", "daemon", "--export-all", f"--base-path={base}", "--reuseaddr",
         f"--port={port}", "--listen=127.0.0.1", str(base)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_for_port(port)
        yield base, port
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def origin(tmp_path: Path) -> Origin:
    repo = Origin(tmp_path, "origin")
    repo.write("workflow.yaml", WORKFLOW)
    repo.write("deploy/prod.workflow.yaml", WORKFLOW)
    repo.write(".lockstep/ci.yaml", WORKFLOW)
    repo.write(".lockstep/nested/skip.yaml", WORKFLOW)
    repo.write("README.md", b"hello\n")
    repo.commit("first")
    git(repo.work, "tag", "-a", "v1", "-m", "release 1")
    git(repo.work, "tag", "light")
    repo.push("main", "--tags")
    return repo


@pytest.fixture
def cache(tmp_path: Path) -> MirrorCache:
    return MirrorCache(tmp_path / "mirrors")


async def test_ls_remote_file_peels_annotated_tags(origin: Origin) -> None:
    head = git(origin.work, "rev-parse", "HEAD")
    refs = await ls_remote(origin.file_url, allow_file=True)
    assert refs == {"refs/heads/main": head, "refs/tags/v1": head, "refs/tags/light": head}
    tag_object = git(origin.work, "rev-parse", "v1")
    assert tag_object != head  # the annotated tag object itself is not what we report


async def test_file_protocol_refused_unless_allowed(origin: Origin) -> None:
    # A RemoteUrl forged past parse_remote still cannot use file:// without allow_file.
    forged = RemoteUrl(url=f"file://{origin.bare}", scheme="file", display="forged")
    with pytest.raises(GitError, match="forged"):
        await ls_remote(forged, allow_file=False)


async def test_git_daemon_end_to_end(daemon: tuple[Path, int], cache: MirrorCache) -> None:
    base, port = daemon
    repo = Origin(base, "served")
    repo.write("workflow.yaml", WORKFLOW)
    head = repo.commit("one")
    repo.push("main")
    remote = parse_remote(f"git://127.0.0.1:{port}/served.git")
    refs = await ls_remote(remote)
    assert refs == {"refs/heads/main": head}
    mirror = await cache.sync(remote, refs)
    assert await cache.resolve(mirror, "main") == head
    assert await cache.read_file(mirror, head, "workflow.yaml") == WORKFLOW
    assert mirror == cache.root / f"{remote.key}.git"
    assert await cache.sync(remote, refs) == mirror  # unchanged: no second fetch


async def test_sync_resolve_list_read_checkout(
    origin: Origin, cache: MirrorCache, tmp_path: Path
) -> None:
    remote = origin.file_url
    mirror = await cache.sync(remote, allow_file=True)
    head = git(origin.work, "rev-parse", "HEAD")
    assert await cache.resolve(mirror, "main") == head
    assert await cache.resolve(mirror, "refs/heads/main") == head
    assert await cache.resolve(mirror, "v1") == head  # annotated tag peeled to the commit
    assert await cache.resolve(mirror, "light") == head
    assert await cache.resolve(mirror, head[:7]) == head
    assert await cache.resolve(mirror, head.upper()) == head
    assert await cache.list_workflow_files(mirror, head) == [
        ".lockstep/ci.yaml", "deploy/prod.workflow.yaml", "workflow.yaml",
    ]  # fmt: skip
    dest = tmp_path / "checkout"
    await cache.checkout(mirror, head, dest)
    assert (dest / "workflow.yaml").read_bytes() == WORKFLOW
    assert (dest / ".lockstep" / "nested" / "skip.yaml").exists()
    assert not (dest / ".git").exists()
    with pytest.raises(GitError, match="not empty"):
        await cache.checkout(mirror, head, dest)
    for bad in ["nope", "0000000", "a" * 40]:
        with pytest.raises(GitError, match="not found") as info:
            await cache.resolve(mirror, bad)
        assert info.value.reason == "not-found"


async def test_unchanged_remote_is_not_fetched_again(origin: Origin, cache: MirrorCache) -> None:
    """How the scanner polls: ls_remote every tick, sync only when the refs changed. Passing
    the ls_remote result to sync makes an unchanged mirror return without touching the remote."""
    remote = origin.file_url
    refs = await ls_remote(remote, allow_file=True)
    mirror = await cache.sync(remote, refs, allow_file=True)
    assert await cache.local_refs(mirror) == refs
    origin.bare.rename(origin.bare.with_suffix(".away"))  # any fetch would now fail
    assert await cache.sync(remote, refs, allow_file=True) == mirror
    with pytest.raises(GitError, match="unreachable"):
        await cache.sync(remote, allow_file=True)  # no refs given: always fetches


async def test_force_push_and_deleted_branch(
    origin: Origin, cache: MirrorCache, tmp_path: Path
) -> None:
    remote = origin.file_url
    first = git(origin.work, "rev-parse", "HEAD")
    git(origin.work, "checkout", "-q", "-b", "dev")
    origin.write("workflow.yaml", b"name: two\n")
    second = origin.commit("second")
    origin.write("workflow.yaml", b"name: three\n")
    third = origin.commit("third")
    git(origin.work, "tag", "keep", second)
    git(origin.work, "branch", "gone")
    origin.push("dev", "gone", "--tags")
    mirror = await cache.sync(remote, allow_file=True)
    assert await cache.resolve(mirror, "dev") == third
    assert await cache.resolve(mirror, "gone") == third

    git(origin.work, "reset", "-q", "--hard", first)  # rewind dev past second and third
    origin.push("dev", force=True)
    git(origin.work, "push", "-q", "origin", "--delete", "gone")
    refs = await ls_remote(remote, allow_file=True)
    assert "refs/heads/gone" not in refs
    await cache.sync(remote, refs, allow_file=True)
    assert await cache.local_refs(mirror) == refs
    assert await cache.resolve(mirror, "dev") == first
    with pytest.raises(GitError, match="not found"):
        await cache.resolve(mirror, "gone")
    # a run pinned to an orphaned or tagged commit can still read it
    assert await cache.read_file(mirror, second, "workflow.yaml") == b"name: two\n"
    assert await cache.read_file(mirror, third, "workflow.yaml") == b"name: three\n"
    assert await cache.resolve(mirror, "keep") == second
    await cache.checkout(mirror, third, tmp_path / "pinned")
    assert (tmp_path / "pinned" / "workflow.yaml").read_bytes() == b"name: three\n"


async def test_concurrent_syncs_share_one_mirror(origin: Origin, cache: MirrorCache) -> None:
    remote = origin.file_url
    paths = await asyncio.gather(*(cache.sync(remote, allow_file=True) for _ in range(4)))
    assert len(set(paths)) == 1
    assert sorted(p.name for p in cache.root.iterdir() if p.suffix == ".git") == [paths[0].name]


HOSTILE_URLS = [
    "ext::sh -c touch% {marker}",
    "ext::sh -c 'touch {marker}'",
    "--upload-pack=touch {marker}",
    "-oProxyCommand=touch {marker}",
    "ssh://-oProxyCommand=touch%20{marker}/x",
    "git@-oProxyCommand=touch:{marker}",
    "fd::17",
    "file:///etc",
    "https://user:pass@example.com/r.git",
]


@pytest.mark.parametrize("template", HOSTILE_URLS)
async def test_hostile_urls_never_spawn_git(template: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    with pytest.raises(GitError) as info:
        parse_remote(template.format(marker=marker))
    assert info.value.reason == "invalid-url"
    assert "pass" not in str(info.value).replace("password", "")
    assert not marker.exists()


async def test_transport_helpers_blocked_inside_git_too(tmp_path: Path) -> None:
    """Defence in depth: even if validation were bypassed, the protocol allowlist holds."""
    marker = tmp_path / "pwned"
    for url in (f"ext::sh -c touch% {marker}", "fd::17"):
        forged = RemoteUrl(url=url, scheme="git", display="forged")
        with pytest.raises(GitError):
            await ls_remote(forged, timeout_s=10)
    with pytest.raises(GitError):
        await run_git(["ls-remote", "--", f"ext::sh -c touch% {marker}"], cwd=None, timeout_s=10)
    assert not marker.exists()


@pytest.mark.parametrize("rev", ["--output={tmp}/x", "refs/../../x", "main..x", "a@{{1}}", "-b"])
async def test_hostile_revisions(
    rev: str, origin: Origin, cache: MirrorCache, tmp_path: Path
) -> None:
    rev = rev.format(tmp=tmp_path)
    mirror = await cache.sync(origin.file_url, allow_file=True)
    with pytest.raises(GitError) as info:
        check_ref_name(rev)
    assert info.value.reason == "invalid-ref"
    with pytest.raises(GitError, match="invalid ref name"):
        await cache.resolve(mirror, rev)
    with pytest.raises(GitError, match="invalid commit SHA"):
        await cache.read_file(mirror, rev, "workflow.yaml")
    with pytest.raises(GitError, match="invalid commit SHA"):
        await cache.checkout(mirror, rev, tmp_path / "co")
    assert not (tmp_path / "x").exists()


async def test_hostile_paths(origin: Origin, cache: MirrorCache) -> None:
    mirror = await cache.sync(origin.file_url, allow_file=True)
    head = await cache.resolve(mirror, "main")
    for path in ["../etc/passwd", "/etc/passwd", "a//b", "./workflow.yaml", "x\x00y", ""]:
        with pytest.raises(GitError) as info:
            await cache.read_file(mirror, head, path)
        assert info.value.reason == "invalid-path"
    with pytest.raises(GitError, match="does not exist"):
        await cache.read_file(mirror, head, "*.yaml")  # no glob expansion
    with pytest.raises(GitError, match="not a regular file"):
        await cache.read_file(mirror, head, ".lockstep")


async def test_hooks_and_submodules_never_run(
    origin: Origin, cache: MirrorCache, tmp_path: Path
) -> None:
    marker = tmp_path / "hook-ran"
    evil = f"#!/bin/sh\ntouch {marker}\n".encode()
    origin.write(".githooks/post-checkout", evil)
    (origin.work / ".githooks" / "post-checkout").chmod(0o755)
    origin.write("hooks/post-checkout", evil)
    origin.write(".gitattributes", b"* filter=evil\n")
    origin.write(
        ".gitmodules",
        f'[submodule "sub"]\n\tpath = sub\n\turl = ext::sh -c touch% {marker}\n'.encode(),
    )
    git(origin.work, "add", "-A")
    head = git(origin.work, "rev-parse", "HEAD")
    git(origin.work, "update-index", "--add", "--cacheinfo", f"160000,{head},sub")
    git(origin.work, "config", "core.hooksPath", ".githooks")  # their clone would run it
    git(origin.work, "commit", "-q", "-m", "evil")  # not add -A: that would drop the gitlink
    commit = git(origin.work, "rev-parse", "HEAD")
    origin.push("main")

    remote = origin.file_url
    mirror = await cache.sync(remote, allow_file=True)
    # a tampered mirror: hooks that fire on ref updates and checkouts
    for name in ("post-checkout", "reference-transaction", "post-update", "pre-auto-gc"):
        hook = mirror / "hooks" / name
        hook.parent.mkdir(exist_ok=True)
        hook.write_bytes(evil)
        hook.chmod(0o755)
    origin.write("more.txt", b"x")
    origin.commit("more")
    origin.push("main")
    await cache.sync(remote, allow_file=True)
    dest = tmp_path / "run"
    await cache.checkout(mirror, commit, dest)
    assert not (dest / "sub").exists() or not any((dest / "sub").iterdir())
    assert (dest / ".gitmodules").exists()
    with pytest.raises(GitError, match="submodule"):
        await cache.read_file(mirror, commit, "sub")
    assert not marker.exists()


async def test_symlinked_workflow_is_refused(origin: Origin, cache: MirrorCache) -> None:
    (origin.work / "workflow.yaml").unlink()
    (origin.work / "workflow.yaml").symlink_to("/etc/passwd")
    (origin.work / "outside").symlink_to("/etc")
    (origin.work / "inner.workflow.yaml").symlink_to("README.md")
    head = origin.commit("links")
    origin.push("main")
    mirror = await cache.sync(origin.file_url, allow_file=True)
    with pytest.raises(GitError, match="is a symbolic link; workflow files must be regular files"):
        await cache.read_file(mirror, head, "workflow.yaml")
    with pytest.raises(GitError, match="does not exist"):
        await cache.read_file(mirror, head, "outside/passwd")
    listed = await cache.list_workflow_files(mirror, head)
    assert "workflow.yaml" not in listed and "inner.workflow.yaml" not in listed
    everything = await cache.list_workflow_files(mirror, head, regular_only=False)
    assert {"workflow.yaml", "inner.workflow.yaml"} <= set(everything)


async def test_huge_and_non_utf8_workflow_files(origin: Origin, cache: MirrorCache) -> None:
    origin.write("big.workflow.yaml", b"# padding\n" * 1_048_576)  # 10 MiB
    raw = b"name: \xff\xfe\x80 caf\xe9\n"
    origin.write("latin1.workflow.yaml", raw)
    head = origin.commit("big")
    origin.push("main")
    mirror = await cache.sync(origin.file_url, allow_file=True)
    with pytest.raises(GitError, match="over the 1048576 byte limit") as info:
        await cache.read_file(mirror, head, "big.workflow.yaml")
    assert info.value.reason == "too-large"
    assert await cache.read_file(mirror, head, "latin1.workflow.yaml") == raw


async def test_mirror_size_cap(origin: Origin, cache: MirrorCache) -> None:
    origin.write("noise.bin", os.urandom(2 * 1024 * 1024))
    origin.commit("noise")
    origin.push("main")
    with pytest.raises(GitError, match="larger than") as info:
        await cache.sync(origin.file_url, allow_file=True, max_bytes=1024 * 1024)
    assert info.value.reason == "too-large"
    assert not list(cache.root.glob("*.git")) and not list(cache.root.glob("*.tmp-*"))


async def test_vanished_remote(origin: Origin, cache: MirrorCache) -> None:
    remote = origin.file_url
    mirror = await cache.sync(remote, allow_file=True)
    shutil.rmtree(origin.bare)
    with pytest.raises(GitError) as info:
        await ls_remote(remote, allow_file=True)
    assert info.value.reason == "unreachable"
    assert remote.display in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(GitError, match="unreachable"):
        await cache.sync(remote, allow_file=True)
    assert await cache.resolve(mirror, "main")  # the last good mirror stays usable


async def test_vanished_remote_over_daemon(daemon: tuple[Path, int], cache: MirrorCache) -> None:
    _base, port = daemon
    remote = parse_remote(f"git://127.0.0.1:{port}/never-existed.git")
    with pytest.raises(GitError) as info:
        await ls_remote(remote, timeout_s=10)
    assert info.value.reason == "unreachable", str(info.value)
    with pytest.raises(GitError, match="unreachable"):
        await cache.sync(remote, timeout_s=10)
    assert not list(cache.root.glob("*.git")) and not list(cache.root.glob("*.tmp-*"))


@pytest.fixture
def stalled_port() -> Iterator[int]:
    """A TCP listener that accepts connections and never says anything."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


async def test_stalled_server_times_out(stalled_port: int, cache: MirrorCache) -> None:
    remote = parse_remote(f"git://127.0.0.1:{stalled_port}/x")
    with pytest.raises(GitError, match=r"timed out after 2s talking to git://127\.0\.0\.1") as info:
        await ls_remote(remote, timeout_s=2)
    assert info.value.reason == "timeout"
    with pytest.raises(GitError, match="timed out"):
        await cache.sync(remote, timeout_s=2)
    assert not list(cache.root.glob("*.git")) and not list(cache.root.glob("*.tmp-*"))


async def test_credentials_never_leak(cache: MirrorCache) -> None:
    port = free_port()  # nothing listens here
    remote = parse_remote(f"http://127.0.0.1:{port}/r.git", allow_http=True)
    auth = f"http://bot:s3cr3t-T0ken@127.0.0.1:{port}/r.git"
    for call in (
        ls_remote(remote, auth_url=auth, timeout_s=10),
        cache.sync(remote, auth_url=auth, timeout_s=10),
    ):
        with pytest.raises(GitError) as info:
            await call
        assert "s3cr3t" not in str(info.value) and "bot:" not in str(info.value)
    with pytest.raises(GitError, match="does not match"):
        await ls_remote(remote, auth_url="http://bot:x@evil.example/r.git")
    for path in cache.root.rglob("*"):
        if path.is_file():
            assert b"s3cr3t" not in path.read_bytes()


@pytest.fixture
def http_recorder() -> Iterator[tuple[int, list[dict[str, str]]]]:
    """A loopback HTTP server that records request headers and answers 401 to everything."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(dict(self.headers.items()))
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="x"')
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], seen
    server.shutdown()
    server.server_close()
    thread.join()


async def test_credentials_sent_as_header_and_masked(
    http_recorder: tuple[int, list[dict[str, str]]], cache: MirrorCache
) -> None:
    port, seen = http_recorder
    remote = parse_remote(f"http://127.0.0.1:{port}/r.git", allow_http=True)
    auth = f"http://bot:s3cr3t-T0ken@127.0.0.1:{port}/r.git"
    with pytest.raises(GitError) as info:
        await ls_remote(remote, auth_url=auth, timeout_s=10)
    assert info.value.reason == "auth", str(info.value)
    assert "s3cr3t" not in str(info.value)
    # Basic bot:s3cr3t-T0ken, delivered without the token ever being on git's command line
    assert any(h.get("Authorization") == "Basic Ym90OnMzY3IzdC1UMGtlbg==" for h in seen)
    with pytest.raises(GitError, match="only supported for https"):
        await ls_remote(parse_remote("git://h/r"), auth_url="git://u:p@h/r")
