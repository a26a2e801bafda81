"""The confined opener: a path beneath a root a step owns, never followed out of it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lockstep.executors import confined
from lockstep.executors.confined import ConfinedError

SECRET = b"CANARY-never-read"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """``tmp_path/root`` with a file and a directory, and a canary beside it."""
    (tmp_path / "canary.txt").write_bytes(SECRET)
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "x.txt").write_bytes(SECRET)
    root = tmp_path / "root"
    (root / "sub" / "deep").mkdir(parents=True)
    (root / "sub" / "deep" / "f.txt").write_bytes(b"inside")
    (root / "top.txt").write_bytes(b"top")
    return root


def _read(root: Path, rel: str) -> bytes:
    return confined.read_file(root, rel, 1000)


def test_plain_files_and_links_that_stay_inside_are_read(tree: Path) -> None:
    assert _read(tree, "sub/deep/f.txt") == b"inside"
    (tree / "file-link").symlink_to("sub/deep/f.txt")
    (tree / "dir-link").symlink_to("sub")
    (tree / "sub" / "up").symlink_to("../top.txt")  # '..' that stays inside
    (tree / "sub" / "deep" / "chain").symlink_to("../../file-link")
    assert _read(tree, "file-link") == b"inside"
    assert _read(tree, "dir-link/deep/f.txt") == b"inside"
    assert _read(tree, "sub/up") == b"top"
    assert _read(tree, "sub/deep/chain") == b"inside"


@pytest.mark.parametrize(
    ("name", "target", "rel"),
    [
        ("abs", "{tmp}/canary.txt", "abs"),  # an absolute link
        ("rel", "../canary.txt", "rel"),  # a relative link climbing out
        ("sub/deep/far", "../../../canary.txt", "sub/deep/far"),
        ("dir", "{tmp}/outside", "dir/x.txt"),  # a directory link on the way
        ("dir", "../outside", "dir/x.txt"),
        ("sub/dot", ".", "sub/dot/../../canary.txt"),  # '..' after a link to '.'
    ],
)
def test_links_out_are_refused(tree: Path, name: str, target: str, rel: str) -> None:
    link = tree / name
    link.symlink_to(target.format(tmp=tree.parent))
    with pytest.raises(ConfinedError):
        _read(tree, rel)


def test_a_link_to_itself_or_a_long_chain_stops_with_an_error(tree: Path) -> None:
    (tree / "loop").symlink_to("loop")
    with pytest.raises(ConfinedError, match="too many levels of links"):
        _read(tree, "loop")
    for n in range(45):
        (tree / f"l{n}").symlink_to(f"l{n + 1}" if n < 44 else "top.txt")
    assert _read(tree, "l10") == b"top"  # 34 hops
    with pytest.raises(ConfinedError, match="too many levels"):
        _read(tree, "l0")  # 45 hops


@pytest.mark.parametrize("rel", ["../canary.txt", "sub/../../canary.txt", "/etc/passwd", "a\0b"])
def test_paths_that_name_the_outside_themselves_are_refused(tree: Path, rel: str) -> None:
    with pytest.raises(ConfinedError):
        _read(tree, rel)


def test_a_fifo_is_refused_without_blocking(tree: Path) -> None:
    os.mkfifo(tree / "pipe")
    (tree / "to-pipe").symlink_to("pipe")
    for rel in ("pipe", "to-pipe"):
        with pytest.raises(ConfinedError, match="not a regular file"):
            _read(tree, rel)  # a blocking open would hang the test (and the worker) here


def test_a_hard_link_is_refused_where_a_sole_file_is_asked_for(tree: Path) -> None:
    os.link(tree.parent / "canary.txt", tree / "hard")
    with pytest.raises(ConfinedError, match="has other hard links"):
        confined.read_file(tree, "hard", 1000, sole=True)


def test_a_directory_is_not_a_file(tree: Path) -> None:
    (tree / "up").symlink_to("sub/deep/..")
    with pytest.raises(ConfinedError, match="is a directory"):
        _read(tree, "up")
    with pytest.raises(ConfinedError, match="not a regular file"):
        _read(tree, "sub")


def test_missing_files_say_so(tree: Path) -> None:
    with pytest.raises(FileNotFoundError):
        _read(tree, "sub/nothing")


def test_paths_longer_than_path_max_work_component_by_component(tree: Path) -> None:
    parts = [f"{n:02d}" + "d" * 200 for n in range(30)]  # about 6,100 characters
    rel = "/".join(parts)
    assert len(rel) > os.pathconf("/", "PC_PATH_MAX")
    fd = confined.make_dirs(tree, parts)
    try:
        with os.fdopen(confined.create_file(fd, "f.txt"), "wb") as out:
            out.write(b"deep")
        os.symlink(str(tree.parent / "canary.txt"), "out", dir_fd=fd)
    finally:
        os.close(fd)
    assert _read(tree, rel + "/f.txt") == b"deep"
    with pytest.raises(ConfinedError):
        _read(tree, rel + "/out")


def test_nothing_is_created_through_a_link(tree: Path) -> None:
    canary = tree.parent / "canary.txt"
    (tree / "to-outside").symlink_to(tree.parent / "outside")
    with pytest.raises(ConfinedError, match="goes through a link"):
        confined.make_dirs(tree, ["to-outside", "new"])
    assert not (tree.parent / "outside" / "new").exists()
    # a link where a file is created is replaced, never written through
    (tree / "f").symlink_to(canary)
    root = os.open(tree, os.O_RDONLY | os.O_DIRECTORY)
    try:
        with os.fdopen(confined.create_file(root, "f"), "wb") as out:
            out.write(b"mine")
    finally:
        os.close(root)
    assert canary.read_bytes() == SECRET
    assert not (tree / "f").is_symlink() and (tree / "f").read_bytes() == b"mine"
