"""Checks of ``artifacts`` (what a step stores) and ``inputs.artifacts`` (what it receives):
paths that stay in the workspace, and references to artifacts an upstream step declares."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lockstep.spec.hints import did_you_mean
from lockstep.spec.yamlsafe import pointer

MAX_PATTERN = 1024


def pattern_problem(pattern: str) -> str:
    """Why ``pattern`` could reach outside the workspace (or is unusable), or ''."""
    if not pattern or len(pattern) > MAX_PATTERN:
        return f"must be 1-{MAX_PATTERN} characters"
    if pattern.startswith("/") or pattern.startswith("~"):
        return "must be relative to the workspace"
    if any(ord(c) < 0x20 or c in "\x7f\\" for c in pattern):
        return "contains control characters or a backslash"
    if "%" in pattern:
        return "contains '%' (no encoded paths)"
    if any(part == ".." for part in pattern.split("/")):
        return "contains '..'"
    return ""


def check_artifacts(
    groups: Mapping[str, Mapping[str, Any]],
    add: Callable[[str, str], None],
    upstream: Callable[[str, str], bool],
) -> None:
    """``upstream(sid, ref)``: whether ``sid`` needs ``ref``, directly or not."""
    declared: dict[str, set[str]] = {}
    for group, steps in groups.items():
        for sid, step in steps.items():
            arts = step.get("artifacts")
            if not isinstance(arts, dict):
                continue
            declared[sid] = {str(n) for n in arts}
            for name, pat in arts.items():
                if isinstance(pat, str) and (why := pattern_problem(pat)):
                    add(
                        f"artifact '{name}' path {pat[:80]!r} {why}",
                        pointer(group, sid, "artifacts", name),
                    )
    for group, steps in groups.items():
        for sid, step in steps.items():
            inputs = step.get("inputs")
            wanted = inputs.get("artifacts") if isinstance(inputs, dict) else None
            if not isinstance(wanted, list):
                continue
            for index, ref in enumerate(wanted):
                if not isinstance(ref, str):
                    continue
                ptr = pointer(group, sid, "inputs", "artifacts", index)
                producer, dot, name = ref.partition(".")
                if not dot or not name:
                    add(f"artifact input '{ref}' must be 'step.name'", ptr)
                elif producer not in declared and producer not in {
                    s for g in groups.values() for s in g
                }:
                    add(f"artifact input '{ref}' names unknown step '{producer}'", ptr)
                elif not upstream(sid, producer):
                    add(f"artifact input '{ref}': step '{producer}' must be upstream of "
                        f"'{sid}' (add it to 'needs')", ptr)  # fmt: skip
                elif name not in declared.get(producer, set()):
                    hint = did_you_mean(name, declared.get(producer, set()))
                    add(f"step '{producer}' declares no artifact '{name}'{hint}", ptr)
