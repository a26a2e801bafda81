"""``workflow:`` steps: an attempt starts the child run through the version service (so it is
a run of its own: record, logs, version and commit lock) with the parent run and step as its
cause, then follows it to its end; the child's run outputs are the step's outputs.

One child per try: the child's idempotency key is the parent run, step and how many of the
step's children ended without success, and an attempt that runs again after the control plane
was lost (its heartbeat stopped) adopts the child it started instead of starting a second
one. Cancelling the attempt (the parent run was cancelled) cancels the child. A child more
than ``child_max_depth`` parents deep is refused, so a cycle through definitions (A runs B
runs A) ends with a clear error. ``workflow: ./kid.yaml`` names the definition of that file in
the parent run's repository, run at the parent's commit; it is resolved when the step starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from sqlalchemy.orm import Session
from temporalio import activity
from temporalio.exceptions import ApplicationError

from lockstep.clock import format_ts
from lockstep.engine.interpreter import CHILD_ACTIVITY, WORKER_SHUTDOWN
from lockstep.engine.states import RUN_FINISHED, RunStatus
from lockstep.engine.types import StepResult, StepTask
from lockstep.errors import InvalidRequest, LockstepError, NotFound, Unavailable
from lockstep.records import Cause, CauseKind, RunRecord
from lockstep.services.runs import RunService
from lockstep.services.versions import VersionService
from lockstep.spec.blueprint_files import PATH_PREFIXES, resolve_path
from lockstep.storage import registry, run_children
from lockstep.storage import runs as store
from lockstep.storage.database import Database
from lockstep.storage.logs import DirectoryLogStore
from lockstep.storage.rows import RunRow

log = logging.getLogger(__name__)

#: how a child run ended: its status, error and outputs
Ended = tuple[str, str | None, dict[str, Any]]

#: how often the attempt looks at its child, at first and at most (seconds)
_POLL_FIRST, _POLL_MOST = 0.25, 2.0


class ChildRuns:
    def __init__(
        self,
        db: Database,
        runs: RunService,
        versions: VersionService,
        logs: DirectoryLogStore,
        max_depth: int,
    ) -> None:
        self._db = db
        self._runs = runs
        self._versions = versions
        self._logs = logs
        self._max_depth = max_depth

    @activity.defn(name=CHILD_ACTIVITY)
    async def run_child(self, task: StepTask) -> StepResult:
        started = format_ts()
        try:
            child = await self._adopt_or_start(task)
        except Unavailable as exc:  # the engine or database is away: the attempt runs again
            raise ApplicationError(str(exc), type=WORKER_SHUTDOWN) from exc
        except LockstepError as exc:
            self._say(task, f"no child run: {exc}")
            return StepResult(ok=False, error=str(exc), started_at=started, finished_at=format_ts())
        self._say(task, f"child run {child.id}: {child.definition}@{child.version}")
        try:
            status, error, outputs = await self._follow(task, child.id)
        except asyncio.CancelledError:
            with contextlib.suppress(LockstepError):
                await self._runs.cancel(task.project, child.id)
            self._say(task, f"child run {child.id} cancelled with its parent")
            raise
        self._say(task, f"child run {child.id} {status}")
        ok = status == RunStatus.SUCCEEDED
        # the child's own error, shortened: a chain of children does not nest them all
        said = (error or "").strip().splitlines()[0][:300] if error else ""
        why = None if ok else f"child run {child.id} {status}" + (f": {said}" if said else "")
        if ok and task.outputs_schema:  # the step's contract holds for what the child gave
            from lockstep.spec.contracts import OutputError, check_contract

            try:
                check_contract(outputs, task.outputs_schema, step=task.step_id, what="output")
            except OutputError as exc:
                ok, why = False, f"child run {child.id}: {exc}"
        return StepResult(
            ok=ok,
            error=why,
            outputs=outputs if ok else {},
            worker="control plane",
            started_at=started,
            finished_at=format_ts(),
        )

    async def _adopt_or_start(self, task: StepTask) -> RunRecord:
        """The child this attempt started before it was lost, else a new one."""
        project, parent, step = task.project, task.run_id, task.step_id
        earlier = await self._db.call(lambda s: run_children.of_step(s, project, parent, step))
        if earlier and _adoptable(earlier[0], task.attempt):
            return await self._runs.get(project, earlier[0].id)
        depth = await self._db.call(lambda s: run_children.depth(s, project, parent))
        if depth + 1 > self._max_depth:
            raise InvalidRequest(
                f"step '{step}' would start a child run {depth + 1} runs deep, more than "
                f"{self._max_depth} (LOCKSTEP_CHILD_MAX_DEPTH): do its workflows run each "
                "other in a cycle?"
            )
        cause = Cause(
            kind=CauseKind.PARENT, parent_run=parent, parent_step=step, parent_attempt=task.attempt
        )
        selector = str(task.config["selector"])
        if selector.startswith(PATH_PREFIXES):
            selector = await self._db.call(lambda s: _at_parent_commit(s, task, selector))
        # keyed by the children that ended without success, not by the attempt: an attempt the
        # engine gave up on while its child was being created (slow, on a loaded host) and the
        # attempt after it both count none, so the second gets the first's child, never a twin
        failed = sum(c.status in RUN_FINISHED and c.status != RunStatus.SUCCEEDED for c in earlier)
        child, _ = await self._versions.run(
            project,
            selector,
            params=dict(task.input or {}),
            cause=cause,
            idempotency_key=f"child:{parent}:{step}:{failed}",
        )
        return child

    async def _follow(self, task: StepTask, child_id: str) -> Ended:
        """Wait for the child's end (heartbeating); its status, error and outputs."""
        every = _POLL_FIRST
        while True:
            activity.heartbeat(child_id)
            row = await self._db.call(lambda s: _finished(s, task.project, child_id))
            if row is not None:
                return row
            await asyncio.sleep(every)
            every = min(every * 2, _POLL_MOST)

    def _say(self, task: StepTask, line: str) -> None:
        """One line in the step's log (what the parent's `runs logs` shows)."""
        try:
            with self._logs.writer(task.log_key) as writer:
                writer.write("sys", line)
        except OSError as exc:
            log.warning("child.log_failed", extra={"run_id": task.run_id, "error": str(exc)})


def _adoptable(child: RunRow, attempt: int) -> bool:
    """Whether the attempt ``attempt`` takes ``child`` as its own: the child it started, one
    still running (an attempt lost with its control plane), or one that succeeded."""
    if child.status not in RUN_FINISHED or child.status == RunStatus.SUCCEEDED:
        return True
    try:
        cause = json.loads(child.cause_json or "{}")
    except ValueError:
        return False
    return bool(cause.get("parent_attempt") == attempt)


def _at_parent_commit(s: Session, task: StepTask, path: str) -> str:
    """``workflow: ./kid.yaml``: the definition whose file that is, in the parent run's
    repository (relative to the parent's file), at the parent's commit: ``kid@<sha>``."""
    parent = store.get_row(s, task.project, task.run_id)
    found = (
        registry.definition_row(s, task.project, parent.definition, archived=True)
        if parent.definition and parent.sha
        else None
    )
    if found is None or found.repository_id is None:
        raise InvalidRequest(
            f"step '{task.step_id}' runs '{path}', a file of the run's repository, but run "
            f"{task.run_id} has no repository (it was not run from a git definition); use "
            "workflow: DEF@SELECTOR"
        )
    try:
        target = resolve_path(found.path, path)
    except ValueError as err:
        raise InvalidRequest(f"step '{task.step_id}': {err}") from None
    child = registry.definition_at_path(s, found.repository_id, target)
    if child is None:
        raise NotFound(
            f"step '{task.step_id}' runs '{path}', but no scanned workflow of the repository "
            f"is at {target}; check the path (relative to {found.path})"
        )
    return f"{child.name}@{parent.sha}"


def _finished(s: Session, project: str, run_id: str) -> Ended | None:
    row = store.get_row(s, project, run_id)
    if row.status not in RUN_FINISHED:
        return None
    try:
        outputs = json.loads(row.outputs_json) if row.outputs_json else {}
    except ValueError:
        outputs = {}
    return row.status, row.error, outputs if isinstance(outputs, dict) else {}
