"""Submitting, inspecting, cancelling and retrying runs."""

from __future__ import annotations

import asyncio
import builtins
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy.orm import Session

from lockstep.engine.types import ArtifactRef, ReusedStep, RunPlan, SourceCheckout, Workspace
from lockstep.errors import Conflict, EngineUnavailable, InvalidRequest, LockstepError, NotFound
from lockstep.records import RunPage, RunRecord, StepRecord
from lockstep.services.failures import with_stderr_tails
from lockstep.services.ids import new_run_id
from lockstep.services.run_logs import read_logs
from lockstep.settings import Settings
from lockstep.storage import artifacts as artifact_store
from lockstep.storage import run_records as records
from lockstep.storage import runs as store
from lockstep.storage import secrets as secret_store
from lockstep.storage.blobs import BlobStore
from lockstep.storage.damage import CONVERSION_ERRORS
from lockstep.storage.database import Database
from lockstep.storage.logs import LogStore
from lockstep.storage.rows import RunRow, StepRow

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from lockstep.spec.documents import Loaded
    from lockstep.spec.models import SourceSpec

# Temporal's client, the workflows and the spec package are imported by the methods that
# submit or control runs: a CLI that only reads records never pays for them
# (tests/acceptance/test_light_reads.py).

log = logging.getLogger(__name__)

#: how long one call to the engine may take before the engine counts as down (a stopped
#: engine never answers); the client retries a refused connection within it
ENGINE_CALL_TIMEOUT = timedelta(seconds=10)
#: errors that say the engine is down or slow, not that it refused the run (the names of
#: temporalio's RPCStatusCode, which a read must not import)
_TRANSIENT = frozenset(
    {"UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "RESOURCE_EXHAUSTED", "UNKNOWN"}
)


class EngineDown(EngineUnavailable):
    """The engine did not answer; a queued run waits for it (the reconcile loop starts it)."""


@dataclass(frozen=True)
class Locked:
    """What a run of a git-backed definition is locked to, resolved once at creation."""

    repo: str | None = None
    sha: str | None = None
    definition: str | None = None
    version: int | None = None
    instance: str | None = None
    selector: str | None = None
    rerun_of: str | None = None
    rerun_policy: str | None = None
    #: ``sources:`` already locked (a rerun); None resolves the spec's refs now
    sources: list[SourceCheckout] | None = None
    #: the worker pool for steps that name none (an instance's placement)
    pool: str | None = None


#: locks a spec's ``sources:`` to commits for a project (the registry does it)
SourceResolver: TypeAlias = "Callable[[str, list[SourceSpec]], Awaitable[list[SourceCheckout]]]"


class RunService:
    def __init__(
        self,
        *,
        settings: Settings,
        db: Database,
        client: Client | None,
        blobs: BlobStore,
        logs: LogStore,
        sources: SourceResolver | None = None,
    ) -> None:
        self._settings = settings
        self._sources = sources
        self._db = db
        self._client = client
        self._blobs = blobs
        self._logs = logs
        #: runs whose workflow a submit of this process is starting: reconcile leaves them be
        self._launching: set[str] = set()

    @property
    def log_store(self) -> LogStore:
        return self._logs

    @property
    def engine(self) -> Client:
        if self._client is None:
            raise EngineUnavailable(
                "this needs the engine: start `lockstep server` (or set LOCKSTEP_URL)"
            )
        return self._client

    # -- submit ----------------------------------------------------------------------------

    async def submit(
        self,
        *,
        project: str,
        spec_text: str,
        file: str = "workflow.yaml",
        params: dict[str, Any] | None = None,
        snapshot: str | None = None,
        source: str = "",
        idempotency_key: str | None = None,
        triggered_by: str = "",
        retry_of: str | None = None,
        reuse: dict[str, ReusedStep] | None = None,
        locked: Locked | None = None,
        no_cache: bool = False,
    ) -> tuple[RunRecord, bool]:
        """Validate everything, record the run, start its workflow. Returns (run, created)."""
        from lockstep.engine.plan import secret_names, step_order
        from lockstep.spec.documents import load_workflow, params_schema, spec_name
        from lockstep.spec.machine import LoadedMachine
        from lockstep.spec.params import check_params, resolve_params

        loaded = load_workflow(spec_text, file, max_bytes=self._settings.max_spec_bytes)
        if isinstance(loaded, LoadedMachine):
            # a state machine's params are its first step's input, checked by that contract
            resolved = dict(params or {})
            check_params(resolved, params_schema(loaded))
            wanted: list[str] = []
            specs: list[SourceSpec] = []
            order = [(name, False) for name in loaded.steps]
        else:
            resolved = resolve_params(params or {}, loaded.spec.params)
            wanted = secret_names(loaded.spec)
            specs = list(loaded.spec.sources)
            order = step_order(loaded.spec)
        if wanted:
            absent = await self._db.call(lambda s: secret_store.missing(s, project, wanted))
            if absent:
                raise InvalidRequest(
                    f"missing secrets in project '{project}': {', '.join(absent)}; "
                    "set them with `lockstep secrets set NAME`"
                )
        if snapshot is not None and (
            not snapshot.startswith(f"snapshots/{project}/") or not self._blobs.exists(snapshot)
        ):
            raise InvalidRequest(f"snapshot '{snapshot}' not found; upload it first")
        lock = locked or Locked()
        sources = lock.sources
        if sources is None:
            sources = await self._lock_sources(project, specs)
        run_id = new_run_id()
        workspace = Workspace(snapshot=snapshot, repo=lock.repo, sha=lock.sha, sources=sources)
        new = store.NewRun(
            id=run_id,
            project=project,
            workflow=spec_name(loaded),
            spec_digest=loaded.digest,
            spec_text=loaded.text,
            source=source,
            workspace=asdict(workspace),
            params=resolved,
            steps=order,
            triggered_by=triggered_by,
            idempotency_key=idempotency_key,
            retry_of=retry_of,
            definition=lock.definition,
            version=lock.version,
            sha=lock.sha,
            instance=lock.instance,
            selector=lock.selector,
            rerun_of=lock.rerun_of,
            rerun_policy=lock.rerun_policy,
            pool=lock.pool,
            no_cache=no_cache,
        )

        def _create(s: Session) -> tuple[str, bool]:
            row, created = store.create_run(s, new)
            return row.id, created

        stored_id, created = await self._db.call(_create)
        if created:
            self._launching.add(run_id)
            try:
                await self._start(
                    loaded, run_id, project, resolved, workspace, reuse or {}, lock.pool, no_cache
                )
            except EngineDown as exc:
                # accepted all the same: the run stays queued until the engine is back
                log.warning("run.start_deferred", extra={"run_id": run_id, "reason": str(exc)})
            finally:
                self._launching.discard(run_id)
        return await self._record(project, stored_id), created

    async def _lock_sources(self, project: str, specs: list[SourceSpec]) -> list[SourceCheckout]:
        if not specs:
            return []
        if self._sources is None:
            raise EngineUnavailable("'sources:' needs the engine; start `lockstep server`")
        return await self._sources(project, specs)

    async def _start(
        self,
        loaded: Loaded,
        run_id: str,
        project: str,
        params: dict[str, Any],
        workspace: Workspace,
        reuse: dict[str, ReusedStep],
        pool: str | None,
        no_cache: bool = False,
    ) -> None:
        from lockstep.engine.machine import MachineWorkflow
        from lockstep.engine.plan import compile_machine, compile_plan
        from lockstep.engine.workflow import RunWorkflow
        from lockstep.spec.machine import LoadedMachine

        if isinstance(loaded, LoadedMachine):
            plan = compile_machine(
                loaded,
                run_id=run_id,
                project=project,
                params=params,
                workspace=workspace,
                heartbeat_timeout_s=self._settings.heartbeat_timeout,
                pool=pool or "default",
            )
            await self._launch(MachineWorkflow.run, plan, run_id)
            return
        plan = compile_plan(
            loaded,
            pool=pool,
            run_id=run_id,
            project=project,
            params=params,
            workspace=workspace,
            heartbeat_timeout_s=self._settings.heartbeat_timeout,
            reuse=reuse,
            sha=workspace.sha,
            no_cache=no_cache,
        )
        await self._launch(RunWorkflow.run, plan, run_id)

    async def _launch(self, entry: Any, plan: RunPlan, run_id: str) -> None:
        from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
        from temporalio.service import RPCError

        try:
            await self.engine.start_workflow(
                entry,
                plan,
                id=run_id,
                task_queue=self._settings.control_queue,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                rpc_timeout=ENGINE_CALL_TIMEOUT,
            )
        except RPCError as exc:
            # the run row stays queued; `reconcile` starts it when the engine is back
            kind = EngineDown if exc.status.name in _TRANSIENT else EngineUnavailable
            raise kind(f"cannot start run {run_id}: {exc.message}") from exc

    async def reconcile(self) -> int:
        """Start the workflow of every queued run that has none: a crash between the DB
        insert and the engine start, or a run accepted while the engine was down. The
        workflow id is the run id, so this is safe to repeat. A queued run whose record no
        longer loads is marked failed, saying so; the others go on. Returns how many started;
        raises EngineUnavailable when the engine cannot be reached."""
        from temporalio.service import RPCError, RPCStatusCode

        started = 0
        for run_id in await self._db.call(store.queued_run_ids):
            if run_id in self._launching:
                continue
            try:
                await self._handle(run_id).describe(rpc_timeout=ENGINE_CALL_TIMEOUT)
                continue
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise EngineUnavailable(f"cannot reach the engine: {exc.message}") from exc
            started += await self._start_queued(run_id)
        return started

    async def _start_queued(self, run_id: str) -> bool:
        from lockstep.spec.documents import load_workflow

        row = await self._db.call(lambda s: s.get(RunRow, run_id))
        if row is None or row.status != "queued":
            return False
        try:
            loaded = load_workflow(row.spec_text, "workflow.yaml")
            reuse = await self._reuse_again(row.project_id, row.retry_of, loaded)
            await self._start(
                loaded,
                run_id,
                row.project_id,
                json.loads(row.params_json),
                Workspace.from_dict(json.loads(row.workspace_json)),
                reuse,
                row.pool,
                bool(row.no_cache),
            )
        except EngineUnavailable:
            raise
        except (LockstepError, *CONVERSION_ERRORS) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            error = f"damaged record: the stored run no longer loads ({reason}); submit it again"
            await self._db.call(lambda s: store.mark_failed_to_start(s, run_id, error))
            log.warning("run.unloadable", extra={"run_id": run_id})
            return False
        return True

    async def reconcile_forever(self, every: float) -> None:
        """``reconcile`` now and every ``every`` seconds, whatever happens to the engine."""
        down = False
        while True:
            try:
                started = await self.reconcile()
                if started:
                    log.info("runs.reconciled", extra={"count": started})
                down = False
            except EngineUnavailable as exc:
                if not down:  # once an outage, not every round
                    log.warning("runs.reconcile_waiting", extra={"reason": str(exc)})
                down = True
            except Exception:
                log.exception("runs.reconcile_failed")
            await asyncio.sleep(every)

    # -- read ------------------------------------------------------------------------------

    async def resolve_id(self, project: str, ref: str) -> str:
        """The whole id of the project's run named by its id or a unique prefix of it."""
        return await self._db.call(lambda s: store.resolve_id(s, project, ref))

    async def get(self, project: str, run_id: str) -> RunRecord:
        """The run as shown to users: its failed steps carry the tail of their stderr."""
        run = await self._record(project, run_id)
        if any(st.status == "failed" for st in run.steps.values()):
            run = await asyncio.to_thread(with_stderr_tails, run, self._logs)
        return run

    async def _record(self, project: str, run_id: str) -> RunRecord:
        return await self._db.call(
            lambda s: records.to_record(s, store.get_row(s, project, run_id))
        )

    async def output(self, project: str, run_id: str, step: str | None, name: str) -> Any:
        """One output of the run, or of one of its steps (a marker when stored by reference)."""
        run = await self._record(project, run_id)
        outputs: dict[str, Any] | list[Any] | None = run.outputs
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
    ) -> list[StepRecord]:
        """A page of a for_each step's items."""

        def page(s: Session) -> list[StepRecord]:
            row = store.get_row(s, project, run_id)
            if s.get(StepRow, (run_id, step)) is None:
                raise NotFound(f"run '{run_id}' has no step '{step}'")
            return records.list_items(s, row, step, status=status, offset=offset, limit=limit)

        return await self._db.call(page)

    async def list(
        self,
        project: str,
        *,
        status: str | None = None,
        workflow: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        return await self._db.call(
            lambda s: store.list_runs(
                s, project, status=status, workflow=workflow, limit=limit, cursor=cursor
            )
        )

    # -- control ---------------------------------------------------------------------------

    def _handle(self, run_id: str) -> WorkflowHandle[Any, Any]:
        return self.engine.get_workflow_handle(run_id)

    async def cancel(self, project: str, run_id: str) -> RunRecord:
        from temporalio.service import RPCError

        run = await self._record(project, run_id)
        if run.status in ("succeeded", "failed", "cancelled"):
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
        if old.status not in ("failed", "cancelled"):
            raise Conflict(
                f"run {run_id} is {old.status}; only failed or cancelled runs can be retried"
            )
        row = await self._db.call(lambda s: store.get_row(s, project, run_id))
        reuse = await self._reuse(old, load_workflow(row.spec_text, "workflow.yaml"))
        return await self._again(old, row, triggered_by=triggered_by, reuse=reuse, retry_of=run_id)

    async def _reuse(self, old: RunRecord, loaded: Loaded) -> dict[str, ReusedStep]:
        """The steps of ``old`` a retry takes as they are: those that succeeded, with every
        step they need."""
        from lockstep.engine.plan import step_order
        from lockstep.spec.load import LoadedSpec
        from lockstep.spec.machine import LoadedMachine

        reuse: dict[str, ReusedStep] = {}
        # a state machine starts again from its first state: its steps may loop
        order = [] if isinstance(loaded, LoadedMachine) else step_order(loaded.spec)
        for step_id, _final in order:
            assert isinstance(loaded, LoadedSpec)
            if _final:
                continue  # cleanup steps always run again
            spec = loaded.spec.steps[step_id]
            rec = old.steps.get(step_id)
            ancestors_ok = all(n in reuse for n in spec.needs)
            if rec is not None and rec.status == "succeeded" and ancestors_ok:
                source = rec.reused_from or old.id
                stored = await self._stored_artifacts(old.project, source)
                reuse[step_id] = ReusedStep(
                    run_id=source,
                    outputs=rec.outputs or {},
                    artifacts=[a for a in stored if a.step == step_id],
                )
        return reuse

    async def _reuse_again(
        self, project: str, retry_of: str | None, loaded: Loaded
    ) -> dict[str, ReusedStep]:
        """What a queued retry started late reuses: the same as when it was submitted."""
        if retry_of is None:
            return {}
        try:
            old = await self._record(project, retry_of)
        except NotFound:
            return {}  # the run it retried is gone: run every step
        return await self._reuse(old, loaded)

    async def _stored_artifacts(self, project: str, run_id: str) -> builtins.list[ArtifactRef]:
        return await self._db.call(lambda s: artifact_store.artifacts(s, project, run_id))

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

    # -- logs ------------------------------------------------------------------------------

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
