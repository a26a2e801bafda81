"""The interpreter: one Temporal workflow per run (workflow id = run id).

It walks the plan's graph, runs each step (``engine.interpreter``), fans ``for_each`` steps
out over their items (wide ones in child workflows, ``engine.fanout``), and decides the run's
fate and outputs.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from dataclasses import replace
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from lockstep.engine.gates import DECIDE_UPDATE
    from lockstep.engine.interpreter import FANOUT_WORKFLOW, StepInterpreter
    from lockstep.engine.items import (
        BATCH,
        NOT_RUN,
        BatchResult,
        FanOutBatch,
        aggregate,
        batches,
        context_for,
        in_lanes,
    )
    from lockstep.engine.refs import plain_path
    from lockstep.engine.states import STEP_FINISHED, RunStatus, StepStatus
    from lockstep.engine.types import (
        Decision,
        GateAnswer,
        ItemOutcome,
        RunPlan,
        StepPlan,
    )
    from lockstep.spec.contracts import OutputError, check_contract
    from lockstep.spec.expressions import (
        ExpressionError,
        evaluate,
        find_templates,
        references,
        render,
        to_text,
    )
    from lockstep.spec.names import MAX_ITEMS


#: the patch that made one condition wake a graph's waiting steps (runs started before it
#: replay with a condition per step)
GRAPH_WAKES = "graph-wakes"


def _reads_item(step: StepPlan) -> bool:
    return step.condition is not None and any(
        chain[0] in ("item", "index") for chain in references(step.condition)
    )


_JSON_KINDS = {str: "a string", dict: "an object", int: "a number", float: "a number"}
_JSON_KINDS.update({bool: "a boolean", type(None): "null"})


def _items(step: StepPlan, ctx: dict[str, Any]) -> list[Any]:
    """The items a fan-out step runs: its literal list, or what its expression gives."""
    assert step.for_each is not None or step.items is not None
    value = step.items if step.items is not None else evaluate(step.for_each or "", ctx)
    if not isinstance(value, list):
        raise ExpressionError(
            f"for_each of step '{step.id}' gave {to_text(value)[:80]!r} "
            f"({_JSON_KINDS.get(type(value), type(value).__name__)}), not a list"
        )
    if len(value) > MAX_ITEMS:
        raise ExpressionError(
            f"for_each of step '{step.id}' gave {len(value)} items; the most is {MAX_ITEMS}"
        )
    return value


@workflow.defn(name="lockstep.run")
class RunWorkflow(StepInterpreter):
    #: the last context built: for which settled count, run status and env, and itself
    _ctx_cache: tuple[int, str, dict[str, str], dict[str, Any]] | None = None

    @workflow.query(name="status")
    def status(self) -> dict[str, str]:
        return dict(self._status)

    @workflow.update(name=DECIDE_UPDATE)
    def decide(self, decision: Decision) -> GateAnswer:
        """A person approves or rejects a waiting approval step."""
        return self._gates.decide(decision)

    @decide.validator
    def _decidable(self, decision: Decision) -> None:
        self._gates.check(decision)

    def _context(self, plan: RunPlan, env: dict[str, str]) -> dict[str, Any]:
        """What expressions read. Built again only once a step has settled since (or the run's
        status or the env changed): steps started together share one, where each used to
        copy every step's state, which grew with the graph. A step reads only the steps it
        needs, all settled before it starts, so no reader sees a state older than its own.
        Readers copy what they change."""
        cached = self._ctx_cache
        # ``is env``: the very env object (the cache holds it, so none other takes its id)
        if cached and cached[:2] == (self._settled, self._run_status) and cached[2] is env:
            return cached[3]
        ctx = self._built_context(plan, env)
        self._ctx_cache = (self._settled, self._run_status, env, ctx)
        return ctx

    def _built_context(self, plan: RunPlan, env: dict[str, str]) -> dict[str, Any]:
        steps = {
            sid: {"status": st, "outputs": self._outputs.get(sid, {})}
            for sid, st in self._status.items()
            if "[" not in sid  # fan-out items are seen through their step
        }
        run = {"id": plan.run_id, "sha": plan.sha or "", "status": self._run_status}
        ctx = {"params": plan.params, "steps": steps, "run": run, "env": env}
        return {**ctx, "resources": plan.resources} if plan.resources else ctx

    def _satisfied(self, step: str) -> bool:
        st = self._status[step]
        return st in (StepStatus.SUCCEEDED, StepStatus.SKIPPED) or (
            st == StepStatus.FAILED and step in self._continue
        )

    def _needs_done(self, step: StepPlan) -> bool:
        return all(self._status.get(n) in STEP_FINISHED for n in step.needs)

    async def _run_step(
        self, plan: RunPlan, step: StepPlan, env: dict[str, str], *, ready: bool = False
    ) -> None:
        if not ready:  # a run started before GRAPH_WAKES: each step waits for its own needs
            await workflow.wait_condition(lambda: self._needs_done(step))
        blocked = [n for n in step.needs if not self._satisfied(n)]
        if blocked:
            why = ", ".join(f"{n} {self._status[n]}" for n in blocked)
            cancelled = all(self._status[n] == StepStatus.CANCELLED for n in blocked)
            self._settle(
                step.id,
                StepStatus.CANCELLED if cancelled else StepStatus.UPSTREAM_FAILED,
                error=f"needs: {why}",
            )
            return
        reused = plan.reuse.get(step.id)
        if reused is not None:
            self._artifacts[step.id] = list(reused.artifacts)
            self._settle(
                step.id, StepStatus.SUCCEEDED, outputs=reused.outputs, reused_from=reused.run_id
            )
            return
        ctx = self._context(plan, env)
        items: list[Any] | None = None
        try:
            ctx = await self._reading(plan, [step.condition or "", step.for_each or ""], ctx)
            # a condition that reads the item is decided per item, any other once
            whole = step.condition is not None and not (step.fans_out and _reads_item(step))
            if whole and not self._holds(step, ctx):
                self._settle(step.id, StepStatus.SKIPPED, error="condition is false")
                return
            if step.fans_out:
                items = _items(step, ctx)
        except ExpressionError as exc:
            self._settle(step.id, StepStatus.FAILED, error=str(exc))
            self._maybe_continue(step)
            return
        if items is None:
            await self._execute(plan, step, ctx)
        else:
            await self._fan_out(plan, step, ctx, items)

    async def _run_graph(self, plan: RunPlan, steps: list[StepPlan], env: dict[str, str]) -> None:
        tasks: list[asyncio.Task[None]] = []
        try:
            if workflow.patched(GRAPH_WAKES):
                await self._start_when_ready(plan, steps, env, tasks)
            else:
                tasks += [asyncio.create_task(self._run_step(plan, s, env)) for s in steps]
            # return_exceptions: on cancel, wait until every step has confirmed its own stop
            # (a running activity is only cancelled once its worker killed the process)
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for s in steps:  # steps stopped while waiting for needs or for a retry
                if self._status.get(s.id) not in STEP_FINISHED:
                    self._settle(s.id, StepStatus.CANCELLED, error="cancelled")
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result  # a bug: fail the workflow task so it is retried, not hidden

    async def _start_when_ready(
        self,
        plan: RunPlan,
        steps: list[StepPlan],
        env: dict[str, str],
        tasks: list[asyncio.Task[None]],
    ) -> None:
        """Start each step's task (into ``tasks``) once its needs have finished: looked at
        when a step settles, from inside the settling step, so the step started runs in the
        same turn and its first events go in the same record batch. (A condition per waiting
        step had every workflow task evaluate all of them, which grew with the graph.)"""
        waiting = list(steps)

        def start_ready() -> None:
            for step in [s for s in waiting if self._needs_done(s)]:
                waiting.remove(step)
                tasks.append(asyncio.create_task(self._run_step(plan, step, env, ready=True)))

        self._on_settled = start_ready
        try:
            start_ready()
            await workflow.wait_condition(lambda: not waiting)
        except asyncio.CancelledError:
            self._on_settled = None  # nothing more starts
            for task in tasks:  # the run is stopped: so are the steps already started
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        finally:
            self._on_settled = None

    async def _fan_out(
        self, plan: RunPlan, step: StepPlan, ctx: dict[str, Any], items: list[Any]
    ) -> None:
        n = len(items)
        self._emit("fanout_started", step=step.id, items=n)
        self._status[step.id] = StepStatus.RUNNING
        parallel = step.max_parallel or max(n, 1)
        if n <= BATCH:
            outcomes = await self._run_items(
                plan, step, ctx, items, 0, parallel, fail_fast=step.fail_fast
            )
        else:
            outcomes = await self._run_batches(plan, step, ctx, items, parallel)
        status, error = aggregate(step.id, outcomes)
        self._artifacts[step.id] = [ref for o in outcomes for ref in o.artifacts]
        outputs = [o.outputs if o.status == StepStatus.SUCCEEDED else None for o in outcomes]
        self._settle(step.id, status, outputs=outputs, error=error)
        if status == StepStatus.FAILED:
            self._maybe_continue(step)

    async def _run_items(
        self,
        plan: RunPlan,
        step: StepPlan,
        ctx: dict[str, Any],
        items: list[Any],
        first: int,
        parallel: int,
        *,
        fail_fast: bool,
    ) -> list[ItemOutcome]:
        """Run ``items`` (indexes from ``first``) as item steps, ``parallel`` at a time. With
        ``fail_fast`` a failed item stops the others; items never started are cancelled."""
        outcomes: list[ItemOutcome | None] = [None] * len(items)

        async def job(i: int) -> bool:
            outcomes[i] = done = await self._run_item(plan, step, ctx, items[i], first + i)
            return fail_fast and done.status == StepStatus.FAILED

        await in_lanes(parallel, len(items), job)
        return [o or NOT_RUN for o in outcomes]

    async def _run_item(
        self, plan: RunPlan, step: StepPlan, ctx: dict[str, Any], item: Any, index: int
    ) -> ItemOutcome:
        sid = f"{step.id}[{index}]"
        await self._execute(
            plan,
            replace(step, id=sid, for_each=None, items=None),
            {**ctx, "item": item, "index": index},
            condition=True,
        )
        status = self._status[sid]
        if status != StepStatus.SUCCEEDED:
            return ItemOutcome(status, error=self._errors.get(sid))
        return ItemOutcome(
            status, outputs=self._outputs.get(sid), artifacts=self._artifacts.get(sid, [])
        )

    async def _run_batches(
        self, plan: RunPlan, step: StepPlan, ctx: dict[str, Any], items: list[Any], parallel: int
    ) -> list[ItemOutcome]:
        """A wide fan-out: a child workflow per batch, so no history grows with the items."""
        spans, at_once, per_batch = batches(len(items), parallel)
        results: list[list[ItemOutcome] | None] = [None] * len(spans)
        upstream = {k: v for k, v in self._artifacts.items() if "[" not in k}
        ctx = context_for(step, ctx)

        async def job(b: int) -> bool:
            start, end = spans[b]
            batch = FanOutBatch(
                plan=plan, step=step.id, context=ctx, artifacts=upstream,
                items=items[start:end], first=start, parallel=per_batch, fail_fast=step.fail_fast,
            )  # fmt: skip
            done: BatchResult = await workflow.execute_child_workflow(
                FANOUT_WORKFLOW,
                batch,
                id=f"{plan.run_id}.{step.id}.{start}",
                result_type=BatchResult,
                cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
            results[b] = done.outcomes
            return step.fail_fast and any(o.status == StepStatus.FAILED for o in done.outcomes)

        await in_lanes(at_once, len(spans), job)
        return [
            o
            for b, (start, end) in enumerate(spans)
            for o in (results[b] or [NOT_RUN] * (end - start))
        ]

    @workflow.run
    async def run(self, plan: RunPlan) -> dict[str, Any]:
        self._plan = plan
        flusher = asyncio.create_task(self._flusher())
        self._emit("run_started")
        error: str | None = None
        base_ctx = self._context(plan, {})
        try:
            env = {k: to_text(render(v, base_ctx)) for k, v in plan.env.items()}
        except ExpressionError as exc:
            env, error = {}, str(exc)
        main = [s for s in plan.steps if not s.is_finally]
        final = [s for s in plan.steps if s.is_finally]
        outcome = RunStatus.FAILED if error else RunStatus.SUCCEEDED
        if error is None:
            graph = asyncio.create_task(self._run_graph(plan, main, env))
            try:
                await workflow.wait_condition(graph.done, timeout=plan.run_timeout_s)
                graph.result()
            except builtins.TimeoutError:
                error, outcome = f"run timed out after {plan.run_timeout_s:g}s", RunStatus.FAILED
                await self._stop(graph)
            except asyncio.CancelledError:
                error, outcome = "cancelled", RunStatus.CANCELLED
                await self._stop(graph)
        if outcome == RunStatus.SUCCEEDED:
            failed = [s.id for s in main if not self._satisfied(s.id)]
            if failed:
                outcome = RunStatus.FAILED
                error = self._failure_summary(failed)
        self._run_status = outcome
        if final:
            # cleanup and notification steps run whatever happened, even after a cancel
            await asyncio.shield(self._run_graph(plan, final, env))
        outputs: dict[str, Any] | None = None
        if outcome == RunStatus.SUCCEEDED:
            try:
                ctx = self._context(plan, env)
                wanted = [t.source for v in plan.outputs.values() for t in find_templates(v)]
                ctx = await self._reading(plan, [s for s in wanted if not plain_path(s)], ctx)
                outputs = {k: render(v, ctx) for k, v in plan.outputs.items()}
                check_contract(
                    outputs, plan.outputs_schema, step="", what="output", subject="the run's"
                )
            except ExpressionError as exc:
                outcome, error = RunStatus.FAILED, f"run outputs: {exc}"
            except OutputError as exc:
                outcome, error, outputs = RunStatus.FAILED, str(exc), None
        self._emit("run_finished", status=outcome, outputs=outputs, error=error)
        self._closing = True
        await asyncio.shield(flusher)
        return {"status": outcome, "outputs": outputs, "error": error}

    def _failure_summary(self, steps: list[str]) -> str:
        """``failed: E; upstream_failed: G``: each step under its own status, the failed first."""
        groups: dict[str, list[str]] = {
            StepStatus.FAILED: [],
            StepStatus.UPSTREAM_FAILED: [],
            StepStatus.CANCELLED: [],
        }
        for sid in steps:
            groups.setdefault(self._status[sid], []).append(sid)
        return "; ".join(f"{status}: {', '.join(ids)}" for status, ids in groups.items() if ids)

    async def _stop(self, graph: asyncio.Task[None]) -> None:
        graph.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(graph)
