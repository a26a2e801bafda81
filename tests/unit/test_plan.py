"""Compiling a spec into the plan the engine executes."""

from __future__ import annotations

from pathlib import Path

from lockstep.engine.plan import compile_machine, compile_plan, step_order
from lockstep.engine.types import Workspace
from lockstep.spec.load import load_spec
from lockstep.spec.machine import load_machine

SPEC = """
name: plan
env: {GLOBAL: g, SHARED: from-workflow}
defaults:
  timeout: 10m
  retry: {attempts: 3, backoff: 2s, max_backoff: 30s}
  env: {SHARED: from-defaults}
params: {type: object, properties: {n: {type: integer, default: 2}}}
steps:
  c: {needs: [b], run: "echo ${{ params.n }}", env: {SHARED: from-step}}
  a: {run: [echo, "${{ params.n }}"], timeout: 5s, retry: {attempts: 1}}
  b: {needs: [a], run: echo b, if: "params.n > 1"}
finally:
  z: {run: echo done}
  y: {run: echo first, if: true}
outputs:
  n: ${{ params.n }}
"""


def _plan() -> object:
    return compile_plan(
        load_spec(SPEC, "workflow.yaml"),
        run_id="r1",
        project="default",
        params={"n": 2},
        workspace=Workspace(snapshot=None),
        heartbeat_timeout_s=30,
    )


def test_steps_are_ordered_topologically_with_finally_last() -> None:
    order = step_order(load_spec(SPEC).spec)
    assert [s for s, _ in order][:3] == ["a", "b", "c"]
    assert {s for s, fin in order if fin} == {"z", "y"}
    assert [fin for _, fin in order] == [False, False, False, True, True]


def test_defaults_are_inherited_and_step_values_win() -> None:
    plan = _plan()
    steps = {s.id: s for s in plan.steps}  # type: ignore[attr-defined]
    assert steps["a"].timeout_s == 5 and steps["a"].retry.attempts == 1
    assert steps["b"].timeout_s == 600
    assert (steps["b"].retry.attempts, steps["b"].retry.backoff_s) == (3, 2.0)
    assert steps["b"].retry.max_backoff_s == 30
    assert steps["c"].env == {"GLOBAL": "g", "SHARED": "from-step"}
    assert steps["b"].env["SHARED"] == "from-defaults"


def test_run_strings_bind_expressions_as_env_vars_and_lists_stay_argv() -> None:
    plan = _plan()
    steps = {s.id: s for s in plan.steps}  # type: ignore[attr-defined]
    c = steps["c"]
    assert c.shell and c.command[:2] == ["bash", "-c"]
    assert "${{" not in c.command[2]
    assert list(c.bindings.values()) == ["params.n"]
    assert next(iter(c.bindings)) in c.command[2]
    a = steps["a"]
    assert not a.shell and a.command == ["echo", "${{ params.n }}"]


def test_conditions_are_cel_sources() -> None:
    plan = _plan()
    steps = {s.id: s for s in plan.steps}  # type: ignore[attr-defined]
    assert steps["b"].condition == "params.n > 1"
    assert steps["y"].condition == "true"
    assert steps["a"].condition is None
    assert steps["z"].is_finally and not steps["a"].is_finally


def test_secrets_travel_as_names_only() -> None:
    from lockstep.engine.plan import secret_names

    spec = (
        "name: s\n"
        "env: {GLOBAL: '${{ secrets.SHARED }}'}\n"
        "steps:\n"
        "  a: {run: 'true', env: {TOKEN: '${{ secrets.API_TOKEN }}', PLAIN: x}}\n"
    )
    loaded = load_spec(spec)
    assert secret_names(loaded.spec) == ["API_TOKEN", "SHARED"]
    plan = compile_plan(
        loaded,
        run_id="r",
        project="p",
        params={},
        workspace=Workspace(snapshot=None),
        heartbeat_timeout_s=30,
    )
    step = plan.steps[0]
    assert step.secrets == {"GLOBAL": "SHARED", "TOKEN": "API_TOKEN"}
    assert step.env == {"PLAIN": "x"}
    assert "secrets" not in repr(step.env)


def test_secret_names_in_env_are_validated() -> None:
    import pytest

    from lockstep.errors import SpecError

    with pytest.raises(SpecError, match="secret names must match"):
        load_spec("name: s\nsteps:\n  a: {run: 'true', env: {T: '${{ secrets.lower }}'}}\n")


def test_a_state_machine_compiles_to_a_plan_with_the_same_run_fields_and_its_exits() -> None:
    text = (Path(__file__).parents[2] / "examples/statemachine/workflow.json").read_text()
    machine = load_machine(text)
    plan = compile_machine(
        machine,
        run_id="r2",
        project="p",
        params={"x": 1},
        workspace=Workspace(snapshot=None),
        heartbeat_timeout_s=30,
        pool="gpu",
    )
    assert (plan.run_id, plan.project, plan.workflow) == ("r2", "p", "order-processing")
    assert (plan.spec_digest, plan.params, plan.heartbeat_timeout_s) == (
        machine.digest,
        {"x": 1},
        30,
    )
    assert plan.start == "computeTotal"
    steps = {s.id: s for s in plan.steps}
    assert steps["computeTotal"].command[:2] == ["bash", "-c"]
    assert steps["computeTotal"].env == {"CURRENCY": "EUR"}
    assert steps["computeTotal"].timeout_s == 30
    assert {s.pool for s in plan.steps} == {"gpu"}
    score = steps["scoreOrder"]
    assert [(b.condition is None, b.next) for b in score.branches] == [
        (False, "scoreOrder"),
        (True, "finish"),
    ]
    assert score.max_visits == 5
    assert score.config["url"] == "http://127.0.0.1:8099/score"
