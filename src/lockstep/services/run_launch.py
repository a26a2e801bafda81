"""Starting runs: a submission is validated, recorded queued and handed to the engine; a
queued run that has no workflow (the engine was down, or the server stopped in between) is
started later by ``reconcile``. What a retry reuses of the run it retries is decided here, at
launch, so that a retry started late reuses the same steps.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.engine.events import Event
from lockstep.engine.states import RunStatus, StepStatus
from lockstep.engine.types import ReusedStep, RunPlan, SourceCheckout, Workspace
from lockstep.errors import EngineUnavailable, InvalidRequest, LockstepError
from lockstep.records import Cause, RunRecord, RunSelection
from lockstep.services import resources, run_selection
from lockstep.services.ids import new_run_id
from lockstep.services.run_selection import RunReuse
from lockstep.settings import Settings
from lockstep.storage import recorder
from lockstep.storage import runs as store
from lockstep.storage import secrets as secret_store
from lockstep.storage.blobs import BlobStore
from lockstep.storage.damage import CONVERSION_ERRORS
from lockstep.storage.database import Database
from lockstep.storage.logs import LogStore
from lockstep.storage.rows import RunRow

if TYPE_CHECKING:
    from temporalio.client import Client, WorkflowHandle

    from lockstep.engine.selection import Chosen
    from lockstep.spec.blueprint_fetch import ReadPublished
    from lockstep.spec.documents import Runnable
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
    #: a rerun's: the 'same' commit or the 'latest' of its ref (the cause names the run)
    rerun_policy: str | None = None
    #: ``sources:`` already locked (a rerun); None resolves the spec's refs now
    sources: list[SourceCheckout] | None = None
    #: the worker pool for steps that name none (an instance's placement)
    pool: str | None = None
    #: resource versions already fixed (a rerun's): alias -> {name, version}; None (or an
    #: alias it lacks) reads each resource's latest version now
    resources: dict[str, Any] | None = None


#: locks a spec's ``sources:`` to commits for a project (the registry does it)
SourceResolver: TypeAlias = "Callable[[str, list[SourceSpec]], Awaitable[list[SourceCheckout]]]"


class RunLauncher(RunReuse):
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
        super().__init__(db=db, logs=logs)
        self._settings = settings
        self._sources = sources
        self._client = client
        self._blobs = blobs
        #: runs whose workflow a submit of this process is starting: reconcile leaves them be
        self._launching: set[str] = set()
        #: a project's resolver of ``uses: DEF@SELECTOR`` (wired by the server: the versions)
        self.published: Callable[[str], ReadPublished] | None = None

    @property
    def engine(self) -> Client:
        if self._client is None:
            raise EngineUnavailable(
                "this needs the engine: start `lockstep server` (or set LOCKSTEP_URL)"
            )
        return self._client

    async def submit(
        self,
        *,
        project: str,
        spec_text: str,
        cause: Cause,
        file: str = "workflow.yaml",
        params: dict[str, Any] | None = None,
        snapshot: str | None = None,
        source: str = "",
        idempotency_key: str | None = None,
        reuse: dict[str, ReusedStep] | None = None,
        locked: Locked | None = None,
        no_cache: bool = False,
        selection: RunSelection | None = None,
    ) -> tuple[RunRecord, bool]:
        """Validate everything, record the run with its ``cause``, start its workflow. The one
        way a run is made: a person, a retry, a rerun and every trigger come through here,
        each saying why. ``selection``: run part of the graph (``--only``/``--from``). Returns
        (run, created)."""
        from lockstep.engine.plan import secret_names, step_order
        from lockstep.engine.selection import left_out
        from lockstep.spec.blueprint_fetch import load_published
        from lockstep.spec.documents import params_schema, runnable, spec_name
        from lockstep.spec.machine import LoadedMachine
        from lockstep.spec.params import check_params, resolve_params

        read = self.published(project) if self.published is not None else None
        limit = self._settings.max_spec_bytes
        loaded = runnable(await load_published(read, spec_text, file, max_bytes=limit))
        lock = locked or Locked()
        chosen: Chosen | None = None
        skipped: list[str] = []
        if selection is not None:
            if isinstance(loaded, LoadedMachine):
                raise InvalidRequest(
                    "--only/--from select steps of a workflow with 'steps:', not of a state machine"
                )
            chosen, selection, reuse = await self._select(
                project, loaded, selection, definition=lock.definition, reuse=reuse or {}
            )
            skipped = left_out(loaded.spec, chosen)
        if isinstance(loaded, LoadedMachine):
            # a state machine's params are its first step's input, checked by that contract
            resolved = dict(params or {})
            check_params(resolved, params_schema(loaded))
            wanted: list[str] = []
            specs: list[SourceSpec] = []
            order = [(name, False) for name in loaded.steps]
        else:
            resolved = resolve_params(params or {}, loaded.spec.params)
            wanted = secret_names(loaded.spec, skipped)
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
        sources = lock.sources
        if sources is None:
            sources = await self._lock_sources(project, specs)
        pins = await resources.pin_run(self._db, project, loaded, lock.resources)
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
            cause=cause,
            idempotency_key=idempotency_key,
            definition=lock.definition,
            version=lock.version,
            sha=lock.sha,
            instance=lock.instance,
            selector=lock.selector,
            rerun_policy=lock.rerun_policy,
            pool=lock.pool,
            no_cache=no_cache,
            selection=None if selection is None else selection.model_dump(mode="json"),
            resources=pins,
        )

        def _create(s: Session) -> tuple[str, bool]:
            row, created = store.create_run(s, new)
            if created and skipped:
                recorder.apply_events(s, row.id, run_selection.not_selected(skipped))
            return row.id, created

        stored_id, created = await self._db.call(_create)
        if created:
            self._launching.add(run_id)
            try:
                await self._start(
                    loaded,
                    run_id,
                    project,
                    resolved,
                    workspace,
                    reuse or {},
                    lock.pool,
                    no_cache,
                    chosen,
                    pins,
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
        loaded: Runnable,
        run_id: str,
        project: str,
        params: dict[str, Any],
        workspace: Workspace,
        reuse: dict[str, ReusedStep],
        pool: str | None,
        no_cache: bool = False,
        chosen: Chosen | None = None,
        pins: dict[str, Any] | None = None,
    ) -> None:
        from lockstep.engine.machine import MachineWorkflow
        from lockstep.engine.plan import compile_machine, compile_plan
        from lockstep.engine.selection import narrow
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
        plan = await resources.planned(self._db, project, plan, loaded, pins or {})
        if chosen is not None:
            plan = narrow(plan, chosen)
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

    def _handle(self, run_id: str) -> WorkflowHandle[Any, Any]:
        return self.engine.get_workflow_handle(run_id)

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
        from lockstep.spec.documents import load_workflow, runnable
        from lockstep.spec.load import LoadedSpec

        row = await self._db.call(lambda s: s.get(RunRow, run_id))
        if row is None or row.status != RunStatus.QUEUED:
            return False
        try:
            loaded = runnable(load_workflow(row.spec_text, "workflow.yaml"))
            reuse = await self._reuse_again(row.project_id, row.retry_of, loaded)
            chosen = None
            if row.selection_json is not None:
                assert isinstance(loaded, LoadedSpec)  # a state machine is never partial
                chosen, _, reuse = await self._select(
                    row.project_id,
                    loaded,
                    RunSelection.model_validate_json(row.selection_json),
                    definition=row.definition,
                    reuse=reuse,
                )
            await self._start(
                loaded,
                run_id,
                row.project_id,
                json.loads(row.params_json),
                Workspace.from_dict(json.loads(row.workspace_json)),
                reuse,
                row.pool,
                bool(row.no_cache),
                chosen,
                resources.pins_of(row.resources_json),
            )
        except EngineUnavailable:
            raise
        except (LockstepError, *CONVERSION_ERRORS) as exc:
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
            error = f"damaged record: the stored run no longer loads ({reason}); submit it again"
            await self._db.call(lambda s: _fail_unstarted(s, run_id, error))
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


def _fail_unstarted(s: Session, run_id: str, error: str) -> None:
    """Fail a queued run the engine never took, through the recorder like every change of
    run state: its pending steps end cancelled, the run failed with ``error``."""
    now = utcnow()
    events = [
        Event(kind="step_finished", at=now, step=step, status=StepStatus.CANCELLED)
        for step in store.pending_steps(s, run_id)
    ]
    recorder.apply_events(
        s,
        run_id,
        [*events, Event(kind="run_finished", at=now, status=RunStatus.FAILED, error=error)],
    )
