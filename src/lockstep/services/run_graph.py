"""A run's graph as the web UI draws it: each step, the steps it comes after, and its kind.

Read from the spec text the run was recorded with (its blueprints already expanded there, as
``<alias>__<step>``), so it is the graph that run has, whatever its definition became later.
The spec package is imported only here, when a graph is asked for: reading records stays light
(tests/acceptance/test_light_reads.py)."""

from __future__ import annotations

from typing import Any


def graph_of(text: str) -> dict[str, Any]:
    """``{"dialect", "steps": {id: {"needs", "kind", "finally", "fan_out"}}}``; a state
    machine's ``needs`` are the steps that may go to it (its graph may have cycles)."""
    from lockstep.spec.documents import load_workflow, runnable
    from lockstep.spec.machine import LoadedMachine
    from lockstep.spec.step_kinds import yaml_kind

    loaded = runnable(load_workflow(text, "workflow.yaml"))
    steps: dict[str, dict[str, Any]] = {}
    if isinstance(loaded, LoadedMachine):
        for name, step in loaded.steps.items():
            steps[name] = {"needs": [], "kind": step.type, "finally": False, "fan_out": False}
        for name, step in loaded.steps.items():
            t = step.transition
            for target in {t.next, t.default, *(to for _, to in t.conditions)}:
                if target is not None and target in steps and name not in steps[target]["needs"]:
                    steps[target]["needs"].append(name)
        return {"dialect": "machine", "start": loaded.start, "steps": steps}
    spec = loaded.spec
    for group, is_finally in ((spec.steps, False), (spec.finally_, True)):
        for sid, node in group.items():
            steps[sid] = {
                "needs": list(node.needs),
                "kind": yaml_kind(vars(node)),
                "finally": is_finally,
                "fan_out": node.for_each is not None,
            }
    return {"dialect": "steps", "steps": steps}
