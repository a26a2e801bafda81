"""Runs: submitted and started (``run_launch``), read (``run_reads``), and here cancelled,
retried and rerun. ``RunService`` is the one object the API and other services call for runs.
The engine is the only writer of a run's state: nothing here changes it but through the
engine, or, for a run the engine never took, through the recorder."""

from __future__ import annotations

import json

from lockstep.engine.states import RUN_FINISHED, RunStatus
from lockstep.engine.types import ReusedStep, Workspace
from lockstep.errors import Conflict, EngineUnavailable, InvalidRequest
from lockstep.records import Cause, CauseKind, RunRecord
from lockstep.services import resources
from lockstep.services.run_launch import Locked, RunLauncher
from lockstep.storage import runs as store
from lockstep.storage.rows import RunRow


class RunService(RunLauncher):
    async def cancel(self, project: str, run_id: str) -> RunRecord:
        from temporalio.service import RPCError

        run = await self._record(project, run_id)
        if run.status in RUN_FINISHED:
            raise Conflict(
                f"run {run_id} already {run.status}; only a running run can be cancelled"
            )
        try:
            await self._handle(run_id).cancel()
        except RPCError as exc:
            raise EngineUnavailable(f"cannot cancel run {run_id}: {exc.message}") from exc
        return await self._record(project, run_id)

    async def retry(self, project: str, run_id: str, *, user: str | None = None) -> RunRecord:
        """A new run of the same spec, params and workspace that reuses the steps that
        succeeded and re-executes the failed/cancelled ones and everything downstream; its
        cause is a retry of ``run_id`` asked for by ``user``."""
        from lockstep.spec.documents import load_workflow, runnable

        old = await self._record(project, run_id)
        if old.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
            raise Conflict(
                f"run {run_id} is {old.status}; only failed or cancelled runs can be retried"
            )
        row = await self._db.call(lambda s: store.get_row(s, project, run_id))
        reuse = await self._reuse(old, runnable(load_workflow(row.spec_text, "workflow.yaml")))
        cause = Cause.repeat(CauseKind.RETRY, run_id, user)
        return await self._again(old, row, cause=cause, reuse=reuse)

    async def rerun(
        self, project: str, run_id: str, *, user: str | None = None, latest: bool = False
    ) -> RunRecord:
        """A new run of exactly what ``run_id`` ran: the same spec (version), commit,
        workspace, params and resource versions, even if its branch has moved or its
        resources have newer versions since (``latest``: their newest versions, the rest the
        same); its cause is a rerun of ``run_id`` asked for by ``user``."""
        old = await self._record(project, run_id)
        row = await self._db.call(lambda s: store.get_row(s, project, run_id))
        if latest and not row.resources_json:
            raise InvalidRequest(
                f"run {run_id} came from no instance and read no resources; `--latest` needs one"
            )
        cause = Cause.repeat(CauseKind.RERUN, run_id, user)
        return await self._again(old, row, cause=cause, latest_resources=latest)

    async def _again(
        self,
        old: RunRecord,
        row: RunRow,
        *,
        cause: Cause,
        reuse: dict[str, ReusedStep] | None = None,
        latest_resources: bool = False,
    ) -> RunRecord:
        """Submit ``old``'s spec, params and workspace again, locked to the same commit and
        resource versions (``latest_resources``: their newest), and the same part of its
        graph if it ran part of it."""
        workspace = json.loads(row.workspace_json)
        record, _ = await self.submit(
            project=old.project,
            spec_text=row.spec_text,
            params=old.params,
            snapshot=workspace.get("snapshot"),
            source=row.source,
            cause=cause,
            reuse=reuse,
            selection=old.selection,
            locked=Locked(
                repo=workspace.get("repo"),
                sha=old.sha,
                definition=old.definition,
                version=old.version,
                instance=old.instance,
                selector=old.selector,
                rerun_policy="same" if cause.kind == CauseKind.RERUN else None,
                sources=Workspace.from_dict(workspace).sources,
                pool=old.pool,
                resources=None if latest_resources else resources.pins_of(row.resources_json),
            ),
        )
        return record
