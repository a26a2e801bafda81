"""Runs: submitted and started (``run_launch``), read (``run_reads``), and here cancelled,
retried and rerun. ``RunService`` is the one object the API and other services call for runs.
The engine is the only writer of a run's state: nothing here changes it but through the
engine, or, for a run the engine never took, through the recorder."""

from __future__ import annotations

import json

from lockstep.engine.states import RUN_FINISHED, RunStatus
from lockstep.engine.types import ReusedStep, Workspace
from lockstep.errors import Conflict, EngineUnavailable
from lockstep.records import RunRecord
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

    async def retry(self, project: str, run_id: str, *, triggered_by: str = "") -> RunRecord:
        """A new run of the same spec, params and workspace that reuses the steps that
        succeeded and re-executes the failed/cancelled ones and everything downstream."""
        from lockstep.spec.documents import load_workflow

        old = await self._record(project, run_id)
        if old.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
            raise Conflict(
                f"run {run_id} is {old.status}; only failed or cancelled runs can be retried"
            )
        row = await self._db.call(lambda s: store.get_row(s, project, run_id))
        reuse = await self._reuse(old, load_workflow(row.spec_text, "workflow.yaml"))
        return await self._again(old, row, triggered_by=triggered_by, reuse=reuse, retry_of=run_id)

    async def rerun(self, project: str, run_id: str, *, triggered_by: str = "") -> RunRecord:
        """A new run of exactly what ``run_id`` ran: the same spec (version), commit,
        workspace and params, even if its branch has moved since."""
        old = await self._record(project, run_id)
        row = await self._db.call(lambda s: store.get_row(s, project, run_id))
        return await self._again(old, row, triggered_by=triggered_by, rerun_of=run_id)

    async def _again(
        self,
        old: RunRecord,
        row: RunRow,
        *,
        triggered_by: str,
        reuse: dict[str, ReusedStep] | None = None,
        retry_of: str | None = None,
        rerun_of: str | None = None,
    ) -> RunRecord:
        """Submit ``old``'s spec, params and workspace again, locked to the same commit."""
        workspace = json.loads(row.workspace_json)
        record, _ = await self.submit(
            project=old.project,
            spec_text=row.spec_text,
            params=old.params,
            snapshot=workspace.get("snapshot"),
            source=row.source,
            triggered_by=triggered_by,
            retry_of=retry_of,
            reuse=reuse,
            locked=Locked(
                repo=workspace.get("repo"),
                sha=old.sha,
                definition=old.definition,
                version=old.version,
                instance=old.instance,
                selector=old.selector,
                rerun_of=rerun_of,
                rerun_policy="same" if rerun_of else None,
                sources=Workspace.from_dict(workspace).sources,
                pool=old.pool,
            ),
        )
        return record
