"""A step's ``writes:``, decided in the workflow when the step succeeds: each resource's next
version rendered from the step's context (its own outputs readable as
``steps.<id>.outputs``) and checked against the resource's schema fixed at the run's
creation. Pure and deterministic: the recorder then stores exactly what this returns, with
the step's success. Also the deep rendering that ``with:`` values share."""

from typing import Any

from lockstep.engine.states import StepStatus
from lockstep.engine.types import StepPlan
from lockstep.outputs_by_reference import ref_keys
from lockstep.spec.expressions import render
from lockstep.spec.resources import MAX_DATA_BYTES, ResourceDataError, check_data, check_shape


def deep_render(value: Any, ctx: dict[str, Any]) -> Any:
    """Every string rendered (a whole ``${{ }}`` keeps its JSON type), in nested values too."""
    if isinstance(value, str):
        return render(value, ctx)
    if isinstance(value, dict):
        return {k: deep_render(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [deep_render(v, ctx) for v in value]
    return value


def rendered(
    step: StepPlan, outputs: Any, ctx: dict[str, Any], schemas: dict[str, Any]
) -> dict[str, Any]:
    """Resource name -> the data ``step`` writes; raises ``ExpressionError`` (a template that
    does not render) or ``ResourceDataError`` (data that breaks its resource's rules)."""
    own = {"status": StepStatus.SUCCEEDED, "outputs": outputs}
    here = {**ctx, "steps": {**ctx.get("steps", {}), step.id: own}}
    writes = {name: deep_render(template, here) for name, template in step.writes.items()}
    for name, data in writes.items():
        check_shape(name, data)  # before anything walks it: a step's outputs are hostile
        for _, size in ref_keys(data):
            raise ResourceDataError(
                f"resource '{name}' data holds an output stored by reference ({size} bytes); "
                f"a version holds at most {MAX_DATA_BYTES // 1024} KiB: keep big values in "
                "artifacts and write their names"
            )
        check_data(name, data, schemas.get(name))
    return writes
