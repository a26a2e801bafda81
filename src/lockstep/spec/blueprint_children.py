"""``workflow: ./kid.yaml`` steps inside a blueprint: the path names a file beside the
blueprint, but the run resolves it from the caller's file (``services/child_runs``), so a
blueprint file's children are rewritten for their place in the caller; a published blueprint,
read far from the repository it was published from, cannot name files of it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lockstep.errors import Diagnostic
from lockstep.spec.blueprint_files import PATH_PREFIXES, rebase_path
from lockstep.spec.yamlsafe import Position, nearest_position, pointer


def file_children(steps: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The ``workflow: ./file.yaml`` steps among ``steps``: (step id, path)."""
    return [
        (sid, step["workflow"])
        for sid, step in steps.items()
        if isinstance(step, dict)
        and isinstance(step.get("workflow"), str)
        and step["workflow"].startswith(PATH_PREFIXES)
    ]


def rebase_children(steps: dict[str, Any], blueprint: str, caller: str) -> list[tuple[str, str]]:
    """Rewrite, in place, each child path of the blueprint file ``blueprint``'s ``steps`` to
    name the same file from ``caller`` (both repository paths); (step, message) for each path
    that leads out of the repository."""
    problems = []
    for sid, ref in file_children(steps):
        try:
            steps[sid] = {**steps[sid], "workflow": rebase_path(blueprint, caller, ref)}
        except ValueError:
            why = f"workflow: '{ref}' leads outside the repository from {blueprint}"
            problems.append((sid, why + "; use a path inside it, or workflow: DEF@SELECTOR"))
    return problems


def unreachable_children(
    version: str, steps: Mapping[str, Any], positions: dict[str, Position], file: str
) -> list[Diagnostic]:
    """The published blueprint ``version``'s file children, each refused at its position (as
    its leftover ``uses: ./file`` are)."""
    found = []
    for sid, ref in file_children(steps):
        ptr = pointer("steps", sid, "workflow")
        line, col = nearest_position(positions, ptr)
        found.append(Diagnostic(
            f"published blueprint {version} runs the file '{ref}' (step '{sid}'), which a "
            "workflow using it cannot find; write workflow: DEF@SELECTOR there and publish "
            "it again", file, line, col, ptr))  # fmt: skip
    return found
