"""Checks of a state machine's transitions: each ``transitionToStep`` (a step name, null, or
conditions with a default), the CEL of each condition, and the graph they make (every step
reachable from the start, and every reachable step able to reach the end)."""

from __future__ import annotations

from typing import Any

from lockstep.spec.checker import Checker, type_name
from lockstep.spec.expressions import OPEN, ExpressionError, compile_expression, references
from lockstep.spec.hints import did_you_mean
from lockstep.spec.yamlsafe import Position, pointer

#: the variables a condition may read
VARIABLES = ("output", "input", "params", "visits")


class TransitionChecker(Checker):
    """The transition checks; the dialect's checker fills ``index`` with the step names first."""

    def __init__(self, positions: dict[str, Position], file: str) -> None:
        super().__init__(positions, file)
        self.index: dict[str, int] = {}  # step name -> index of its first occurrence
        self.targets: dict[str, list[tuple[str, str | None]]] = {}  # name -> (pointer, target)
        self.loose: set[str] = set()  # steps whose transition is broken (already reported)

    def check_transition(
        self, step: dict[str, Any], ptr: str, where: str, owner: str | None
    ) -> None:
        targets: list[tuple[str, str | None]] = []
        at = f"{ptr}/transitionToStep"
        value = step.get("transitionToStep")
        broken = False
        if "transitionToStep" not in step:
            self.add(
                f"missing required key 'transitionToStep' {where} (use null to end the "
                "run after this step)",
                at,
            )
            broken = True
        elif value is None or isinstance(value, str):
            targets.append((at, value))
        elif isinstance(value, dict):
            broken = not self._check_conditional(value, at, where, targets)
        else:
            self.add(
                f"'transitionToStep' {where} must be a step name, null or a mapping with "
                f"'conditions' and 'default', got {type_name(value)}",
                at,
            )
            broken = True
        for target_ptr, target in targets:
            if target is not None and target not in self.index:
                hint = did_you_mean(target, self.index)
                self.add(f"transition {where} to unknown step '{target}'{hint}", target_ptr)
                broken = True
        if owner is not None:
            self.targets[owner] = targets
            if broken:
                self.loose.add(owner)

    def _check_conditional(
        self, value: dict[str, Any], ptr: str, where: str, targets: list[tuple[str, str | None]]
    ) -> bool:
        """Check a conditional transition, collecting its targets; False when it is broken."""
        self.keys(value, ("conditions", "default"), ptr, f"in 'transitionToStep' {where}")
        ok = True
        for key in ("conditions", "default"):
            if key not in value:
                self.add(
                    f"missing required key '{key}' in 'transitionToStep' {where}", f"{ptr}/{key}"
                )
                ok = False
        if "default" in value:
            if value["default"] is None or isinstance(value["default"], str):
                targets.append((f"{ptr}/default", value["default"]))
            else:
                self.add(
                    f"'default' of 'transitionToStep' {where} must be a step name or "
                    f"null, got {type_name(value['default'])}",
                    f"{ptr}/default",
                )
                ok = False
        conditions = value.get("conditions")
        if "conditions" in value and (not isinstance(conditions, list) or not conditions):
            self.add(
                f"'conditions' {where} must be a non-empty list of "
                '{"if": <CEL>, "next": <step name or null>}',
                f"{ptr}/conditions",
            )
            return False
        for k, cond in enumerate(conditions or []):
            at = f"{ptr}/conditions/{k}"
            if not isinstance(cond, dict):
                self.add(f"condition {k + 1} {where} must be a mapping with 'if' and 'next'", at)
                ok = False
                continue
            self.keys(cond, ("if", "next"), at, f"in condition {k + 1} {where}")
            for key in ("if", "next"):
                if key not in cond:
                    self.add(
                        f"missing required key '{key}' in condition {k + 1} {where}", f"{at}/{key}"
                    )
                    ok = False
            if "if" in cond:
                self._check_condition(cond["if"], f"{at}/if", f"condition {k + 1} {where}")
            if "next" not in cond:
                continue
            if cond["next"] is None or isinstance(cond["next"], str):
                targets.append((f"{at}/next", cond["next"]))
            else:
                self.add(
                    f"'next' of condition {k + 1} {where} must be a step name or null, got "
                    f"{type_name(cond['next'])}",
                    f"{at}/next",
                )
                ok = False
        return ok

    def _check_condition(self, src: Any, ptr: str, label: str) -> None:
        """Check one condition's CEL; ``label`` is e.g. "condition 2 in step 'a'"."""
        if not isinstance(src, str) or not src.strip():
            self.add(f"'if' of {label} must be a non-empty CEL expression string", ptr)
            return
        if OPEN in src:
            self.add(f"'if' of {label} is plain CEL; write it without '${{{{ }}}}'", ptr)
            return
        try:
            compile_expression(src)
            chains = references(src)
        except ExpressionError as err:
            self.add(f"{label}: {err.message}", ptr)
            return
        problems: list[str] = []
        for chain in chains:
            if chain[0] not in VARIABLES:
                problems.append(
                    f"unknown name '{chain[0]}'; conditions can use {', '.join(VARIABLES)}"
                )
            elif chain[0] == "visits" and len(chain) > 1 and chain[1] not in self.index:
                problems.append(
                    f"unknown step '{chain[1]}' in visits{did_you_mean(chain[1], self.index)}"
                )
        for problem in dict.fromkeys(problems):
            self.add(f"{label}: expression '{src}': {problem}", ptr)

    # -- graph

    def check_graph(self, start: str) -> None:
        edges = {
            name: [t for _, t in self.targets.get(name, []) if t in self.index]
            for name in self.index
        }
        reachable = {start}
        frontier = [start]
        while frontier:
            for target in edges[frontier.pop()]:
                if target not in reachable:
                    reachable.add(target)
                    frontier.append(target)
        for name, i in self.index.items():
            if name not in reachable:
                self.add(
                    f"step '{name}' is unreachable: no transition leads to it from the "
                    f"start step '{start}'",
                    pointer("steps", i, "name"),
                )
        # steps that can end the run, or whose transition is broken (reported already)
        ending = {
            name
            for name in self.index
            if name in self.loose
            or name not in self.targets
            or any(t is None for _, t in self.targets[name])
        }
        incoming: dict[str, list[str]] = {name: [] for name in self.index}
        for name, targets in edges.items():
            for target in targets:
                incoming[target].append(name)
        frontier = list(ending)
        while frontier:
            for source in incoming[frontier.pop()]:
                if source not in ending:
                    ending.add(source)
                    frontier.append(source)
        stuck = [name for name in self.index if name in reachable and name not in ending]
        if stuck:
            names = ", ".join(f"'{n}'" for n in stuck)
            noun = "step" if len(stuck) == 1 else "steps"
            self.add(
                f"{noun} {names} can never finish: no chain of transitions from "
                f"{'it' if len(stuck) == 1 else 'them'} reaches null (the end); add an exit, "
                'e.g. a condition with "next": null',
                pointer("steps", self.index[stuck[0]], "transitionToStep"),
            )
