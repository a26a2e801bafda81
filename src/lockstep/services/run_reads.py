"""Reading runs: records, pages of runs and of a fan-out's items, one output, artifacts and
log lines (paged by ``run_logs``). Nothing here imports the engine: a CLI that only reads
records never pays for Temporal (tests/acceptance/test_light_reads.py)."""

from __future__ import annotations

import asyncio
import builtins
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lockstep.engine.states import RUN_FINISHED, StepStatus
from lockstep.engine.types import ArtifactRef
from lockstep.errors import NotFound
from lockstep.records import (
    ChildRun,
    DecisionRecord,
    RunFilter,
    RunPage,
    RunRecord,
    RunSummary,
    StepRecord,
)
from lockstep.services.failures import with_stderr_tails
from lockstep.services.run_logs import read_logs
from lockstep.storage import approvals as approval_store
from lockstep.storage import artifacts as artifact_store
from lockstep.storage import run_children
from lockstep.storage import run_records as records
from lockstep.storage import runs as store
from lockstep.storage.database import Database
from lockstep.storage.logs import LogStore
from lockstep.storage.rows import RunRow, StepRow


class RunReads:
    def __init__(self, *, db: Database, logs: LogStore) -> None:
        self._db = db
        self._logs = logs

    async def resolve_id(self, project: str, ref: str) -> str:
        """The whole id of the project's run named by its id or a unique prefix of it."""
        return await self._db.call(lambda s: store.resolve_id(s, project, ref))

    async def exists(self, run_id: str, *, project: str | None = None) -> bool:
        """Whether the run exists (in ``project``, when given)."""

        def check(s: Session) -> bool:
            row = s.get(RunRow, run_id)
            return row is not None and project in (None, row.project_id)

        return await self._db.call(check)

    async def unfinished_since(self, since: str) -> int:
        """How many runs created at or after ``since`` have not finished yet."""
        query = (
            select(func.count())
            .select_from(RunRow)
            .where(RunRow.created_at >= since, RunRow.status.not_in(RUN_FINISHED))
        )
        return await self._db.call(lambda s: s.scalar(query) or 0)

    async def get(self, project: str, run_id: str) -> RunRecord:
        """The run as shown to users: its failed steps carry the tail of their stderr."""
        run = await self._record(project, run_id)
        if any(st.status == StepStatus.FAILED for st in run.steps.values()):
            run = await asyncio.to_thread(with_stderr_tails, run, self._logs)
        found = await self._db.call(lambda s: run_children.children(s, project, run_id))
        if found:
            kids = [
                ChildRun(step=c.step, run_id=c.run_id, workflow=c.workflow, status=c.status)
                for c in found
            ]
            run = run.model_copy(update={"children": kids})
        return await self._with_decisions(run)

    async def _with_decisions(self, run: RunRecord) -> RunRecord:
        """``run`` with each approval step's decisions (who, verdict, when, comment, input)."""
        made = await self._db.call(lambda s: approval_store.decisions_of(s, run.id))
        if not made:
            return run
        steps = {
            sid: step.model_copy(
                update={"decisions": [DecisionRecord.model_validate(d) for d in made[sid]]}
            )
            if sid in made
            else step
            for sid, step in run.steps.items()
        }
        return run.model_copy(update={"steps": steps})

    async def _record(self, project: str, run_id: str) -> RunRecord:
        return await self._db.call(
            lambda s: records.to_record(s, store.get_row(s, project, run_id))
        )

    async def graph(self, project: str, run_id: str) -> dict[str, Any]:
        """The run's graph as recorded (``run_graph.graph_of``)."""
        from lockstep.services.run_graph import graph_of

        text = await self._db.call(lambda s: store.get_row(s, project, run_id).spec_text)
        return await asyncio.to_thread(graph_of, text)

    async def output(self, project: str, run_id: str, step: str | None, name: str) -> Any:
        """One output of the run, or of one of its steps (a marker when stored by reference)."""
        run = await self._record(project, run_id)
        outputs: dict[str, Any] | builtins.list[Any] | None = run.outputs
        where = f"run {run_id}"
        if step is not None:
            record = run.steps.get(step) or (await self._item(project, run_id, step))[step]
            outputs, where = record.outputs, f"step '{step}' of run {run_id}"
        if not isinstance(outputs, dict) or name not in outputs:
            raise NotFound(f"{where} has no output '{name[:100]}'")
        return outputs[name]

    async def _item(self, project: str, run_id: str, step: str) -> dict[str, StepRecord]:
        """``{step: record}`` of a fan-out item ``STEP[i]``, or NotFound."""
        parent, _, index = step.partition("[")
        if index[:-1].isdigit() and index.endswith("]"):
            page = await self.items(
                project, run_id, parent, status=None, offset=int(index[:-1]), limit=1
            )
            if page and page[0].index == int(index[:-1]):
                return {step: page[0]}
        raise NotFound(f"step '{step}' not found in run {run_id}")

    async def items(
        self, project: str, run_id: str, step: str, *, status: str | None, offset: int, limit: int
    ) -> builtins.list[StepRecord]:
        """A page of a for_each step's items."""

        def page(s: Session) -> builtins.list[StepRecord]:
            row = store.get_row(s, project, run_id)
            if s.get(StepRow, (run_id, step)) is None:
                raise NotFound(f"run '{run_id}' has no step '{step}'")
            return records.list_items(s, row, step, status=status, offset=offset, limit=limit)

        return await self._db.call(page)

    async def list(
        self, project: str, where: RunFilter, *, limit: int = 50, cursor: str | None = None
    ) -> RunPage:
        """A page of the project's runs, newest first, of those that match ``where``."""
        return await self._db.call(
            lambda s: store.list_runs(s, project, limit=limit, cursor=cursor, where=where)
        )

    async def changed(
        self, project: str, where: RunFilter, after: tuple[str, str], limit: int
    ) -> builtins.list[tuple[str, RunSummary]]:
        """The project's runs matching ``where`` whose row changed after ``after`` (a change
        time and a run id), in change order, each with its change time."""

        def read(s: Session) -> builtins.list[tuple[str, RunSummary]]:
            rows = store.changed_runs(s, project, where, after, limit)
            return [(at, records.summary(row)) for at, row in rows]

        return await self._db.call(read)

    async def artifacts(self, project: str, run_id: str) -> builtins.list[ArtifactRef]:
        """What the run's steps stored, in step then name order."""
        return await self._db.call(lambda s: artifact_store.artifacts(s, project, run_id))

    async def artifact(self, project: str, run_id: str, step: str, name: str) -> ArtifactRef:
        return await self._db.call(
            lambda s: artifact_store.artifact(s, project, run_id, step, name)
        )

    async def logs(
        self,
        project: str,
        run_id: str,
        *,
        step: str | None = None,
        cursor: str | None = None,
        limit: int = 1000,
        line_cursors: bool = False,
    ) -> dict[str, Any]:
        """Log lines of a run (or one step, or one item ``STEP[i]``) after ``cursor``: steps in
        order, a fan-out's items after it (``step`` is ``STEP[i]``), then attempts.
        ``line_cursors``: each line also says where to resume right after it."""

        async def items(sid: str, offset: int, limit: int) -> builtins.list[StepRecord]:
            return await self.items(project, run_id, sid, status=None, offset=offset, limit=limit)

        async def item(sid: str) -> dict[str, StepRecord]:
            return await self._item(project, run_id, sid)

        return await read_logs(
            self._logs,
            await self._record(project, run_id),
            items,
            item,
            step=step,
            cursor=cursor,
            limit=limit,
            line_cursors=line_cursors,
        )
