"""for_each, max_parallel, fail_fast, uses: how they are checked, and the fan-out arithmetic."""

from __future__ import annotations

import asyncio
import textwrap

import pytest

from lockstep.engine.items import (
    BATCH,
    MAX_BATCHES_AT_ONCE,
    aggregate,
    batches,
    context_for,
    in_lanes,
)
from lockstep.engine.plan import compile_plan
from lockstep.engine.refs import plain_path
from lockstep.engine.types import ItemOutcome, Workspace
from lockstep.errors import SpecError
from lockstep.outputs_by_reference import make_ref, ref_keys, with_values
from lockstep.spec.load import load_spec

HEAD = """\
name: fan
params:
  type: object
  properties: {cases: {type: array, default: [a, b]}, word: {type: string, default: x}}
steps:
  prep:
    run: echo ids=[1] >> "$LOCKSTEP_OUTPUTS"
"""


def messages(steps: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_spec(HEAD + textwrap.indent(textwrap.dedent(steps), "  "), "w.yaml")
    return [d.message for d in caught.value.diagnostics]


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            "sim:\n  run: echo ${{ item }}\n",
            "expression 'item': 'item' is only available in a step with for_each",
        ),
        (
            "sim:\n  max_parallel: 2\n  run: 'true'\n",
            "'max_parallel' of step 'sim' only applies with for_each",
        ),
        (
            "sim:\n  fail_fast: false\n  run: 'true'\n",
            "'fail_fast' of step 'sim' only applies with for_each",
        ),
        (
            "sim:\n  for_each: params.cases\n  run: 'true'\n",
            "for_each of step 'sim' must be a list or one expression giving a list, "
            "e.g. for_each: ${{ params.cases }}",
        ),
        (
            "sim:\n  for_each: 'x ${{ params.cases }}'\n  run: 'true'\n",
            "for_each of step 'sim' must be exactly one ${{ }} expression",
        ),
        (
            "sim:\n  for_each: ${{ item }}\n  run: 'true'\n",
            "expression 'item': 'item' is only available in a step with for_each",
        ),
        (
            "sim:\n  for_each: ${{ steps.prep.outputs.ids }}\n  run: 'true'\n",
            "expression 'steps.prep.outputs.ids': step 'sim' uses steps.prep but does not "
            "need it; add 'prep' to needs",
        ),
        (
            "sim:\n  for_each: [1]\n  run: 'true'\n"
            "after:\n  needs: [sim]\n  run: echo ${{ steps.sim.outputs.v }}\n",
            "expression 'steps.sim.outputs.v': steps.sim.outputs is a list (one entry per "
            "for_each item); use e.g. steps.sim.outputs[0].v or steps.sim.outputs.map(o, o.v)",
        ),
        ("sim:\n  uses: noop\n  run: 'true'\n", "step 'sim' has both 'run' and 'uses'; keep one"),
        ("sim:\n  uses: Teleport\n", "invalid 'uses': got 'Teleport'; use 'noop', a blueprint"),
        # a bare name is a published definition, expanded (or not found) by the server
        ("sim:\n  uses: teleport\n", "uses the published blueprint 'teleport', which the server"),
        (
            "sim:\n  for_each: [1]\n  max_parallel: 0\n  run: 'true'\n",
            "'max_parallel' must be >= 1, got 0",
        ),
    ],
)
def test_fan_out_problems(steps: str, message: str) -> None:
    found = messages(steps)
    assert any(message in m for m in found), found


def test_item_and_index_are_allowed_in_every_part_of_a_fan_out_step() -> None:
    loaded = load_spec(
        HEAD
        + """\
  sim:
    needs: [prep]
    for_each: ${{ params.cases }}
    if: ${{ index > 0 }}
    env: {CASE: "${{ item }}"}
    with: {n: "${{ index }}"}
    run: [echo, "${{ item }}"]
    artifacts: {out: "out/${{ item }}.json"}
    max_parallel: 3
    fail_fast: false
""",
        "w.yaml",
    )
    plan = compile_plan(
        loaded, run_id="r", project="p", params={}, workspace=Workspace(), heartbeat_timeout_s=5
    )
    sim = next(s for s in plan.steps if s.id == "sim")
    assert (sim.for_each, sim.max_parallel, sim.fail_fast) == ("params.cases", 3, False)


@pytest.mark.parametrize("n", [1, 199, 200, 201, 1000, 10_000])
@pytest.mark.parametrize("parallel", [1, 7, 150, 200, 450, 10_000])
def test_batches_cover_every_item_once_and_never_exceed_max_parallel(n: int, parallel: int) -> None:
    spans, at_once, per_batch = batches(n, parallel)
    assert [i for s, e in spans for i in range(s, e)] == list(range(n))
    assert all(e - s <= BATCH for s, e in spans)
    assert at_once * per_batch <= max(parallel, 1)
    assert 1 <= at_once <= MAX_BATCHES_AT_ONCE


def test_a_fan_out_fails_when_an_item_fails_and_is_cancelled_when_items_were_not_run() -> None:
    ok, bad = ItemOutcome("succeeded"), ItemOutcome("failed", error="exit code 3")
    assert aggregate("s", [ok, bad, bad]) == (
        "failed",
        "2 of 3 items failed; first s[1]: exit code 3",
    )
    assert aggregate("s", [ok, ItemOutcome("cancelled")]) == ("cancelled", "cancelled")
    assert aggregate("s", [ItemOutcome("skipped")] * 2) == ("skipped", "every item was skipped")
    assert aggregate("s", []) == ("succeeded", None)


def test_batches_carry_only_what_their_items_read() -> None:
    loaded = load_spec(
        HEAD
        + """\
  other:
    run: echo big=1 >> "$LOCKSTEP_OUTPUTS"
  sim:
    needs: [prep, other]
    for_each: ${{ steps.prep.outputs.ids }}
    with: {v: "${{ item * 2 }}", w: "${{ params.word }}"}
    uses: noop
""",
        "w.yaml",
    )
    plan = compile_plan(
        loaded, run_id="r", project="p", params={}, workspace=Workspace(), heartbeat_timeout_s=5
    )
    sim = next(s for s in plan.steps if s.id == "sim")
    ctx = {
        "params": {"word": "x", "cases": []},
        "steps": {"prep": {"outputs": {"ids": list(range(10_000))}}, "other": {"outputs": {}}},
        "run": {"id": "r"},
        "env": {},
    }
    assert context_for(sim, ctx) == {"params": {"word": "x", "cases": []}}


def test_markers_are_found_and_replaced_and_only_plain_paths_hand_them_on() -> None:
    ref = make_ref("outputs/p/r/s/1/0.json", 70_000, "ab" * 32, "[0,1")
    value = {"steps": {"s": {"outputs": {"big": ref, "small": 1}}}, "list": [ref]}
    assert list(ref_keys(value)) == [("outputs/p/r/s/1/0.json", 70_000)] * 2
    assert with_values(value, {"outputs/p/r/s/1/0.json": [0, 1]}) == {
        "steps": {"s": {"outputs": {"big": [0, 1], "small": 1}}},
        "list": [[0, 1]],
    }
    assert plain_path("steps.s.outputs.big")
    assert plain_path("steps['s'].outputs['big']")
    assert not plain_path("steps.s.outputs.big[0]")
    assert not plain_path("size(steps.s.outputs.big)")
    assert not plain_path("steps.s.outputs.big.size()")


async def test_lanes_bound_the_work_stop_on_a_failure_and_never_hide_a_bug() -> None:
    running, most, started = 0, 0, []

    async def job(j: int) -> bool:
        nonlocal running, most
        started.append(j)
        running += 1
        most = max(most, running)
        try:
            await asyncio.sleep(0.01 if j != 3 else 0)
        finally:
            running -= 1
        return j == 3  # job 3 fails and stops the rest

    await in_lanes(2, 50, job)
    assert most == 2
    assert 3 in started and len(started) < 50  # no job started after the failure

    async def broken(j: int) -> bool:
        raise KeyError("a bug")

    with pytest.raises(KeyError):
        await in_lanes(3, 5, broken)
