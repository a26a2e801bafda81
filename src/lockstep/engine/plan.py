"""Compile a validated spec and its params into the ``RunPlan`` a run's workflow executes."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from graphlib import TopologicalSorter
from typing import Any

from lockstep.engine.types import (
    ApprovalPlan,
    Branch,
    ContainerSpec,
    RetryPlan,
    ReusedStep,
    RunPlan,
    StepPlan,
    Workspace,
)
from lockstep.spec.contracts import resolved
from lockstep.spec.expressions import condition_source, secret_reference, to_text
from lockstep.spec.fanout_rules import for_each_source
from lockstep.spec.gates import WaitUntil
from lockstep.spec.load import LoadedSpec
from lockstep.spec.machine import LoadedMachine
from lockstep.spec.models import CacheSpec, RetrySpec, StepSpec, WorkflowSpec
from lockstep.spec.shell import compile_shell
from lockstep.spec.step_kinds import SHELL, plan_name, yaml_kind


def _text(value: Any) -> str:
    return value if isinstance(value, str) else to_text(value)


def _approval(step: StepSpec, spec: WorkflowSpec) -> ApprovalPlan | None:
    terms = step.approval
    if terms is None:
        return None
    return ApprovalPlan(
        approvers=list(terms.approvers),
        required=terms.required,
        allow_self=terms.allow_self,
        input_schema=resolved(terms.input, spec.definitions),
        timeout_s=terms.timeout,
        on_timeout=terms.on_timeout,
        message=terms.message,
    )


def _retry(spec: RetrySpec | None) -> RetryPlan:
    if spec is None:
        return RetryPlan()
    return RetryPlan(
        attempts=spec.attempts,
        backoff_s=spec.backoff,
        max_backoff_s=spec.max_backoff,
        on_exit_codes=list(spec.on_exit_codes) if spec.on_exit_codes is not None else None,
    )


def _step_plan(spec: WorkflowSpec, step_id: str, step: StepSpec, is_finally: bool) -> StepPlan:
    merged = {**spec.env, **spec.defaults.env, **step.env}
    secrets = {k: name for k, v in merged.items() if (name := secret_reference(v)) is not None}
    env = {k: _text(v) for k, v in merged.items() if k not in secrets}
    if isinstance(step.run, str):
        compiled = compile_shell(step.run)
        # in an image, the POSIX shell every image has; the env-var references work in both
        interpreter = "sh" if step.image else "bash"
        command, bindings, shell = (
            [interpreter, "-c", compiled.script],
            dict(compiled.bindings),
            True,
        )
    else:
        command, bindings, shell = list(step.run or []), {}, False
    return StepPlan(
        id=step_id,
        command=command,
        shell=shell,
        bindings=bindings,
        env=env,
        needs=list(step.needs),
        condition=condition_source(step.if_),
        retry=_retry(step.retry or spec.defaults.retry),
        timeout_s=step.timeout if step.timeout is not None else spec.defaults.timeout,
        continue_on_error=step.continue_on_error,
        outputs_schema=resolved(step.outputs, spec.definitions),
        is_finally=is_finally,
        secrets=secrets,
        input_schema=resolved(step.input, spec.definitions),
        inputs=dict(step.with_),
        artifacts=dict(step.artifacts),
        cache=bool(step.cache),
        cache_key=step.cache.key if isinstance(step.cache, CacheSpec) else None,
        cache_ttl_s=step.cache.ttl if isinstance(step.cache, CacheSpec) else None,
        artifact_inputs=list(step.inputs.artifacts) if step.inputs else [],
        schedule_timeout_s=(
            step.schedule_timeout
            if step.schedule_timeout is not None
            else spec.defaults.schedule_timeout
        ),
        container=(
            ContainerSpec(
                image=step.image,
                cpu=step.resources.cpu if step.resources else None,
                memory_bytes=step.resources.memory if step.resources else None,
                pull=step.pull,
                network=step.network,
                user=step.user,
            )
            if step.image
            else None
        ),
        executor=plan_name(yaml_kind(vars(step))),
        config=(
            step.http.config()
            if step.http is not None
            else {"selector": step.workflow}
            if step.workflow is not None
            else {}
        ),
        approval=_approval(step, spec),
        wait_s=step.wait if isinstance(step.wait, float | int) else None,
        wait_until=step.wait.until if isinstance(step.wait, WaitUntil) else None,
        for_each=for_each_source(step.for_each),
        items=list(step.for_each) if isinstance(step.for_each, list) else None,
        max_parallel=step.max_parallel,
        fail_fast=step.fail_fast is not False,
        result=step.result,
        writes=dict(step.writes),
    )


def _run_plan(
    workflow: str,
    digest: str,
    steps: list[StepPlan],
    *,
    run_id: str,
    project: str,
    params: dict[str, Any],
    workspace: Workspace,
    heartbeat_timeout_s: float,
    **dialect: Any,
) -> RunPlan:
    """The plan of a run in either dialect: what every run carries (which run, whose, its
    params, its checkout, how long a silent worker is trusted), plus the dialect's own fields
    (a YAML run's outputs, env and reuse; a state machine's start step)."""
    return RunPlan(
        run_id=run_id,
        project=project,
        workflow=workflow,
        spec_digest=digest,
        params=params,
        workspace=workspace,
        steps=steps,
        heartbeat_timeout_s=heartbeat_timeout_s,
        **dialect,
    )


def step_order(spec: WorkflowSpec) -> list[tuple[str, bool]]:
    """Main steps then finally steps, each group in a stable topological order."""
    order: list[tuple[str, bool]] = []
    for group, is_finally in ((spec.steps, False), (spec.finally_, True)):
        sorter = TopologicalSorter(
            {sid: [n for n in s.needs if n in group] for sid, s in group.items()}
        )
        order.extend((sid, is_finally) for sid in sorter.static_order())
    return order


def compile_plan(
    loaded: LoadedSpec,
    *,
    run_id: str,
    project: str,
    params: dict[str, Any],
    workspace: Workspace,
    heartbeat_timeout_s: float,
    reuse: dict[str, ReusedStep] | None = None,
    sha: str | None = None,
    pool: str | None = None,
    no_cache: bool = False,
) -> RunPlan:
    """``pool``: the run's placement override (an instance's); a step's own ``runs_on`` still
    wins, and ``defaults.runs_on`` applies below it."""
    spec = loaded.spec
    steps = []
    for sid, fin in step_order(spec):
        step = (spec.finally_ if fin else spec.steps)[sid]
        where = step.runs_on or pool or spec.defaults.runs_on or "default"
        steps.append(replace(_step_plan(spec, sid, step, fin), pool=where))
    return _run_plan(
        spec.name,
        loaded.digest,
        steps,
        run_id=run_id,
        project=project,
        params=params,
        workspace=workspace,
        heartbeat_timeout_s=heartbeat_timeout_s,
        outputs=dict(spec.outputs),
        env={k: _text(v) for k, v in spec.env.items()},
        run_timeout_s=spec.timeout,
        reuse=reuse or {},
        sha=sha,
        no_cache=no_cache,
        outputs_schema=resolved(spec.outputs_schema, spec.definitions),
    )


def secret_names(spec: WorkflowSpec, left_out: Collection[str] = ()) -> list[str]:
    """Every secret a run of ``spec`` will ask for, sorted; ``left_out``: steps the run does
    not run (a partial run's)."""
    values = [*spec.env.values(), *spec.defaults.env.values()]
    for sid, step in spec.all_steps().items():
        if sid not in left_out:
            values.extend(step.env.values())
    return sorted({name for v in values if (name := secret_reference(v)) is not None})


def compile_machine(
    machine: LoadedMachine,
    *,
    run_id: str,
    project: str,
    params: dict[str, Any],
    workspace: Workspace,
    heartbeat_timeout_s: float,
    pool: str = "default",
) -> RunPlan:
    """A state machine as a plan: every step, its executor and contract, and its exits."""
    steps = []
    for step in machine.steps.values():
        config = dict(step.config)
        command: list[str] = []
        shell = False
        if step.executor == SHELL.name:
            run = config.pop("run")
            shell = isinstance(run, str)
            command = ["bash", "-c", run] if shell else [str(a) for a in run]
        t = step.transition
        if t.conditional:
            branches = [Branch(c, n) for c, n in t.conditions] + [Branch(None, t.default)]
        else:
            branches = [Branch(None, t.next)]
        timeout = config.pop("timeout", None)
        steps.append(
            StepPlan(
                id=step.name,
                command=command,
                shell=shell,
                env={k: str(v) for k, v in config.pop("env", {}).items()},
                timeout_s=float(timeout) if timeout is not None else None,
                outputs_schema=step.output_schema,
                pool=pool,
                executor=step.executor,
                config=config,
                input_schema=step.input_schema,
                branches=branches,
                max_visits=step.max_visits,
            )
        )
    return _run_plan(
        machine.name,
        machine.digest,
        steps,
        run_id=run_id,
        project=project,
        params=params,
        workspace=workspace,
        heartbeat_timeout_s=heartbeat_timeout_s,
        start=machine.start,
    )
