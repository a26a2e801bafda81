"""What an ad-hoc run's snapshot leaves out: .gitignore and .lockstepignore, as git reads them."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest

from lockstep.errors import PayloadTooLarge
from lockstep.storage.snapshots import snapshot_directory


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _snapshot(src: Path, dest: Path) -> list[str]:
    snapshot_directory(src, dest)
    with tarfile.open(dest) as tar:
        return sorted(m.name for m in tar.getmembers() if not m.isdir())


def _git_would_add(src: Path) -> list[str]:
    """What git itself keeps of the same tree: the reference for the rules' semantics."""
    subprocess.run(["git", "init", "-q", str(src)], check=True)
    out = subprocess.run(
        ["git", "ls-files", "--others", "--exclude-standard"],
        cwd=src, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return sorted(out.split())


TREE = {
    ".gitignore": "*.log\n!keep.log\nbuild/\n/top-only.txt\n.venv\ndocs/*.tmp\n",
    "a.py": "",
    "run.log": "",
    "keep.log": "",
    "top-only.txt": "",
    "sub/top-only.txt": "",
    "sub/deep.log": "",
    "build/out.bin": "",
    "sub/build/out.bin": "",
    ".venv/lib/site.py": "",
    "docs/a.tmp": "",
    "docs/b.md": "",
    "docs/nested/c.tmp": "",
    "sub/.gitignore": "!deep.log\nlocal.txt\n",
    "sub/local.txt": "",
    "local.txt": "",
}


def test_gitignore_is_honoured_as_git_honours_it(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write(src, TREE)
    kept = _snapshot(src, tmp_path / "s.tar.gz")
    assert kept == _git_would_add(src)
    assert "a.py" in kept and "keep.log" in kept and "sub/deep.log" in kept
    assert not any(name.startswith((".venv", "build/", "sub/build")) for name in kept)


def test_lockstepignore_adds_to_gitignore_and_can_take_back(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write(src, {
        ".gitignore": "*.csv\n",
        ".lockstepignore": "NOTES.md\nscratch/\n!wanted.csv\n",
        "NOTES.md": "", "data.csv": "", "wanted.csv": "", "scratch/x": "", "main.py": "",
    })  # fmt: skip
    assert _snapshot(src, tmp_path / "s.tar.gz") == [
        ".gitignore",
        ".lockstepignore",
        "main.py",
        "wanted.csv",
    ]


def test_an_unrelated_ignored_file_leaves_the_snapshot_unchanged(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write(src, {".lockstepignore": "NOTES.md\n", "main.py": "print(1)\n"})
    before = snapshot_directory(src, tmp_path / "1.tar.gz")
    (src / "NOTES.md").write_text("thoughts\n")
    assert snapshot_directory(src, tmp_path / "2.tar.gz") == before  # cache keys stay


def test_the_repository_gitignore_applies_to_a_workflow_in_a_subfolder(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    _write(repo, {".gitignore": "*.bin\nwf/cache/\n", "wf/main.py": "", "wf/x.bin": ""})
    _write(repo, {"wf/cache/c": ""})
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    assert _snapshot(repo / "wf", tmp_path / "s.tar.gz") == ["main.py"]
    # outside a git work tree, the directories above have no say
    plain = tmp_path / "plain"
    _write(plain, {".gitignore": "*.bin\n", "wf/main.py": "", "wf/x.bin": ""})
    assert _snapshot(plain / "wf", tmp_path / "p.tar.gz") == ["main.py", "x.bin"]


def test_an_ignored_directory_is_never_walked_nor_counted(tmp_path: Path) -> None:
    src = tmp_path / "src"
    _write(src, {".gitignore": ".venv/\n", "main.py": ""})
    venv = src / ".venv"
    venv.mkdir()
    with (venv / "huge.img").open("wb") as f:
        f.truncate(300 * 1024**2)  # sparse, over the 200 MiB cap
    assert _snapshot(src, tmp_path / "s.tar.gz") == [".gitignore", "main.py"]
    (src / ".gitignore").write_text("")
    with pytest.raises(
        PayloadTooLarge, match=r"list what the run does not need in \.lockstepignore"
    ):
        snapshot_directory(src, tmp_path / "s.tar.gz")


def test_an_ignore_file_that_is_a_symlink_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside-rules"
    outside.write_text("*.py\n")
    src = tmp_path / "src"
    _write(src, {"main.py": ""})
    (src / ".gitignore").symlink_to(outside)
    assert _snapshot(src, tmp_path / "s.tar.gz") == ["main.py"]
