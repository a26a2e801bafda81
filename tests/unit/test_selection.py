"""Which steps a partial run (``--only``/``--from``) runs, and the plan it executes."""

from __future__ import annotations

import pytest

from lockstep.engine.plan import compile_plan
from lockstep.engine.selection import choose, left_out, narrow
from lockstep.engine.types import Workspace
from lockstep.errors import InvalidRequest
from lockstep.spec.load import load_spec

# a -> b -> c, a -> d; e alone; x -> y
SPEC = """
name: graph
steps:
  a: {run: echo a}
  b: {needs: [a], run: echo b}
  c: {needs: [b], run: echo c}
  d: {needs: [a], run: echo d, for_each: [1, 2]}
  e: {run: echo e}
  x: {run: echo x}
  y: {needs: [x, b], run: echo y}
finally:
  z: {run: echo z}
outputs:
  from_c: ${{ steps.c.outputs.v }}
  from_e: ${{ steps.e.outputs.v }}
  plain: literal
outputs_schema: {type: object, required: [from_e]}
"""


@pytest.mark.parametrize(
    ("only", "from_", "selected", "needed"),
    [
        (["c"], [], {"c"}, ("a", "b")),
        (["a", "e"], [], {"a", "e"}, ()),
        (["y"], [], {"y"}, ("a", "b", "x")),
        ([], ["b"], {"b", "c", "y"}, ("a", "x")),
        ([], ["a"], {"a", "b", "c", "d", "y"}, ("x",)),
        ([], ["e"], {"e"}, ()),
    ],
)
def test_only_picks_what_it_names_and_from_everything_after(
    only: list[str], from_: list[str], selected: set[str], needed: tuple[str, ...]
) -> None:
    chosen = choose(load_spec(SPEC).spec, only, from_)
    assert chosen.selected == selected
    assert chosen.needed == needed


@pytest.mark.parametrize(
    ("only", "from_", "message"),
    [
        (["bb"], [], "--only: workflow 'graph' has no step 'bb'; did you mean 'b'?"),
        ([], ["nope"], "--from: workflow 'graph' has no step 'nope'"),
        (["z"], [], "step 'z' in --only is a finally step; finally steps always run"),
        (["a"], ["b"], "give --only or --from, not both"),
        ([], [], "--from names no step"),
    ],
)
def test_a_bad_selection_is_refused_in_one_line(
    only: list[str], from_: list[str], message: str
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        choose(load_spec(SPEC).spec, only, from_)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_plan_skips_steps_outside_the_run_at_once_and_drops_outputs_it_cannot_have() -> None:
    loaded = load_spec(SPEC)
    chosen = choose(loaded.spec, [], ["b"])
    assert left_out(loaded.spec, chosen) == ["d", "e"]
    plan = compile_plan(
        loaded,
        run_id="r",
        project="default",
        params={},
        workspace=Workspace(snapshot=None),
        heartbeat_timeout_s=30,
    )
    narrowed = {s.id: s for s in narrow(plan, chosen).steps}
    # in the run: untouched
    for sid in ("a", "b", "c", "x", "y", "z"):
        assert narrowed[sid] == next(s for s in plan.steps if s.id == sid)
    # outside it: waits for nothing, never true, never fans out
    for sid in ("d", "e"):
        step = narrowed[sid]
        assert (step.needs, step.condition, step.for_each, step.items) == ([], "false", None, None)
    outputs = narrow(plan, chosen)
    assert outputs.outputs == {"from_c": "${{ steps.c.outputs.v }}", "plain": "literal"}
    # the schema asks for an output the run cannot have: not checked then
    assert plan.outputs_schema is not None and outputs.outputs_schema is None
    whole = narrow(plan, choose(loaded.spec, [], ["a"]))
    assert whole.outputs_schema is None  # e is out: from_e dropped
    every = narrow(plan, choose(loaded.spec, ["c", "e"], []))
    assert every.outputs == plan.outputs and every.outputs_schema == plan.outputs_schema
