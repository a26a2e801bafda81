"""Checks of how a step runs: ``run``, ``http`` or ``uses``, and the shape of ``for_each`` with its
``max_parallel`` and ``fail_fast`` (expressions inside are checked with the others)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from lockstep.spec.expressions import OPEN, ExpressionError, whole_template
from lockstep.spec.names import MAX_ITEMS
from lockstep.spec.step_kinds import CHILD, ENGINE_KINDS, HTTP, WORKSPACE_KEYS, YAML_SELECTORS
from lockstep.spec.yamlsafe import pointer

#: what a step the engine decides (approval, wait) cannot have: it runs nothing anywhere
_NOT_FOR_ENGINE_STEPS = (
    *WORKSPACE_KEYS,
    *("for_each", "retry", "cache", "runs_on", "env", "with", "timeout", "schedule_timeout"),
)
#: what a ``workflow:`` step cannot have: its child run has its own steps, workspace and pools
_NOT_FOR_CHILD_STEPS = (*WORKSPACE_KEYS, "cache", "runs_on", "env", "schedule_timeout")
#: per step kind: the keys it refuses, and why (a noop step has long been allowed to carry them)
_REFUSED: dict[str, tuple[tuple[str, ...], str]] = {
    **{
        k.yaml_key: (
            _NOT_FOR_ENGINE_STEPS,
            f"does not apply to an '{k.yaml_key}' step (the engine decides it; nothing runs)",
        )
        for k in ENGINE_KINDS.values()
    },
    CHILD.yaml_key: (
        _NOT_FOR_CHILD_STEPS,
        "does not apply to a 'workflow' step (its child run has its own steps; pass values "
        "in 'with:')",
    ),
    HTTP.yaml_key: (
        WORKSPACE_KEYS,
        "only applies to a 'run' step (an http step has no workspace)",
    ),
}


def check_step_shape(
    group: str, sid: str, step: Mapping[str, Any], add: Callable[[str, str], None]
) -> None:
    chosen = [key for key in YAML_SELECTORS if step.get(key) is not None]
    if len(chosen) > 1:
        add(
            f"step '{sid}' has both '{chosen[0]}' and '{chosen[1]}'; keep one",
            pointer(group, sid, chosen[1]),
        )
    elif not chosen:
        add(
            f"missing required key 'run' in step '{sid}' "
            "(or 'http', 'uses: noop', 'approval', 'wait' or 'workflow')",
            pointer(group, sid),
        )
    elif chosen[0] in _REFUSED:
        keys, why = _REFUSED[chosen[0]]
        for key in keys:
            if step.get(key) is not None:
                add(f"'{key}' of step '{sid}' {why}; remove it", pointer(group, sid, key))
    if step.get("result") is not None and chosen and chosen[0] != "run":
        add(
            f"'result' of step '{sid}' only applies to a 'run' step (what its command prints "
            "on stdout); remove it",
            pointer(group, sid, "result"),
        )
    for_each = step.get("for_each")
    if for_each is None:
        for key in ("max_parallel", "fail_fast"):
            if step.get(key) is not None:
                add(f"'{key}' of step '{sid}' only applies with for_each", pointer(group, sid, key))
        return
    ptr = pointer(group, sid, "for_each")
    if isinstance(for_each, list):
        if len(for_each) > MAX_ITEMS:
            add(f"for_each of step '{sid}' has {len(for_each)} items; the most is {MAX_ITEMS}", ptr)
        return
    if isinstance(for_each, str):
        try:
            whole = whole_template(for_each) if OPEN in for_each else None
        except ExpressionError:
            whole = None  # reported with the other expressions
        if whole is None and OPEN not in for_each:
            add(
                f"for_each of step '{sid}' must be a list or one expression giving a list, "
                f"e.g. for_each: ${{{{ params.cases }}}}",
                ptr,
            )
        elif whole is None:
            add(f"for_each of step '{sid}' must be exactly one ${{{{ }}}} expression", ptr)


def for_each_source(value: Any) -> str | None:
    """The CEL source of a ``for_each`` string (None for a literal list)."""
    if not isinstance(value, str):
        return None
    only = whole_template(value)
    return only.source if only is not None else None
