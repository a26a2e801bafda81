"""Placing artifacts is unpacking hostile archives: whatever a tarball or the consumer's
workspace holds, nothing is written (or read) outside the workspace."""

from __future__ import annotations

import asyncio
import io
import os
import tarfile
from pathlib import Path

import pytest

from lockstep.engine.types import ArtifactRef
from lockstep.errors import PayloadTooLarge
from lockstep.executors import artifacts
from lockstep.executors.artifacts import ArtifactError, place_artifacts, store_artifacts
from lockstep.executors.untar import UnsafeArchive, member_parts
from lockstep.storage.blobs import DirectoryBlobStore

SECRET = b"CANARY-untouched"


class Place:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.blobs = DirectoryBlobStore(tmp / "blobs")
        self.workspace = tmp / "ws"
        self.workspace.mkdir()
        self.outside = tmp / "outside"
        self.outside.mkdir()
        self.canary = tmp / "canary.txt"
        self.canary.write_bytes(SECRET)

    def tar(self, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> ArtifactRef:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
            for info, data in members:
                if data is not None:
                    info.size = len(data)
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        key = f"artifacts/p/r/s/1/a{len(list((self.tmp / 'blobs').rglob('*')))}"
        asyncio.run(self.blobs.put_stream(key, iter([buf.getvalue()]), max_bytes=10**9))
        return ArtifactRef("s", "a", key, "tar", 0, "", ["."])

    def file(self, path: str, data: bytes = b"artifact") -> ArtifactRef:
        key = f"artifacts/p/r/s/1/f{len(list((self.tmp / 'blobs').rglob('*')))}"
        asyncio.run(self.blobs.put_stream(key, iter([data]), max_bytes=10**6))
        return ArtifactRef("s", "f", key, "file", len(data), "", [path])

    def place(self, ref: ArtifactRef) -> None:
        asyncio.run(place_artifacts(self.blobs, self.workspace, [ref]))

    def untouched(self) -> bool:
        return self.canary.read_bytes() == SECRET and not any(self.outside.iterdir())


@pytest.fixture
def place(tmp_path: Path) -> Place:
    return Place(tmp_path)


def _m(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mode = kind, link, 0o644
    return info


def _escape_members(outside: Path) -> list[list[tuple[tarfile.TarInfo, bytes | None]]]:
    return [
        [(_m("../outside/x"), b"x")],  # classic '..'
        [(_m("a/../../outside/x"), b"x")],
        [(_m(str(outside / "x")), b"x")],  # absolute
        [(_m("l", tarfile.SYMTYPE, str(outside)), None), (_m("l/x"), b"x")],
        [(_m("l", tarfile.SYMTYPE, "../outside"), None), (_m("l/x"), b"x")],
        # a link inside, then a file "through" it: never written through any link
        [
            (_m("d", tarfile.DIRTYPE), None),
            (_m("l", tarfile.SYMTYPE, "d"), None),
            (_m("l/x"), b"x"),
        ],
        [(_m("h", tarfile.LNKTYPE, str(outside.parent / "canary.txt")), None)],  # hard link
        [(_m("h", tarfile.LNKTYPE, "inside"), None)],
        [(_m("fifo", tarfile.FIFOTYPE), None)],
        [(_m("dev", tarfile.CHRTYPE), None)],
        [(_m("x" * 5000), b"x")],
    ]


@pytest.mark.parametrize("case", range(11))
def test_hostile_members_are_refused(place: Place, case: int) -> None:
    ref = place.tar(_escape_members(place.outside)[case])
    with pytest.raises(ArtifactError):
        place.place(ref)
    assert place.untouched()


@pytest.mark.parametrize("name", ["a\0b", "/abs", "a/../../b", "x" * 5000, "a/" + "y" * 256])
def test_member_names_are_checked_before_anything_is_written(name: str) -> None:
    with pytest.raises(UnsafeArchive):
        member_parts(name)


def _cve_2025_4517(outside: Path) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    """The published proof of concept for CVE-2025-4517: a chain of links through directory
    names so long that ``realpath`` gives up before PATH_MAX, so the 'data' filter believes
    a link that climbs out stays inside; then a file written through it."""
    comp = "d" * 247
    steps = "abcdefghijklmnop"
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    path = ""
    for step in steps:
        members.append((_m(os.path.join(path, comp), tarfile.DIRTYPE), None))
        members.append((_m(os.path.join(path, step), tarfile.SYMTYPE, comp), None))
        path = os.path.join(path, comp)
    linkpath = os.path.join(*steps, "l" * 254)
    members.append((_m(linkpath, tarfile.SYMTYPE, "../" * len(steps)), None))
    # realpath gives up on the too-long path at the last link and reads it as a directory,
    # so '..' looks like a step back inside; the kernel follows it to the top, one level up
    # from there is the workspace's parent
    escape = f"{linkpath}/../{outside.name}"
    members.append((_m("escape", tarfile.SYMTYPE, escape), None))
    members.append((_m("escape/pwned.txt"), b"pwned"))
    members.append((_m("flaglink", tarfile.LNKTYPE, "escape/pwned.txt"), None))
    return members


def test_the_cve_2025_4517_long_path_trick_writes_nothing_outside(place: Place) -> None:
    ref = place.tar(_cve_2025_4517(place.outside))
    with pytest.raises(ArtifactError):
        place.place(ref)
    assert place.untouched()


def test_a_decompression_bomb_stops_at_the_byte_cap(
    place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(artifacts, "MAX_EXTRACT_BYTES", 1024 * 1024)
    ref = place.tar([(_m("zeros"), bytes(8 * 1024 * 1024))])
    assert ref.key and os.path.getsize(place.blobs.path(ref.key)) < 50_000
    with pytest.raises(PayloadTooLarge, match="expands to more than 1048576 bytes"):
        asyncio.run(artifacts._to_the_end(artifacts._place, place.blobs, place.workspace, ref))
    assert not (place.workspace / "zeros").exists() or (
        (place.workspace / "zeros").stat().st_size <= 1024 * 1024
    )


def test_a_committed_link_is_never_written_through(place: Place) -> None:
    """The consumer's checkout has ``out -> outside`` (committed in its repository) and
    ``f -> canary``; artifacts that land there do not reach outside."""
    (place.workspace / "out").symlink_to(place.outside)
    (place.workspace / "f").symlink_to(place.canary)
    with pytest.raises(ArtifactError, match="goes through a link"):
        place.place(place.file("out/x.txt"))
    with pytest.raises(ArtifactError, match="goes through a link"):
        place.place(place.tar([(_m("out/x.txt"), b"x")]))
    # a file artifact where the link is replaces the link itself
    place.place(place.file("f", b"new"))
    assert not (place.workspace / "f").is_symlink()
    assert (place.workspace / "f").read_bytes() == b"new"
    assert place.untouched()


def test_a_well_formed_archive_lands_whole(place: Place) -> None:
    ref = place.tar(
        [
            (_m("dist", tarfile.DIRTYPE), None),
            (_m("dist/app.bin"), b"binary"),
            (_m("dist/latest", tarfile.SYMTYPE, "app.bin"), None),
            (_m("./top.txt"), b"top"),
        ]
    )
    place.place(ref)
    assert (place.workspace / "dist" / "app.bin").read_bytes() == b"binary"
    assert os.readlink(place.workspace / "dist" / "latest") == "app.bin"
    assert (place.workspace / "top.txt").read_bytes() == b"top"


@pytest.mark.parametrize(
    ("make", "pattern"),
    [
        (lambda ws, out: (ws / "leak").symlink_to(out / "x.txt"), "leak"),  # a file
        (lambda ws, out: (ws / "d").symlink_to(out), "d"),  # a directory
        (lambda ws, out: (ws / "d").symlink_to(out), "d/*"),  # a glob through it
        (lambda ws, out: (ws / "d").symlink_to(out), "**/x.txt"),
        (lambda ws, out: (ws / "d").symlink_to("../outside"), "d/x.txt"),
    ],
)
def test_storing_never_reads_through_a_link_out(place: Place, make: object, pattern: str) -> None:
    (place.outside / "x.txt").write_bytes(SECRET)
    make(place.workspace, place.outside)  # type: ignore[operator]
    refs: list[ArtifactRef] = []
    try:
        refs = asyncio.run(
            store_artifacts(
                place.blobs, place.workspace, step="s", patterns={"a": pattern}, prefix="p"
            )
        )
    except ArtifactError as exc:
        assert SECRET.decode() not in str(exc)
    for ref in refs:  # '**' does not descend into links: nothing of the outside stored
        with place.blobs.open(ref.key) as f:
            assert SECRET not in f.read()
    assert not refs or pattern == "**/x.txt"


@pytest.mark.parametrize(
    ("content", "compressed"),
    [(lambda i: os.urandom(300_000), False), (lambda i: b"build line %d\n" % i * 20_000, True)],
    ids=["random-bytes-stored-as-they-are", "text-compressed"],
)
def test_a_directory_artifact_is_compressed_only_when_that_gains_something(
    place: Place, content: object, compressed: bool
) -> None:
    """Random bytes are archived without zlib's effort (which gains nothing and ran at ~20 MB/s
    here); text still shrinks. Either way the archive is a tar.gz that lands back whole."""
    make = content
    assert callable(make)
    out = place.workspace / "out"
    out.mkdir()
    files = {f"part{i}.bin": make(i) for i in range(4)}
    for name, data in files.items():
        (out / name).write_bytes(data)
    raw = sum(len(d) for d in files.values())
    refs = asyncio.run(
        store_artifacts(
            place.blobs,
            place.workspace,
            step="s",
            patterns={"out": "out"},
            prefix="artifacts/p/r/s/1",
        )
    )
    (ref,) = refs
    assert (ref.size < raw / 5) if compressed else (ref.size > raw)
    with place.blobs.open(ref.key) as stored:
        assert stored.read(2) == b"\x1f\x8b"  # gzip, as downloads are named
    consumer = place.tmp / "consumer"
    consumer.mkdir()
    asyncio.run(place_artifacts(place.blobs, consumer, [ref]))
    assert {p.name: p.read_bytes() for p in (consumer / "out").iterdir()} == files
