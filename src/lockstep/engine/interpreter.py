"""How one step is decided and run, shared by every interpreter workflow: its expressions
(with outputs stored by reference loaded when read), the cache, and its attempts on the
step's pool queue with retries; every change is reported to the recorder through batched
local activities that never sit on the step path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
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
    from lockstep.clock import format_ts
    from lockstep.engine.caching import cache_key
    from lockstep.engine.events import Event, EventBatch
    from lockstep.engine.gates import GateKeeper
    from lockstep.engine.refs import step_sources
    from lockstep.engine.states import STEP_FINISHED, RunStatus, StepStatus
    from lockstep.engine.types import (
        ArtifactRef,
        CacheHit,
        CacheQuery,
        OutputLoad,
        RunPlan,
        StepPlan,
        StepResult,
        StepTask,
    )
    from lockstep.engine.writes import deep_render, rendered
    from lockstep.outputs_by_reference import LOAD_MAX, ref_keys, with_values
    from lockstep.settings import child_queue, pool_queue
    from lockstep.spec.contracts import OutputError, check_contract
    from lockstep.spec.expressions import (
        OPEN,
        ExpressionError,
        evaluate,
        narrowed,
        render,
        to_text,
    )
    from lockstep.spec.resources import ResourceDataError
    from lockstep.spec.step_kinds import CHILD, ENGINE_KINDS, NOOP

STEP_ACTIVITY = "lockstep.step"
#: a ``workflow:`` step's attempt: start its child run (through the run service) and follow
#: it to its end, on the control plane's queue for children
CHILD_ACTIVITY = "lockstep.child_run"
FANOUT_WORKFLOW = "lockstep.fanout"  # a batch of a wide fan-out (engine.fanout)
CACHE_ACTIVITY = "lockstep.cache_lookup"
LOAD_ACTIVITY = "lockstep.load_outputs"
RECORD_ACTIVITY = "lockstep.record"
WAIT_ACTIVITY = "lockstep.wait"
#: Temporal's durable timers fire on a tick of about a second (a 100 ms timer, even a 0 s one,
#: fires ~1 s later), so shorter retry backoffs are slept by a local activity instead
TIMER_TICK_S = 1.0
WORKER_SHUTDOWN = "WorkerShutdown"
#: a worker lost mid-step is retried this many times without using the step's own retries
INFRA_RETRIES = 3
#: generous bound on one attempt when the step sets no timeout; liveness comes from heartbeats
NO_TIMEOUT = timedelta(days=30)


class StepInterpreter:
    """The state and step machinery of an interpreter workflow (not a workflow itself)."""

    def __init__(self) -> None:
        self._events: list[Event] = []
        self._closing = False
        self._status: dict[str, str] = {}
        self._outputs: dict[str, Any] = {}  # an object per step; a list for a fan-out step
        self._errors: dict[str, str | None] = {}
        self._continue: set[str] = set()  # failed steps whose continue_on_error lets others go
        self._plan: RunPlan | None = None
        self._run_status: str = RunStatus.RUNNING
        self._attempt_no: dict[str, int] = {}  # per step, across a state machine's visits
        self._artifacts: dict[str, list[ArtifactRef]] = {}  # what each succeeded step stored
        self._gates = GateKeeper(self._emit, self._settle, self._status)  # approvals, waits
        #: told each time a step settles (a graph starts the steps that waited for it)
        self._on_settled: Callable[[], None] | None = None
        self._settled = 0  # how many times a step (or item) settled

    def _emit(self, kind: str, at: str | None = None, **fields: Any) -> None:
        self._events.append(Event(kind=kind, at=at or format_ts(workflow.now()), **fields))

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

    def _settle(
        self,
        step: str,
        status: str,
        *,
        outputs: Any = None,
        error: str | None = None,
        reused_from: str | None = None,
        cached_from: str | None = None,
        attempt: int | None = None,
        writes: dict[str, Any] | None = None,
    ) -> None:
        self._status[step] = status
        self._settled += 1
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
            attempt=attempt,
            writes=writes,
        )
        if self._on_settled is not None:
            self._on_settled()

    def _succeed(
        self,
        step: StepPlan,
        outputs: Any,
        ctx: dict[str, Any] | None,
        *,
        attempt: int | None = None,
        **how: str | None,
    ) -> None:
        """Settle ``step`` succeeded with its ``writes:`` rendered (its own outputs readable)
        and checked against each resource's schema; a write that does not render or check
        fails the step instead, naming the JSON pointer, and writes nothing."""
        writes: dict[str, Any] | None = None
        if step.writes and ctx is not None:
            assert self._plan is not None
            try:
                writes = rendered(step, outputs, ctx, self._plan.resource_schemas)
            except (ExpressionError, ResourceDataError) as exc:
                self._settle(step.id, StepStatus.FAILED, error=f"writes: {exc}", attempt=attempt)
                self._maybe_continue(step)
                return
        self._settle(
            step.id, StepStatus.SUCCEEDED, outputs=outputs, attempt=attempt, writes=writes, **how
        )

    async def _reading(
        self, plan: RunPlan, sources: list[str], ctx: dict[str, Any]
    ) -> dict[str, Any]:
        """``ctx`` with the outputs stored by reference that ``sources`` read loaded into it
        (an expression looking inside a value needs the value, not its marker)."""
        keys = {k: n for src in sources if src for k, n in ref_keys(narrowed(src, ctx))}
        return dict(await self._with_values(plan, ctx, keys)) if keys else ctx

    async def _with_values(self, plan: RunPlan, value: Any, keys: dict[str, int]) -> Any:
        """``value`` with the markers of ``keys`` (key -> size) replaced by their values."""
        for size in keys.values():
            if size > LOAD_MAX:
                raise ExpressionError(
                    f"an output stored by reference ({size} bytes) is too big to read in an "
                    f"expression (the most is {LOAD_MAX}); hand it on whole instead, "
                    "e.g. with: {data: ${{ steps.STEP.outputs.NAME }}}"
                )
        loaded: dict[str, Any] = await workflow.execute_local_activity(
            LOAD_ACTIVITY,
            OutputLoad(plan.project, sorted(keys)),
            result_type=dict,
            start_to_close_timeout=timedelta(seconds=60),
        )
        return with_values(value, loaded)

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
                self._settle(step.id, StepStatus.SKIPPED, error="condition is false")
                return
            argv, step_env = self._render(step, ctx)
            data = deep_render(step.inputs, ctx) if step.inputs or step.input_schema else None
            extra = render(step.cache_key, ctx) if step.cache_key else None
            if any(OPEN in path for path in step.artifacts.values()):
                paths = {k: to_text(render(v, ctx)) for k, v in step.artifacts.items()}
                step = replace(step, artifacts=paths)
        except ExpressionError as exc:
            self._settle(step.id, StepStatus.FAILED, error=str(exc))
            self._maybe_continue(step)
            return
        if step.executor == NOOP.name:  # handed on in the engine: no worker needed
            self._pass_on(step, data, ctx)
            return
        if step.executor in ENGINE_KINDS:  # people or a timer decide it: no worker held
            await self._gates.run(step, ctx)
            if self._status.get(step.id) == StepStatus.FAILED:
                self._maybe_continue(step)
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
                self._succeed(
                    step,
                    hit.outputs,
                    ctx,
                    reused_from=hit.run_id,
                    cached_from=f"{hit.run_id}/{hit.step}/{hit.attempt}",
                )
                return
        await self._attempts(plan, step, argv, step_env, data, cache=key, ctx=ctx)

    def _pass_on(self, step: StepPlan, data: Any, ctx: dict[str, Any] | None = None) -> None:
        """A noop step is decided here, with no worker and no attempt: its input, checked
        against its contracts, becomes its outputs."""
        outputs = data if data is not None else {}
        try:
            check_contract(outputs, step.input_schema, step=step.id, what="input")
            check_contract(outputs, step.outputs_schema, step=step.id, what="output")
        except OutputError as exc:
            self._settle(step.id, StepStatus.FAILED, error=str(exc))
            self._maybe_continue(step)
            return
        self._succeed(step, outputs, ctx)

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
        ctx: dict[str, Any] | None = None,
    ) -> StepResult:
        """Run ``step`` until it succeeds or its retries are spent, then settle it (unless
        ``settle`` is False: a state machine settles a step once it has left it for good).
        ``data``: the step's input, for steps with a typed contract or a state machine's."""
        attempt, failures, infra = self._attempt_no.get(step.id, 0), 0, 0
        woke_at: str | None = None  # when a sub-second backoff ended (workflow time lags it)
        activity_name, queue = STEP_ACTIVITY, pool_queue(step.pool)
        if step.executor == CHILD.name:
            activity_name, queue = CHILD_ACTIVITY, child_queue(workflow.info().task_queue)
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
                container=step.container,
                result=step.result,
            )
            self._emit(
                "attempt_started",
                at=woke_at,
                step=step.id,
                attempt=attempt,
                log_key=log_key,
                pool=step.pool,
            )
            self._status[step.id] = StepStatus.RUNNING
            lost = False
            result: StepResult
            try:
                result = await workflow.execute_activity(
                    activity_name,
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
            status = StepStatus.SUCCEEDED if result.ok else StepStatus.FAILED
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
                    self._succeed(step, result.outputs, ctx, attempt=attempt)
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
                woke_at = await self._wait(self._backoff(step, failures))
                continue
            if settle:
                self._settle(step.id, StepStatus.FAILED, error=result.error)
                self._maybe_continue(step)
            return result

    def _cancelled_attempt(self, step: str, attempt: int) -> None:
        if self._status.get(step) in STEP_FINISHED:
            return
        self._emit(
            "attempt_finished",
            step=step,
            attempt=attempt,
            status=StepStatus.CANCELLED,
            error="cancelled",
        )
        self._settle(step, StepStatus.CANCELLED, error="cancelled")

    @staticmethod
    async def _wait(seconds: float) -> str | None:
        """Wait ``seconds`` (0: not at all); below the timer tick, return when the wait ended
        (the local activity's clock, recorded, so a replay reads the same)."""
        if seconds <= 0:
            return None
        if seconds >= TIMER_TICK_S:
            await workflow.sleep(seconds)
            return None
        woke: str = await workflow.execute_local_activity(
            WAIT_ACTIVITY,
            seconds,
            result_type=str,
            start_to_close_timeout=timedelta(seconds=seconds + 30),
        )
        return woke

    @staticmethod
    def _backoff(step: StepPlan, failures: int) -> float:
        delay = step.retry.backoff_s * (2 ** (failures - 1))
        if step.retry.max_backoff_s is not None:
            delay = min(delay, step.retry.max_backoff_s)
        return float(max(delay, 0.0))
