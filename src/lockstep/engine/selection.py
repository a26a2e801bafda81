"""Running part of a graph: which steps ``--only``/``--from`` pick, which steps outside the
pick those need, and the plan of such a run. Pure functions over the spec and the plan; the
launcher (``services/run_launch``) decides where the needed steps' results come from.

A partial run records every step of the workflow: those outside it end ``skipped`` with the
note ``not selected``. Finally steps are not selectable: they always run, as in a retry.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from lockstep.engine.types import RunPlan
from lockstep.errors import InvalidRequest
from lockstep.spec.expressions import find_templates, references
from lockstep.spec.hints import did_you_mean
from lockstep.spec.models import WorkflowSpec

#: the note of a step a partial run leaves out (its status is ``skipped``)
NOT_SELECTED = "not selected"
#: a step outside the run ends at once: it waits for nothing and its condition is false
_NEVER = "false"


@dataclass(frozen=True)
class Chosen:
    """What a partial run runs: the ``selected`` steps, and ``needed``, the steps outside
    the selection that the selected ones need (transitively), in plan order."""

    selected: frozenset[str]
    needed: tuple[str, ...]

    @property
    def in_run(self) -> frozenset[str]:
        return self.selected | frozenset(self.needed)


def choose(spec: WorkflowSpec, only: list[str], from_: list[str]) -> Chosen:
    """The steps ``--only`` (these) or ``--from`` (these and every step after them) pick, and
    what they need; a step id that is not a main step is refused, saying which it is."""
    if only and from_:
        raise InvalidRequest("give --only or --from, not both")
    flag, named = ("--only", only) if only else ("--from", from_)
    if not named:
        raise InvalidRequest(f"{flag} names no step; give one or more step ids, e.g. {flag} a,b")
    for sid in named:
        if sid in spec.finally_:
            raise InvalidRequest(
                f"step '{sid}' in {flag} is a finally step; finally steps always run, "
                "select main steps"
            )
        if sid not in spec.steps:
            raise InvalidRequest(
                f"{flag}: workflow '{spec.name}' has no step '{sid}'{did_you_mean(sid, spec.steps)}"
            )
    needs = {sid: [n for n in s.needs if n in spec.steps] for sid, s in spec.steps.items()}
    selected = set(named)
    if from_:
        selected = _closure(selected, _after(needs))
    wanted = _closure(selected, needs)
    order = [sid for sid in spec.steps if sid in wanted - selected]
    return Chosen(selected=frozenset(selected), needed=tuple(order))


def _after(needs: dict[str, list[str]]) -> dict[str, list[str]]:
    """The reverse graph: step -> the steps that need it."""
    after: dict[str, list[str]] = {sid: [] for sid in needs}
    for sid, deps in needs.items():
        for dep in deps:
            after[dep].append(sid)
    return after


def _closure(start: set[str], edges: dict[str, list[str]]) -> set[str]:
    seen = set(start)
    todo = list(start)
    while todo:
        for nxt in edges[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def narrow(plan: RunPlan, chosen: Chosen) -> RunPlan:
    """The plan of a partial run: a main step outside it waits for nothing and is skipped at
    once (the launcher records it ``not selected`` first, which the engine's ``skipped`` does
    not overwrite); the run's outputs that read a step outside it are left out, and so is its
    outputs schema then (it would ask for them)."""
    keep = chosen.in_run
    steps = [
        s
        if s.is_finally or s.id in keep
        else replace(s, needs=[], condition=_NEVER, for_each=None, items=None)
        for s in plan.steps
    ]
    outputs = {k: v for k, v in plan.outputs.items() if _reads_only(v, keep)}
    schema = plan.outputs_schema if len(outputs) == len(plan.outputs) else None
    return replace(plan, steps=steps, outputs=outputs, outputs_schema=schema)


def _reads_only(template: str, keep: frozenset[str]) -> bool:
    """Whether ``template`` reads no step but those in ``keep``."""
    for t in find_templates(template):
        for chain in references(t.source):
            if chain[0] == "steps" and (len(chain) < 2 or chain[1] not in keep):
                return False
    return True


def left_out(spec: WorkflowSpec, chosen: Chosen) -> list[str]:
    """The main steps a partial run does not run, in spec order."""
    keep = chosen.in_run
    return [sid for sid in spec.steps if sid not in keep]
