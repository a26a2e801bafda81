from __future__ import annotations

import asyncio
import hashlib
import io
import os
import shutil
import tarfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from lockstep.engine.types import Workspace
from lockstep.errors import InvalidRequest, NotFound, PayloadTooLarge
from lockstep.executors.workspace import WorkspaceError, WorkspaceManager
from lockstep.storage.blobs import DirectoryBlobStore
from lockstep.storage.snapshots import snapshot_directory


@pytest.fixture
def blobs(tmp_path: Path) -> DirectoryBlobStore:
    return DirectoryBlobStore(tmp_path / "blobs")


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []


# --- blob store ----------------------------------------------------------------------------


def test_put_file_round_trip(blobs: DirectoryBlobStore, tmp_path: Path) -> None:
    src = tmp_path / "src.bin"
    src.write_bytes(b"abc" * 1000)
    info = blobs.put_file("snapshots/x.tar.gz", src)
    assert info.size == 3000
    assert info.sha256 == hashlib.sha256(b"abc" * 1000).hexdigest()
    assert blobs.exists("snapshots/x.tar.gz")
    with blobs.open("snapshots/x.tar.gz") as f:
        assert f.read() == b"abc" * 1000
    assert blobs.path("snapshots/x.tar.gz") == blobs.root / "snapshots" / "x.tar.gz"
    # Replacing keeps exactly one file: the temp file was renamed over the old blob.
    src.write_bytes(b"new")
    blobs.put_file("snapshots/x.tar.gz", src)
    assert _files(blobs.root) == ["snapshots", "snapshots/x.tar.gz"]
    with blobs.open("snapshots/x.tar.gz") as f:
        assert f.read() == b"new"


async def _agen(chunks: list[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


@pytest.mark.parametrize("asynchronous", [False, True])
async def test_put_stream_and_its_cap(blobs: DirectoryBlobStore, asynchronous: bool) -> None:
    chunks = [b"a" * 10, b"b" * 10]
    source = _agen(chunks) if asynchronous else iter(chunks)
    info = await blobs.put_stream("k=v/blob", source, max_bytes=20)
    assert (info.size, info.sha256) == (20, hashlib.sha256(b"a" * 10 + b"b" * 10).hexdigest())
    source = _agen([*chunks, b"c"]) if asynchronous else iter([*chunks, b"c"])
    with pytest.raises(PayloadTooLarge, match=r"blob 'k=v/big' is larger than 20 bytes"):
        await blobs.put_stream("k=v/big", source, max_bytes=20)
    assert not blobs.exists("k=v/big")
    assert _files(blobs.root) == ["k=v", "k=v/blob"]  # no temp file left behind


async def test_failing_source_leaves_nothing(blobs: DirectoryBlobStore) -> None:
    def broken() -> Iterator[bytes]:
        yield b"partial"
        raise OSError("network went away")

    with pytest.raises(OSError, match="network went away"):
        await blobs.put_stream("a/b", broken(), max_bytes=100)
    assert not blobs.exists("a/b")
    assert _files(blobs.root) == ["a"]


def test_missing_blob_is_not_found(blobs: DirectoryBlobStore) -> None:
    with pytest.raises(NotFound, match=r"blob 'nope' not found"):
        blobs.open("nope")
    blobs.root.joinpath("dir").mkdir(parents=True)
    with pytest.raises(NotFound):
        blobs.open("dir")
    assert not blobs.exists("dir")


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "../../etc/passwd",
        "a/../../b",
        "a/./b",
        "a//b",
        "a/",
        ".",
        "..",
        "%2e%2e%2fetc",
        "a%2Fb",
        "a%2fb",
        "a\x00b",
        "a\\..\\b",
        "a b",
        "a/b:c",
        "x" * 1025,
    ],
)
def test_hostile_keys_are_rejected(blobs: DirectoryBlobStore, tmp_path: Path, key: str) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    for call in (
        lambda: blobs.put_file(key, src),
        lambda: blobs.open(key),
        lambda: blobs.exists(key),
        lambda: blobs.delete(key),
    ):
        with pytest.raises(InvalidRequest, match="invalid blob key"):
            call()
    with pytest.raises(InvalidRequest):
        asyncio.run(blobs.put_stream(key, iter([b"x"]), max_bytes=10))
    assert _files(tmp_path) == ["f"]


# --- snapshots -----------------------------------------------------------------------------


def _tree(root: Path) -> Path:
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "a.txt").write_text("alpha")
    (root / "sub" / "b.txt").write_text("beta")
    (root / "sub" / "deep" / "c.bin").write_bytes(bytes(range(256)))
    (root / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "run.sh").chmod(0o755)
    (root / "empty").mkdir()
    (root / "link-in").symlink_to("sub/b.txt")
    (root / "sub" / "link-up").symlink_to("../a.txt")
    return root


def _names(archive: Path) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(archive) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_snapshot_is_deterministic(tmp_path: Path) -> None:
    one = _tree(tmp_path / "one")
    first = snapshot_directory(one, tmp_path / "1.tar.gz")
    assert first == hashlib.sha256((tmp_path / "1.tar.gz").read_bytes()).hexdigest()
    assert snapshot_directory(one, tmp_path / "again.tar.gz") == first
    # Same content elsewhere, with other mtimes and permissions noise: same digest.
    two = tmp_path / "two"
    shutil.copytree(one, two, symlinks=True)
    os.utime(two / "a.txt", (time.time() + 1000, time.time() + 1000))
    (two / "a.txt").chmod(0o600)
    assert snapshot_directory(two, tmp_path / "2.tar.gz") == first
    (two / "a.txt").write_text("ALPHA")
    assert snapshot_directory(two, tmp_path / "3.tar.gz") != first

    members = _names(tmp_path / "1.tar.gz")
    assert sorted(members) == [
        "a.txt",
        "empty",
        "link-in",
        "run.sh",
        "sub",
        "sub/b.txt",
        "sub/deep",
        "sub/deep/c.bin",
        "sub/link-up",
    ]
    assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members.values())
    assert members["run.sh"].mode == 0o755
    assert members["a.txt"].mode == 0o644
    assert members["link-in"].issym() and members["link-in"].linkname == "sub/b.txt"


def test_snapshot_written_inside_its_directory_is_not_included(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    first = snapshot_directory(src, src / "snap.tar.gz")
    assert snapshot_directory(src, src / "snap.tar.gz") == first
    assert "snap.tar.gz" not in _names(src / "snap.tar.gz")


def test_snapshot_skips_vcs_caches_excludes_and_special_files(tmp_path: Path) -> None:
    src = _tree(tmp_path / "src")
    for skipped in (".git", ".lockstep", "sub/__pycache__", "out"):
        (src / skipped).mkdir()
        (src / skipped / "junk").write_text("junk")
    (src / "big.dat").write_text("data")
    os.mkfifo(src / "pipe")
    snapshot_directory(
        src, tmp_path / "s.tar.gz", exclude=[Path("out"), src / "big.dat", src / "missing"]
    )
    names = _names(tmp_path / "s.tar.gz")
    assert not {n for n in names if n.split("/")[0] in {".git", ".lockstep", "out", "pipe"}}
    assert "sub/__pycache__" not in names and "big.dat" not in names
    assert "a.txt" in names


def test_snapshot_drops_symlinks_that_leave_the_directory(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "inner").mkdir(parents=True)
    (tmp_path / "secret").write_text("secret")
    (src / "abs").symlink_to("/etc/passwd")
    (src / "up").symlink_to("../secret")
    (src / "inner" / "upup").symlink_to("../../secret")
    (src / "hop").symlink_to("inner/../../secret")
    (src / "dirlink").symlink_to(tmp_path)  # to a directory outside
    (src / "via").symlink_to("dirlink/secret")  # lexically inside, resolves outside
    (src / "ok").symlink_to("inner")
    (src / "dangling").symlink_to("inner/not-yet")
    snapshot_directory(src, tmp_path / "s.tar.gz")
    assert sorted(_names(tmp_path / "s.tar.gz")) == ["dangling", "inner", "ok"]


def test_snapshot_size_cap_is_checked_before_compressing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "small").write_bytes(b"x" * 1000)
    with (src / "huge.img").open("wb") as f:
        f.truncate(50 * 1024**3)  # sparse: 50 GiB that would take minutes to compress
    with pytest.raises(PayloadTooLarge) as err:  # at once: 50 GiB are never read
        snapshot_directory(src, tmp_path / "s.tar.gz")
    assert str(err.value).startswith(f"directory {src.resolve()} is larger than 200 MiB; list what")
    assert not (tmp_path / "s.tar.gz").exists()
    assert _files(tmp_path) == ["src", "src/huge.img", "src/small"]
    # Excluding the culprit makes it fit.
    snapshot_directory(src, tmp_path / "s.tar.gz", exclude=[Path("huge.img")])
    with pytest.raises(PayloadTooLarge, match=r"larger than 999 bytes"):
        snapshot_directory(src, tmp_path / "t.tar.gz", exclude=[Path("huge.img")], max_bytes=999)


# --- workspaces ----------------------------------------------------------------------------


@pytest.fixture
def manager(tmp_path: Path, blobs: DirectoryBlobStore) -> WorkspaceManager:
    return WorkspaceManager(tmp_path / "ws", blobs)


def _snapshot(tmp_path: Path, blobs: DirectoryBlobStore) -> str:
    src = _tree(tmp_path / "project")
    digest = snapshot_directory(src, tmp_path / "snap.tar.gz")
    key = f"snapshots/{digest}.tar.gz"
    blobs.put_file(key, tmp_path / "snap.tar.gz")
    return key


async def test_empty_workspace(manager: WorkspaceManager) -> None:
    a = await manager.prepare(Workspace(), "build-1")
    b = await manager.prepare(Workspace(), "build-1")
    assert a != b and a.is_dir() and b.is_dir()
    assert list(a.iterdir()) == []
    assert a.parent == manager.root / "attempts" and a.name.startswith("build-1-")
    await manager.cleanup(a)
    assert not a.exists()
    await manager.cleanup(a)  # already gone: no error


async def test_attempts_of_one_snapshot_are_isolated(
    manager: WorkspaceManager, blobs: DirectoryBlobStore, tmp_path: Path
) -> None:
    key = _snapshot(tmp_path, blobs)
    # Concurrent prepares of the same snapshot extract it once and share no directory.
    dirs = await asyncio.gather(*(manager.prepare(Workspace(key), "s") for _ in range(4)))
    assert len(set(dirs)) == 4
    assert len(list((manager.root / "snapshots").iterdir())) == 1
    for i, d in enumerate(dirs):
        assert (d / "a.txt").read_text() == "alpha"
        assert (d / "link-in").is_symlink() and (d / "link-in").read_text() == "beta"
        assert os.access(d / "run.sh", os.X_OK)
        (d / "a.txt").write_text(f"attempt {i}")  # through the same path in each copy
        (d / "sub" / "b.txt").unlink()
    for i, d in enumerate(dirs):
        assert (d / "a.txt").read_text() == f"attempt {i}"
    fresh = await manager.prepare(Workspace(key), "s")
    assert (fresh / "a.txt").read_text() == "alpha"
    assert (fresh / "sub" / "b.txt").read_text() == "beta"


async def test_name_is_sanitised(manager: WorkspaceManager) -> None:
    d = await manager.prepare(Workspace(), "../../evil name/x")
    assert d.parent == manager.root / "attempts"


async def test_relative_root_gives_absolute_attempt_paths(
    blobs: DirectoryBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    d = await WorkspaceManager(Path("rel"), blobs).prepare(Workspace(), "s")
    assert d.is_absolute() and d.is_relative_to(tmp_path / "rel")


def _tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _member(name: str, data: bytes = b"", **attrs: object) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for attr, value in attrs.items():
        setattr(info, attr, value)
    return info, data


@pytest.mark.parametrize(
    "member",
    [
        _member("../escape.txt", b"x"),
        _member("sub/../../escape.txt", b"x"),
        _member("link", type=tarfile.SYMTYPE, linkname="/etc/passwd"),
        _member("link", type=tarfile.SYMTYPE, linkname="../../outside"),
        _member("hard", type=tarfile.LNKTYPE, linkname="../../outside"),
        _member("dev", type=tarfile.CHRTYPE, devmajor=1, devminor=3),
    ],
)
async def test_hostile_snapshot_is_refused(
    manager: WorkspaceManager,
    blobs: DirectoryBlobStore,
    tmp_path: Path,
    member: tuple[tarfile.TarInfo, bytes],
) -> None:
    await blobs.put_stream("snapshots/bad", iter([_tar_gz([member])]), max_bytes=10**6)
    with pytest.raises(WorkspaceError, match=r"cannot unpack workspace snapshot 'snapshots/bad'"):
        await manager.prepare(Workspace("snapshots/bad"), "s")
    assert not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "ws" / "escape.txt").exists()
    assert list((manager.root / "snapshots").iterdir()) == []  # no half-extracted cache


async def test_absolute_member_is_refused(
    manager: WorkspaceManager, blobs: DirectoryBlobStore
) -> None:
    bad = _tar_gz([_member("/tmp/lockstep-abs-escape.txt", b"x")])
    await blobs.put_stream("snapshots/abs", iter([bad]), max_bytes=10**6)
    with pytest.raises(WorkspaceError, match="has an absolute name"):
        await manager.prepare(Workspace("snapshots/abs"), "s")
    assert not Path("/tmp/lockstep-abs-escape.txt").exists()


async def test_decompression_bomb_stops_at_cap(blobs: DirectoryBlobStore, tmp_path: Path) -> None:
    manager = WorkspaceManager(tmp_path / "ws", blobs, max_extract_bytes=1024 * 1024)
    bomb = _tar_gz([_member("zeros", bytes(4 * 1024 * 1024))])
    assert len(bomb) < 10_000
    await blobs.put_stream("snapshots/bomb", iter([bomb]), max_bytes=10**6)
    with pytest.raises(PayloadTooLarge, match="expands to more than 1048576 bytes"):
        await manager.prepare(Workspace("snapshots/bomb"), "s")
    assert list((manager.root / "snapshots").iterdir()) == []


async def test_missing_or_corrupt_snapshot(
    manager: WorkspaceManager, blobs: DirectoryBlobStore
) -> None:
    with pytest.raises(NotFound):
        await manager.prepare(Workspace("snapshots/none"), "s")
    await blobs.put_stream("snapshots/junk", iter([b"not a tarball"]), max_bytes=100)
    with pytest.raises(WorkspaceError, match="cannot unpack"):
        await manager.prepare(Workspace("snapshots/junk"), "s")
    assert list((manager.root / "attempts").glob("*")) == []
