"""The step activity a worker serves: one step attempt, through the executor registry.

The worker resolves the attempt's secrets (values never enter the engine), masks them in its
log and result, holds the attempt's lease while a workspace executor runs, and tells a
shutdown of its own from the user's cancel.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lockstep import tracing
from lockstep.engine.interpreter import STEP_ACTIVITY, WORKER_SHUTDOWN
from lockstep.engine.types import StepResult, StepTask
from lockstep.errors import ExecutionError, LockstepError
from lockstep.executors.attempt import run_attempt
from lockstep.executors.base import Executor, WorkerTools
from lockstep.executors.container_runtime import ContainerRuntime
from lockstep.executors.registry import executor_for
from lockstep.executors.spawner import Spawner
from lockstep.executors.workspace import WorkspaceManager
from lockstep.net import OutboundPolicy
from lockstep.secrets.masking import Masker, MaskingLogWriter
from lockstep.storage.logs import LogSink, LogWriter
from lockstep.worker.leases import leased

logger = logging.getLogger(__name__)


def worker_identity(pool: str) -> str:
    return f"{socket.gethostname()}/{pool}/{os.getpid()}"


#: (project, secret names, run id) -> values; the run id lets a remote server check that the
#: run asking really uses those secrets
SecretResolver = Callable[[str, list[str], str], Awaitable[dict[str, str]]]


class _MaskedLogs:
    """A log store whose writers mask the attempt's secrets before anything is stored."""

    def __init__(self, inner: LogSink, masker: Masker) -> None:
        self._inner = inner
        self._masker = masker

    def writer(self, key: str) -> LogWriter:
        return MaskingLogWriter(self._inner.writer(key), self._masker)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class StepActivities:
    """Executes step attempts. Stateless apart from its workspace cache; no DB access."""

    def __init__(
        self,
        *,
        workspaces: WorkspaceManager,
        logs: LogSink,
        identity: str,
        kill_grace_s: float,
        pool: str = "",
        max_log_bytes: int | None = None,
        secrets: SecretResolver | None = None,
        containers: ContainerRuntime | None = None,
        outbound: OutboundPolicy | None = None,
        spawner: Spawner = "zygote",
    ) -> None:
        self.running = 0  # attempts in progress, for the worker's reports
        self._tools = WorkerTools(
            worker=identity,
            logs=logs,
            workspaces=workspaces,
            kill_grace_s=kill_grace_s,
            max_log_bytes=max_log_bytes,
            containers=containers,
            outbound=outbound or OutboundPolicy(),
            spawner=spawner,
        )
        self._identity = identity
        self._pool = pool
        self._secrets = secrets

    @activity.defn(name=STEP_ACTIVITY)
    async def run_step(self, task: StepTask) -> StepResult:
        self.running += 1
        try:
            return await self._run_step(task)
        finally:
            self.running -= 1

    async def _run_step(self, task: StepTask) -> StepResult:
        if tracing.ON:  # ids and names only: never an env value (a secret's) nor an input
            tracing.annotate(
                {
                    "lockstep.run_id": task.run_id,
                    "lockstep.project": task.project,
                    "lockstep.step": task.step_id,
                    "lockstep.attempt": task.attempt,
                    "lockstep.pool": self._pool,
                }
            )
        tools = self._tools
        masker = Masker(())
        try:
            executor = executor_for(task)
            if task.secrets:
                values = await self._resolve(task)
                masker = Masker(values.values())
                # values exist only here and in the step's environment: never in the engine
                env = {**task.env, **{var: values[name] for var, name in task.secrets.items()}}
                task = replace(task, env=env)
                tools = replace(tools, logs=_MaskedLogs(tools.logs, masker))
        except LockstepError as exc:
            return StepResult(ok=False, error=str(exc), worker=self._identity)
        try:
            if executor.needs_workspace:
                result = await self._leased(task, executor, tools)
            else:
                result = await run_attempt(task, executor, tools)
            if masker:
                result = replace(
                    result,
                    outputs=masker.mask_value(result.outputs),
                    error=masker.mask(result.error) if result.error else result.error,
                )
            return result
        except asyncio.CancelledError:
            if activity.is_worker_shutdown():
                # not the user's cancel: the engine reschedules this attempt elsewhere
                raise ApplicationError("worker shut down", type=WORKER_SHUTDOWN) from None
            raise

    async def _leased(self, task: StepTask, executor: Executor, tools: WorkerTools) -> StepResult:
        """Run the attempt while its lease holds: a workspace executor's step may run for
        hours, and must stop once the engine gave up on it."""
        async with leased(self._identity) as lease:
            if lease.expired():  # the engine gave up on this attempt before it began
                return StepResult(ok=False, error=lease.reason(), worker=self._identity)
            result = await run_attempt(
                task,
                executor,
                tools,
                # the worker's name rides on each heartbeat, so a lost attempt says where
                heartbeat=lambda: activity.heartbeat(self._identity),
                lease=lease,
            )
            if lease.expired():  # whatever it did, this attempt is not the step's result
                result = replace(result, ok=False, error=lease.reason(), outputs={})
            return result

    async def _resolve(self, task: StepTask) -> dict[str, str]:
        if self._secrets is None:
            raise ExecutionError(
                f"step '{task.step_id}' uses secrets but worker {self._identity} cannot read them"
            )
        return await self._secrets(task.project, sorted(set(task.secrets.values())), task.run_id)
