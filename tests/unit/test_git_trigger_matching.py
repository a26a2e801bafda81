"""Which refs a scan saw move, which git triggers listen to them, which instances follow them."""

from __future__ import annotations

import pytest

from lockstep.spec.triggers import GitTrigger
from lockstep.triggers.git import Move, follows, listens, moves

A, B, C = "a" * 40, "b" * 40, "c" * 40


def test_moves_are_new_or_moved_branches_and_tags_never_deleted_ones() -> None:
    before = {"refs/heads/main": A, "refs/heads/gone": A, "refs/tags/v1": A, "refs/heads/x": B}
    after = {"refs/heads/main": B, "refs/tags/v1": C, "refs/tags/v2": A, "refs/heads/x": B}
    assert moves(before, after) == [
        Move("refs/heads/main", A, B),
        Move("refs/tags/v1", A, C),
        Move("refs/tags/v2", None, A),
    ]


@pytest.mark.parametrize(
    ("branches", "tags", "ref", "fires"),
    [
        ([], [], "refs/heads/anything/at/all", True),  # no globs: every branch
        ([], [], "refs/tags/v1", False),  # ...and no tag
        ([], ["v*"], "refs/heads/main", False),  # tags only: no branch
        ([], ["v*"], "refs/tags/v1.2", True),
        (["release/*"], [], "refs/heads/release/1.0", True),
        (["release/*"], [], "refs/heads/main", False),
        (["release/*"], [], "refs/tags/release/1.0", False),  # a tag is not a branch
        (["main"], [], "refs/heads/mainline", False),
    ],
)
def test_globs_choose_the_refs_a_trigger_listens_to(
    branches: list[str], tags: list[str], ref: str, fires: bool
) -> None:
    trigger = GitTrigger(kind="git", branches=branches, tags=tags)
    assert listens(trigger, Move(ref, A, B)) is fires


@pytest.mark.parametrize(
    ("ref", "moved", "follows_it"),
    [
        ("main", "refs/heads/main", True),
        ("refs/heads/main", "refs/heads/main", True),
        ("v1", "refs/tags/v1", True),
        ("refs/heads/v1", "refs/tags/v1", False),
        ("release/1.0", "refs/heads/release/1.0", True),
        ("main", "refs/heads/other", False),
        (A, "refs/heads/main", False),  # pinned to a commit
        ("7", "refs/heads/7", False),  # a version number, not the branch '7'
        ("$LIVE", "refs/heads/main", False),  # a tag of versions
    ],
)
def test_only_instances_on_the_moved_ref_follow_it(ref: str, moved: str, follows_it: bool) -> None:
    assert follows("wf", ref, Move(moved, A, B)) is follows_it
