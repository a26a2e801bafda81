"""Where a command run in a folder keeps its state (as git finds .git)."""

from __future__ import annotations

from pathlib import Path

from lockstep.settings import find_home


def test_the_nearest_used_home_above_wins(tmp_path: Path) -> None:
    (tmp_path / ".lockstep").mkdir()
    (tmp_path / ".lockstep" / "lockstep.db").touch()
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_home(deep) == tmp_path / ".lockstep"


def test_a_folder_of_workflow_files_named_lockstep_is_no_home(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "sub" / ".lockstep").mkdir(parents=True)
    (tmp_path / "sub" / ".lockstep" / "ci.yaml").touch()
    assert find_home(tmp_path / "sub") == tmp_path / ".lockstep"


def test_outside_a_project_the_current_folder(tmp_path: Path) -> None:
    assert find_home(tmp_path) == tmp_path / ".lockstep"
