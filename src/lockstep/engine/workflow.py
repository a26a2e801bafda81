"""The interpreter: one Temporal workflow per run (workflow id = run id).

It walks the plan's graph, starts one activity per step attempt on the step's pool queue,
decides retries, skips and the run's fate, and reports every change to the recorder through
batched local activities that never sit on the step path.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
from dataclasses import replace
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy
from temporalio.exceptions import (
    ActivityError,
    ApplicationError,
    CancelledError,
    TimeoutError,
    TimeoutType,
)

with workflow.unsafe.imports_passed_through():
    from lockstep.engine.caching import cache_key
    from lockstep.engine.events import Event, EventBatch
    from lockstep.engine.items import (
        BATCH,
        BatchResult,
        FanOutBatch,
        aggregate,
        batches,
        context_for,
    )
    from lockstep.engine.refs import LOAD_MAX, plain_path, ref_keys, step_sources, with_values
    from lockstep.engine.states import STEP_TERMINAL
    from lockstep.engine.types import (
        CANCELLED,
        FAILED,
        SKIPPED,
        SUCCEEDED,
        UPSTREAM_FAILED,
        ArtifactRef,
        CacheHit,
        CacheQuery,
        ItemOutcome,
        OutputLoad,
        RunPlan,
        StepPlan,
        StepResult,
        StepTask,
    )
    from lockstep.executors.outputs import OutputError, check_contract
    from lockstep.settings import pool_queue
    from lockstep.spec.expressions import (
        OPEN,
        ExpressionError,
        evaluate,
        find_templates,
        narrowed,
        references,
        render,
        to_text,
    )
    from lockstep.spec.models import MAX_ITEMS

STEP_ACTIVITY = "lockstep.step"
FANOUT_WORKFLOW = "lockstep.fanout"
CACHE_ACTIVITY = "lockstep.cache_lookup"
LOAD_ACTIVITY = "lockstep.load_outputs"
RECORD_ACTIVITY = "lockstep.record"
WORKER_SHUTDOWN = "WorkerShutdown"
#: a worker lost mid-step is retried this many times without using the step's own retries
INFRA_RETRIES = 3
#: generous bound on one attempt when the step sets no timeout; liveness comes from heartbeats
NO_TIMEOUT = timedelta(days=30)


def _iso(at: Any) -> str:
    return str(at.isoformat(timespec="microseconds")).replace("+00:00", "Z")


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


def _deep_render(value: Any, ctx: dict[str, Any]) -> Any:
    """``with:`` values: every string rendered (a whole ``${{ }}`` keeps its JSON type)."""
    if isinstance(value, str):
        return render(value, ctx)
    if isinstance(value, dict):
        return {k: _deep_render(v, ctx) for k, v in value.items()}
    if isinstance(value, list):
        return [_deep_render(v, ctx) for v in value]
    return value


@workflow.defn(name="lockstep.run")
class RunWorkflow:
    def __init__(self) -> None:
        self._events: list[Event] = []
        self._closing = False
        self._status: dict[str, str] = {}
        self._outputs: dict[str, Any] = {}  # an object per step; a list for a fan-out step
        self._errors: dict[str, str | None] = {}
        self._continue: set[str] = set()  # failed steps whose continue_on_error lets others go
        self._plan: RunPlan | None = None
        self._run_status = "running"
        self._attempt_no: dict[str, int] = {}  # per step, across a state machine's visits
        self._artifacts: dict[str, list[ArtifactRef]] = {}  # what each succeeded step stored

    # -- recording -------------------------------------------------------------------------

    def _emit(self, kind: str, **fields: Any) -> None:
        self._events.append(Event(kind=kind, at=_iso(workflow.now()), **fields))

    async def _flusher(self) -> None:
        assert self._plan is not None
        while True:
            await workflow.wait_condition(lambda: bool(self._events) or self._closing)
            if not self._events:
                return
            batch, self._events = self._events, []
            await workflow.execute_local_activity(
                RECORD_ACTIVITY,
                EventBatch(run_id=self._plan.run_id, events=batch),
                start_to_close_timeout=timedelta(seconds=60),
                retry_policy=RetryPolicy(maximum_interval=timedelta(seconds=5)),
            )

    @workflow.query(name="status")
    def status(self) -> dict[str, str]:
        return dict(self._status)

    # -- expressions -----------------------------------------------------------------------

    def _context(self, plan: RunPlan, env: dict[str, str]) -> dict[str, Any]:
        steps = {
            sid: {"status": st, "outputs": self._outputs.get(sid, {})}
            for sid, st in self._status.items()
            if "[" not in sid  # fan-out items are seen through their step
        }
        run = {"id": plan.run_id, "sha": plan.sha or "", "status": self._run_status}
        return {"params": plan.params, "steps": steps, "run": run, "env": env}

    # -- the graph -------------------------------------------------------------------------

    def _settle(
        self,
        step: str,
        status: str,
        *,
        outputs: Any = None,
        error: str | None = None,
        reused_from: str | None = None,
        cached_from: str | None = None,
    ) -> None:
        self._status[step] = status
        self._errors[step] = error
        if outputs is not None:
            self._outputs[step] = outputs
        self._emit(
            "step_finished",
            step=step,
            status=status,
            outputs=outputs,
            error=error,
            reused_from=reused_from,
            cached_from=cached_from,
        )

    def _satisfied(self, step: str) -> bool:
        st = self._status[step]
        return st in (SUCCEEDED, SKIPPED) or (st == FAILED and step in self._continue)

    async def _run_step(self, plan: RunPlan, step: StepPlan, env: dict[str, str]) -> None:
        await workflow.wait_condition(
            lambda: all(self._status.get(n) in STEP_TERMINAL for n in step.needs)
        )
        blocked = [n for n in step.needs if not self._satisfied(n)]
        if blocked:
            why = ", ".join(f"{n} {self._status[n]}" for n in blocked)
            cancelled = all(self._status[n] == CANCELLED for n in blocked)
            self._settle(
                step.id, CANCELLED if cancelled else UPSTREAM_FAILED, error=f"needs: {why}"
            )
            return
        reused = plan.reuse.get(step.id)
        if reused is not None:
            self._artifacts[step.id] = list(reused.artifacts)
            self._settle(step.id, SUCCEEDED, outputs=reused.outputs, reused_from=reused.run_id)
            return
        ctx = self._context(plan, env)
        items: list[Any] | None = None
        try:
            ctx = await self._reading(plan, [step.condition or "", step.for_each or ""], ctx)
            # a condition that reads the item is decided per item, any other once
            whole = step.condition is not None and not (step.fans_out and _reads_item(step))
            if whole and not self._holds(step, ctx):
                self._settle(step.id, SKIPPED, error="condition is false")
                return
            if step.fans_out:
                items = _items(step, ctx)
        except ExpressionError as exc:
            self._settle(step.id, FAILED, error=str(exc))
            self._maybe_continue(step)
            return
        if items is None:
            await self._execute(plan, step, ctx)
        else:
            await self._fan_out(plan, step, ctx, items)

    async def _reading(
        self, plan: RunPlan, sources: list[str], ctx: dict[str, Any]
    ) -> dict[str, Any]:
        """``ctx`` with the outputs stored by reference that ``sources`` read loaded into it
        (an expression looking inside a value needs the value, not its marker)."""
        keys = {k: n for src in sources if src for k, n in ref_keys(narrowed(src, ctx))}
        if not keys:
            return ctx
        for key, size in keys.items():
            if size > LOAD_MAX:
                raise ExpressionError(
                    f"output {key.rsplit('/', 1)[-1][:-5]!r} is {size} bytes, too big to read "
                    f"in an expression (the most is {LOAD_MAX}); hand it on whole instead, "
                    "e.g. with: {data: ${{ steps.STEP.outputs.NAME }}}"
                )
        loaded: dict[str, Any] = await workflow.execute_local_activity(
            LOAD_ACTIVITY,
            OutputLoad(plan.project, sorted(keys)),
            result_type=dict,
            start_to_close_timeout=timedelta(seconds=60),
        )
        return dict(with_values(ctx, loaded))

    def _holds(self, step: StepPlan, ctx: dict[str, Any]) -> bool:
        assert step.condition is not None
        verdict = evaluate(step.condition, ctx)
        if not isinstance(verdict, bool):
            raise ExpressionError(
                f"'if' of step '{step.id}' gave {to_text(verdict)!r}, not a boolean"
            )
        return verdict

    async def _execute(
        self, plan: RunPlan, step: StepPlan, ctx: dict[str, Any], *, condition: bool = False
    ) -> None:
        """Render ``step`` in ``ctx``, then take a cached result or run its attempts; either
        way the step is settled. ``condition``: decide its ``if`` here (a fan-out item's)."""
        try:
            ctx = await self._reading(plan, step_sources(step)[0], ctx)
            if condition and step.condition is not None and not self._holds(step, ctx):
                self._settle(step.id, SKIPPED, error="condition is false")
                return
            argv, step_env = self._render(step, ctx)
            data = _deep_render(step.inputs, ctx) if step.inputs or step.input_schema else None
            extra = render(step.cache_key, ctx) if step.cache_key else None
            if any(OPEN in path for path in step.artifacts.values()):
                paths = {k: to_text(render(v, ctx)) for k, v in step.artifacts.items()}
                step = replace(step, artifacts=paths)
        except ExpressionError as exc:
            self._settle(step.id, FAILED, error=str(exc))
            self._maybe_continue(step)
            return
        if step.executor == "noop":
            self._pass_on(step, data)
            return
        key = None
        if step.cache and not plan.no_cache:
            inputs = self._artifact_inputs(step)
            key = cache_key(plan, step, argv, step_env, data, inputs, extra)
            hit: CacheHit | None = await workflow.execute_local_activity(
                CACHE_ACTIVITY,
                CacheQuery(plan.project, key, step.cache_ttl_s),
                result_type=CacheHit,
                start_to_close_timeout=timedelta(seconds=30),
            )
            if hit is not None:
                self._artifacts[step.id] = list(hit.artifacts)
                self._settle(
                    step.id,
                    SUCCEEDED,
                    outputs=hit.outputs,
                    reused_from=hit.run_id,
                    cached_from=f"{hit.run_id}/{hit.step}/{hit.attempt}",
                )
                return
        await self._attempts(plan, step, argv, step_env, data, cache=key)

    def _pass_on(self, step: StepPlan, data: Any) -> None:
        """A noop step is decided here, with no worker and no attempt: its input, checked
        against its contracts, becomes its outputs."""
        outputs = data if data is not None else {}
        try:
            check_contract(outputs, step.input_schema, step=step.id, what="input")
            check_contract(outputs, step.outputs_schema, step=step.id, what="output")
        except OutputError as exc:
            self._settle(step.id, FAILED, error=str(exc))
            self._maybe_continue(step)
            return
        self._settle(step.id, SUCCEEDED, outputs=outputs)

    def _artifact_inputs(self, step: StepPlan) -> list[ArtifactRef]:
        return [
            ref
            for wanted in step.artifact_inputs
            for ref in self._artifacts.get(wanted.split(".", 1)[0], [])
            if ref.name == wanted.split(".", 1)[1]
        ]

    def _render(self, step: StepPlan, ctx: dict[str, Any]) -> tuple[list[str], dict[str, str]]:
        env = {k: to_text(render(v, ctx)) for k, v in step.env.items()}
        env.update({k: to_text(evaluate(src, ctx)) for k, src in step.bindings.items()})
        if step.shell:
            return list(step.command), env
        return [to_text(render(arg, ctx)) for arg in step.command], env

    def _maybe_continue(self, step: StepPlan) -> None:
        if step.continue_on_error:
            self._continue.add(step.id)

    async def _attempts(
        self,
        plan: RunPlan,
        step: StepPlan,
        argv: list[str],
        env: dict[str, str],
        data: Any = None,
        *,
        settle: bool = True,
        cache: str | None = None,
    ) -> StepResult:
        """Run ``step`` until it succeeds or its retries are spent, then settle it (unless
        ``settle`` is False: a state machine settles a step once it has left it for good).
        ``data``: the step's input, for steps with a typed contract or a state machine's."""
        attempt, failures, infra = self._attempt_no.get(step.id, 0), 0, 0
        queue = pool_queue(step.pool)
        grace = 60.0
        start_to_close = timedelta(seconds=step.timeout_s + grace) if step.timeout_s else NO_TIMEOUT
        while True:
            attempt += 1
            self._attempt_no[step.id] = attempt
            log_key = f"{plan.run_id}/{step.id}/{attempt}"
            task = StepTask(
                run_id=plan.run_id,
                step_id=step.id,
                attempt=attempt,
                argv=argv,
                env=env,
                workspace=plan.workspace,
                timeout_s=step.timeout_s,
                outputs_schema=step.outputs_schema,
                log_key=log_key,
                project=plan.project,
                secrets=step.secrets,
                executor=step.executor,
                config=step.config,
                input=data,
                input_schema=step.input_schema,
                artifacts=step.artifacts,
                artifact_inputs=self._artifact_inputs(step),
                image=step.image,
                cpu=step.cpu,
                memory_bytes=step.memory_bytes,
                pull=step.pull,
                network=step.network,
                user=step.user,
            )
            self._emit(
                "attempt_started", step=step.id, attempt=attempt, log_key=log_key, pool=step.pool
            )
            self._status[step.id] = "running"
            lost = False
            result: StepResult
            try:
                result = await workflow.execute_activity(
                    STEP_ACTIVITY,
                    task,
                    result_type=StepResult,
                    task_queue=queue,
                    start_to_close_timeout=start_to_close,
                    heartbeat_timeout=timedelta(seconds=plan.heartbeat_timeout_s),
                    schedule_to_start_timeout=(
                        timedelta(seconds=step.schedule_timeout_s)
                        if step.schedule_timeout_s
                        else None
                    ),
                    retry_policy=RetryPolicy(maximum_attempts=1),
                    cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
            except ActivityError as exc:
                cause, worker = exc.cause, ""
                if isinstance(cause, CancelledError):
                    self._cancelled_attempt(step.id, attempt)
                    raise asyncio.CancelledError from exc
                if isinstance(cause, TimeoutError) and cause.type == TimeoutType.HEARTBEAT:
                    lost = True
                    why = f"worker lost: no heartbeat for {plan.heartbeat_timeout_s:g}s"
                    details = cause.last_heartbeat_details
                    worker = str(details[0]) if details else ""
                elif (
                    isinstance(cause, TimeoutError) and cause.type == TimeoutType.SCHEDULE_TO_START
                ):
                    why = (
                        f"no worker of pool '{step.pool}' took the step within "
                        f"{step.schedule_timeout_s:g}s (schedule_timeout)"
                    )
                elif isinstance(cause, ApplicationError) and cause.type == WORKER_SHUTDOWN:
                    lost, why = True, "worker shut down during the step"
                else:
                    why = f"step could not run: {cause or exc}"
                result = StepResult(ok=False, error=why, worker=worker)
            except asyncio.CancelledError:
                self._cancelled_attempt(step.id, attempt)
                raise
            status = SUCCEEDED if result.ok else FAILED
            self._emit(
                "attempt_finished",
                step=step.id,
                attempt=attempt,
                status=status,
                result=result,
                cache_key=cache if result.ok else None,
            )
            if result.ok:
                self._artifacts[step.id] = list(result.artifacts)
                if settle:
                    self._settle(step.id, SUCCEEDED, outputs=result.outputs)
                return result
            if lost and infra < INFRA_RETRIES:
                infra += 1
                continue
            failures += 1
            codes = step.retry.on_exit_codes
            retryable = codes is None or (
                result.exit_code is not None and result.exit_code in codes
            )
            if failures < step.retry.attempts and retryable and not result.timed_out:
                await workflow.sleep(self._backoff(step, failures))
                continue
            if settle:
                self._settle(step.id, FAILED, error=result.error)
                self._maybe_continue(step)
            return result

    def _cancelled_attempt(self, step: str, attempt: int) -> None:
        if self._status.get(step) in STEP_TERMINAL:
            return
        self._emit(
            "attempt_finished", step=step, attempt=attempt, status=CANCELLED, error="cancelled"
        )
        self._settle(step, CANCELLED, error="cancelled")

    @staticmethod
    def _backoff(step: StepPlan, failures: int) -> float:
        delay = step.retry.backoff_s * (2 ** (failures - 1))
        if step.retry.max_backoff_s is not None:
            delay = min(delay, step.retry.max_backoff_s)
        return float(max(delay, 0.0))

    async def _run_graph(self, plan: RunPlan, steps: list[StepPlan], env: dict[str, str]) -> None:
        tasks = [asyncio.create_task(self._run_step(plan, s, env)) for s in steps]
        try:
            # return_exceptions: on cancel, wait until every step has confirmed its own stop
            # (a running activity is only cancelled once its worker killed the process)
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for s in steps:  # steps stopped while waiting for needs or for a retry
                if self._status.get(s.id) not in STEP_TERMINAL:
                    self._settle(s.id, CANCELLED, error="cancelled")
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                raise result  # a bug: fail the workflow task so it is retried, not hidden

    # -- fan-out -----------------------------------------------------------------------------

    async def _fan_out(
        self, plan: RunPlan, step: StepPlan, ctx: dict[str, Any], items: list[Any]
    ) -> None:
        n = len(items)
        self._emit("fanout_started", step=step.id, items=n)
        self._status[step.id] = "running"
        parallel = step.max_parallel or max(n, 1)
        if n <= BATCH:
            outcomes = await self._run_items(
                plan, step, ctx, items, 0, parallel, fail_fast=step.fail_fast
            )
        else:
            outcomes = await self._run_batches(plan, step, ctx, items, parallel)
        status, error = aggregate(step.id, outcomes)
        self._artifacts[step.id] = [ref for o in outcomes for ref in o.artifacts]
        outputs = [o.outputs if o.status == SUCCEEDED else None for o in outcomes]
        self._settle(step.id, status, outputs=outputs, error=error)
        if status == FAILED:
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
        pending = iter(range(len(items)))
        lanes: list[asyncio.Task[None]] = []

        async def lane() -> None:
            for i in pending:
                outcomes[i] = await self._run_item(plan, step, ctx, items[i], first + i)
                if fail_fast and outcomes[i].status == FAILED:  # type: ignore[union-attr]
                    for other in lanes:
                        if other is not asyncio.current_task():
                            other.cancel()
                    return

        lanes.extend(asyncio.create_task(lane()) for _ in range(min(parallel, len(items))))
        await asyncio.gather(*lanes, return_exceptions=True)
        return [o or ItemOutcome(CANCELLED, error="not run: another item failed") for o in outcomes]

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
        if status != SUCCEEDED:
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
        pending = iter(range(len(spans)))
        lanes: list[asyncio.Task[None]] = []
        upstream = {k: v for k, v in self._artifacts.items() if "[" not in k}
        ctx = context_for(step, ctx)

        async def lane() -> None:
            for b in pending:
                start, end = spans[b]
                batch = FanOutBatch(
                    plan=plan, step=step.id, context=ctx, artifacts=upstream,
                    items=items[start:end], first=start, parallel=per_batch,
                    fail_fast=step.fail_fast,
                )  # fmt: skip
                done: BatchResult = await workflow.execute_child_workflow(
                    FANOUT_WORKFLOW,
                    batch,
                    id=f"{plan.run_id}.{step.id}.{start}",
                    result_type=BatchResult,
                    cancellation_type=workflow.ChildWorkflowCancellationType.WAIT_CANCELLATION_COMPLETED,
                )
                results[b] = done.outcomes
                if step.fail_fast and any(o.status == FAILED for o in done.outcomes):
                    for other in lanes:
                        if other is not asyncio.current_task():
                            other.cancel()
                    return

        lanes.extend(asyncio.create_task(lane()) for _ in range(at_once))
        await asyncio.gather(*lanes, return_exceptions=True)
        not_run = ItemOutcome(CANCELLED, error="not run: another item failed")
        return [
            o
            for b, (start, end) in enumerate(spans)
            for o in (results[b] or [not_run] * (end - start))
        ]

    # -- the run ---------------------------------------------------------------------------

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
        outcome = FAILED if error else SUCCEEDED
        if error is None:
            graph = asyncio.create_task(self._run_graph(plan, main, env))
            try:
                await workflow.wait_condition(graph.done, timeout=plan.run_timeout_s)
                graph.result()
            except builtins.TimeoutError:
                error, outcome = f"run timed out after {plan.run_timeout_s:g}s", FAILED
                await self._stop(graph)
            except asyncio.CancelledError:
                error, outcome = "cancelled", CANCELLED
                await self._stop(graph)
        if outcome == SUCCEEDED:
            failed = [s.id for s in main if not self._satisfied(s.id)]
            if failed:
                outcome = FAILED
                error = "failed steps: " + ", ".join(failed)
        self._run_status = outcome
        if final:
            # cleanup and notification steps run whatever happened, even after a cancel
            await asyncio.shield(self._run_graph(plan, final, env))
        outputs: dict[str, Any] | None = None
        if outcome == SUCCEEDED:
            try:
                ctx = self._context(plan, env)
                wanted = [t.source for v in plan.outputs.values() for t in find_templates(v)]
                ctx = await self._reading(plan, [s for s in wanted if not plain_path(s)], ctx)
                outputs = {k: render(v, ctx) for k, v in plan.outputs.items()}
                check_contract(
                    outputs, plan.outputs_schema, step="", what="output", subject="the run's"
                )
            except ExpressionError as exc:
                outcome, error = FAILED, f"run outputs: {exc}"
            except OutputError as exc:
                outcome, error, outputs = FAILED, str(exc), None
        self._emit("run_finished", status=outcome, outputs=outputs, error=error)
        self._closing = True
        await asyncio.shield(flusher)
        return {"status": outcome, "outputs": outputs, "error": error}

    async def _stop(self, graph: asyncio.Task[None]) -> None:
        graph.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(graph)
