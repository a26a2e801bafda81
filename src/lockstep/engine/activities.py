"""Activities: the step activity served by workers, the recorder served by the server."""

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

from lockstep.clock import format_ts
from lockstep.engine.events import EventBatch
from lockstep.engine.interpreter import (
    CACHE_ACTIVITY,
    LOAD_ACTIVITY,
    RECORD_ACTIVITY,
    STEP_ACTIVITY,
    WAIT_ACTIVITY,
    WORKER_SHUTDOWN,
)
from lockstep.engine.leases import leased
from lockstep.engine.types import CacheHit, CacheQuery, OutputLoad, StepResult, StepTask
from lockstep.errors import ExecutionError, LockstepError
from lockstep.executors.container import ContainerRuntime
from lockstep.executors.http import execute_service_step
from lockstep.executors.shell import execute_step
from lockstep.executors.workspace import WorkspaceManager
from lockstep.outputs_by_reference import load, owned
from lockstep.secrets.masking import Masker, MaskingLogWriter
from lockstep.storage import cache
from lockstep.storage.blobs import BlobStore
from lockstep.storage.database import Database
from lockstep.storage.logs import LogSink, LogWriter
from lockstep.storage.recorder import apply_events

logger = logging.getLogger(__name__)


@activity.defn(name=WAIT_ACTIVITY)
async def wait_briefly(seconds: float) -> str:
    """A retry backoff shorter than Temporal's timer tick, slept on the interpreter's worker
    as a local activity; returns when it ended."""
    await asyncio.sleep(seconds)
    return format_ts()


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
        max_log_bytes: int | None = None,
        secrets: SecretResolver | None = None,
        containers: ContainerRuntime | None = None,
    ) -> None:
        self._containers = containers
        self.running = 0  # attempts in progress, for the worker's reports
        self._workspaces = workspaces
        self._logs = logs
        self._identity = identity
        self._kill_grace_s = kill_grace_s
        self._max_log_bytes = max_log_bytes
        self._secrets = secrets

    @activity.defn(name=STEP_ACTIVITY)
    async def run_step(self, task: StepTask) -> StepResult:
        self.running += 1
        try:
            return await self._run_step(task)
        finally:
            self.running -= 1

    async def _run_step(self, task: StepTask) -> StepResult:
        logs: LogSink = self._logs
        masker = Masker(())
        if task.secrets:
            try:
                values = await self._resolve(task)
            except LockstepError as exc:
                return StepResult(ok=False, error=str(exc), worker=self._identity)
            masker = Masker(values.values())
            # values exist only here and in the step's environment: never in the engine
            env = {**task.env, **{var: values[name] for var, name in task.secrets.items()}}
            task = replace(task, env=env)
            logs = _MaskedLogs(self._logs, masker)
        try:
            if task.executor in ("noop", "http"):
                return await execute_service_step(task, logs=logs, worker=self._identity)
            async with leased(self._identity) as lease:
                if lease.expired():  # the engine gave up on this attempt before it began
                    return StepResult(ok=False, error=lease.reason(), worker=self._identity)
                result = await execute_step(
                    task,
                    workspaces=self._workspaces,
                    logs=logs,
                    worker=self._identity,
                    # the worker's name rides on each heartbeat, so a lost attempt says where
                    heartbeat=lambda: activity.heartbeat(self._identity),
                    kill_grace_s=self._kill_grace_s,
                    max_log_bytes=self._max_log_bytes,
                    containers=self._containers,
                    lease=lease,
                )
                if lease.expired():  # whatever it did, this attempt is not the step's result
                    result = replace(result, ok=False, error=lease.reason(), outputs={})
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

    async def _resolve(self, task: StepTask) -> dict[str, str]:
        if self._secrets is None:
            raise ExecutionError(
                f"step '{task.step_id}' uses secrets but worker {self._identity} cannot read them"
            )
        return await self._secrets(task.project, sorted(set(task.secrets.values())), task.run_id)


class Recorder:
    """Writes the engine's state changes to the metadata DB; runs next to the DB."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    @activity.defn(name=RECORD_ACTIVITY)
    async def record(self, batch: EventBatch) -> None:
        await self._db.call(lambda s: apply_events(s, batch.run_id, batch.events))

    @activity.defn(name=CACHE_ACTIVITY)
    async def cache_lookup(self, query: CacheQuery) -> CacheHit | None:
        return await self._db.call(lambda s: cache.lookup(s, query.project, query.key, query.ttl_s))

    @activity.defn(name=LOAD_ACTIVITY)
    async def load_outputs(self, query: OutputLoad) -> dict[str, Any]:
        """Values stored by reference that an expression in the engine must read; a key
        that is not the project's own is not read (its marker stays data)."""
        return {
            key: await asyncio.to_thread(load, self._blobs, key, query.project)
            for key in query.keys
            if owned(key, query.project)
        }
