"""The state-machine interpreter: the JSON dialect's runs on the same engine.

One step at a time: the run's params are the first step's input, each step's output the next
one's input, and the step's branches (CEL over ``output``, ``input``, ``params`` and
``visits``) choose where to go. Attempts, retries after a lost worker, cancellation and the
recorder are the graph interpreter's own; a step's record is settled once the machine has
left it for good (at the end), so a looping step is one record with an attempt per visit.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from lockstep.engine.states import RunStatus, StepStatus
    from lockstep.engine.types import RunPlan, StepPlan
    from lockstep.engine.workflow import RunWorkflow
    from lockstep.outputs_by_reference import ref_keys
    from lockstep.spec.expressions import ExpressionError, evaluate, to_text


class _Stop(Exception):
    """The machine cannot go on: the run fails with this message."""


@workflow.defn(name="lockstep.machine")
class MachineWorkflow(RunWorkflow):
    @workflow.run
    async def run(self, plan: RunPlan) -> dict[str, Any]:
        self._plan = plan
        flusher = asyncio.create_task(self._flusher())
        self._emit("run_started")
        steps = {s.id: s for s in plan.steps}
        visits: dict[str, int] = {}
        last: dict[str, tuple[str, dict[str, Any] | None, str | None]] = {}
        data: Any = plan.params
        current: str | None = plan.start
        outcome, error, outputs = RunStatus.SUCCEEDED, None, None
        try:
            while current is not None:
                step = steps[current]
                if visits.get(step.id, 0) >= step.max_visits:
                    raise _Stop(
                        f"step '{step.id}' has run {step.max_visits} times, its maxVisits, "
                        "and would run again; raise maxVisits or change the loop's condition"
                    )
                visits[step.id] = visits.get(step.id, 0) + 1
                argv, env = list(step.command), dict(step.env)
                result = await self._attempts(plan, step, argv, env, data, settle=False)
                if not result.ok:
                    last[step.id] = (StepStatus.FAILED, None, result.error)
                    raise _Stop(f"step '{step.id}' failed: {result.error}")
                last[step.id] = (StepStatus.SUCCEEDED, result.outputs, None)
                self._status[step.id] = StepStatus.RUNNING
                # outputs stored by reference: the branches and the next step read the values
                keys = dict(ref_keys(result.outputs))
                try:
                    output = await self._with_values(plan, result.outputs, keys) if keys else None
                except ExpressionError as exc:
                    raise _Stop(f"step '{step.id}': {exc}") from None
                output = result.outputs if output is None else output
                nxt = self._next(step, data, output, plan.params, visits)
                data = output
                if nxt is None:
                    outputs = result.outputs
                current = nxt
        except _Stop as exc:
            outcome, error = RunStatus.FAILED, str(exc)
        except asyncio.CancelledError:
            outcome, error = RunStatus.CANCELLED, "cancelled"
        for step in plan.steps:
            if self._status.get(step.id) == StepStatus.CANCELLED:
                continue  # the attempt interrupted by the cancel settled it already
            status, out, why = last.get(
                step.id, (StepStatus.SKIPPED, None, "not on the path taken")
            )
            if status == StepStatus.SKIPPED and outcome == RunStatus.CANCELLED:
                status = StepStatus.CANCELLED
            self._settle(step.id, status, outputs=out, error=why)
        self._run_status = outcome
        self._emit("run_finished", status=outcome, outputs=outputs, error=error)
        self._closing = True
        await asyncio.shield(flusher)
        return {"status": outcome, "outputs": outputs, "error": error}

    @staticmethod
    def _next(
        step: StepPlan,
        given: Any,
        output: dict[str, Any],
        params: dict[str, Any],
        visits: dict[str, int],
    ) -> str | None:
        ctx = {"output": output, "input": given, "params": params, "visits": dict(visits)}
        for branch in step.branches:
            if branch.condition is None:
                return branch.next
            try:
                verdict = evaluate(branch.condition, ctx)
            except ExpressionError as exc:
                raise _Stop(f"transition of step '{step.id}': {exc}") from None
            if not isinstance(verdict, bool):
                raise _Stop(
                    f"transition condition of step '{step.id}' gave {to_text(verdict)!r}, "
                    "not a boolean"
                )
            if verdict:
                return branch.next
        raise _Stop(f"no transition of step '{step.id}' applies")
