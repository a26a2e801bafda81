"""The child workflow of a wide fan-out: one batch of a ``for_each`` step's items (see
``engine.items`` for how items are cut into batches)."""

import asyncio

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from lockstep.engine.interpreter import FANOUT_WORKFLOW
    from lockstep.engine.items import BatchResult, FanOutBatch
    from lockstep.engine.workflow import RunWorkflow


@workflow.defn(name=FANOUT_WORKFLOW)
class FanOutWorkflow(RunWorkflow):
    """Runs its items and reports them to the recorder exactly as the run itself would."""

    @workflow.run
    async def run(self, batch: FanOutBatch) -> BatchResult:  # type: ignore[override]
        plan = batch.plan
        self._plan = plan
        self._artifacts = {k: list(v) for k, v in batch.artifacts.items()}
        flusher = asyncio.create_task(self._flusher())
        step = next(s for s in plan.steps if s.id == batch.step)
        try:
            outcomes = await self._run_items(
                plan, step, batch.context, batch.items, batch.first, batch.parallel,
                fail_fast=batch.fail_fast,
            )  # fmt: skip
        finally:
            self._closing = True
            await asyncio.shield(flusher)
        return BatchResult(outcomes)
