"""Activities: the step activity served by workers, the recorder served by the server."""

from __future__ import annotations

import asyncio
import os
import socket

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lockstep.engine.events import EventBatch
from lockstep.engine.types import StepResult, StepTask
from lockstep.engine.workflow import RECORD_ACTIVITY, STEP_ACTIVITY, WORKER_SHUTDOWN
from lockstep.executors.shell import execute_step
from lockstep.executors.workspace import WorkspaceManager
from lockstep.storage.database import Database
from lockstep.storage.logs import LogStore
from lockstep.storage.runs import apply_events


def worker_identity(pool: str) -> str:
    return f"{socket.gethostname()}/{pool}/{os.getpid()}"


class StepActivities:
    """Executes step attempts. Stateless apart from its workspace cache; no DB access."""

    def __init__(
        self,
        *,
        workspaces: WorkspaceManager,
        logs: LogStore,
        identity: str,
        kill_grace_s: float,
        max_log_bytes: int | None = None,
    ) -> None:
        self._workspaces = workspaces
        self._logs = logs
        self._identity = identity
        self._kill_grace_s = kill_grace_s
        self._max_log_bytes = max_log_bytes

    @activity.defn(name=STEP_ACTIVITY)
    async def run_step(self, task: StepTask) -> StepResult:
        try:
            return await execute_step(
                task,
                workspaces=self._workspaces,
                logs=self._logs,
                worker=self._identity,
                # the worker's name rides on each heartbeat, so a lost attempt still says where
                heartbeat=lambda: activity.heartbeat(self._identity),
                kill_grace_s=self._kill_grace_s,
                max_log_bytes=self._max_log_bytes,
            )
        except asyncio.CancelledError:
            if activity.is_worker_shutdown():
                # not the user's cancel: the engine reschedules this attempt elsewhere
                raise ApplicationError("worker shut down", type=WORKER_SHUTDOWN) from None
            raise


class Recorder:
    """Writes the engine's state changes to the metadata DB; runs next to the DB."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @activity.defn(name=RECORD_ACTIVITY)
    async def record(self, batch: EventBatch) -> None:
        await self._db.call(lambda s: apply_events(s, batch.run_id, batch.events))
