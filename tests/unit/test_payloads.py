"""lockstep's payload converter gives exactly the values Temporal's default one gives, from
the same JSON: a run started or a step recorded by either reads the same in the other."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from temporalio.converter import DataConverter

from lockstep.engine.events import Event, EventBatch
from lockstep.engine.payloads import DATA_CONVERTER
from lockstep.engine.plan import compile_plan
from lockstep.engine.types import (
    ArtifactRef,
    ContainerSpec,
    RunPlan,
    SourceCheckout,
    StepResult,
    StepTask,
    Workspace,
)
from lockstep.spec.load import load_spec

SPEC = """
name: plan
params: {type: object, properties: {n: {type: integer, default: 2}}}
steps:
  a: {run: [echo, "${{ params.n }}"], timeout: 5s, retry: {attempts: 2, backoff: 100ms}}
  b: {needs: [a], run: echo b, if: "params.n > 1", image: "alpine:3"}
  c:
    needs: [b]
    for_each: [1, 2]
    run: echo "${{ item }}"
finally:
  z: {run: echo done}
outputs:
  n: ${{ params.n }}
"""

REF = ArtifactRef(step="a", name="out", key="k", kind="tar", size=3, sha256="s", paths=["x"])
TASK = StepTask(
    run_id="r1",
    step_id="a",
    attempt=2,
    argv=["echo", "2"],
    env={"A": "1"},
    workspace=Workspace(
        repo="https://h/r.git", sha="f" * 40, sources=[SourceCheckout("u", "main", "e" * 40, "lib")]
    ),
    timeout_s=5.0,
    outputs_schema={"type": "object"},
    log_key="r1/a/2",
    container=ContainerSpec(image="alpine:3"),
    input={"deep": [1, {"x": None}]},
    artifact_inputs=[REF],
)
RESULT = StepResult(ok=True, exit_code=0, outputs={"n": 2}, worker="w", artifacts=[REF])


def _plan() -> RunPlan:
    return compile_plan(
        load_spec(SPEC, "workflow.yaml"),
        run_id="r1",
        project="default",
        params={"n": 2},
        workspace=Workspace(snapshot="blob"),
        heartbeat_timeout_s=30,
    )


def _round_trip(writer: DataConverter, reader: DataConverter, value: Any) -> Any:
    async def go() -> Any:
        payloads = await writer.encode([value])
        return (await reader.decode(payloads, [type(value)]))[0]

    return asyncio.run(go())


VALUES = [
    pytest.param(_plan, id="run plan"),
    pytest.param(lambda: TASK, id="step task"),
    pytest.param(lambda: RESULT, id="step result"),
    pytest.param(
        lambda: EventBatch(
            "r1", [Event("attempt_finished", "t", step="a", attempt=1, result=RESULT)]
        ),
        id="event batch",
    ),
]


@pytest.mark.parametrize("make", VALUES)
def test_values_read_the_same_through_either_converter(make: Any) -> None:
    value = make()
    default = DataConverter.default
    assert _round_trip(DATA_CONVERTER, DATA_CONVERTER, value) == value
    assert _round_trip(default, DATA_CONVERTER, value) == value  # written by an older server
    assert _round_trip(DATA_CONVERTER, default, value) == value


def test_unknown_keys_are_ignored_and_missing_ones_take_their_defaults() -> None:
    async def go() -> StepResult:
        payload = (await DATA_CONVERTER.encode([{"ok": False, "error": "x", "later": 1}]))[0]
        return (await DATA_CONVERTER.decode([payload], [StepResult]))[0]  # type: ignore[no-any-return]

    assert asyncio.run(go()) == StepResult(ok=False, error="x")


def test_a_value_of_the_wrong_shape_is_refused() -> None:
    async def go() -> None:
        payload = (await DATA_CONVERTER.encode([{"ok": True, "artifacts": "not a list"}]))[0]
        await DATA_CONVERTER.decode([payload], [StepResult])

    with pytest.raises(TypeError):
        asyncio.run(go())
