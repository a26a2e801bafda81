"""Temporal workers: the control worker (interpreter + recorder) and pool workers (steps)."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import socket
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from temporalio.client import Client
from temporalio.worker import (
    PollerBehaviorSimpleMaximum,
    UnsandboxedWorkflowRunner,
    Worker,
    WorkflowRunner,
)
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

from lockstep import __version__
from lockstep.clock import utcnow
from lockstep.engine.fanout import FanOutWorkflow
from lockstep.engine.machine import MachineWorkflow
from lockstep.engine.triggered import TriggerFiredWorkflow
from lockstep.engine.workflow import RunWorkflow
from lockstep.errors import ExecutionError
from lockstep.executors.container_runtime import ContainerRuntime
from lockstep.executors.reaper import reap_leftovers
from lockstep.executors.workspace import SourceAuth, WorkspaceManager
from lockstep.net import OutboundPolicy
from lockstep.records import WorkerReport
from lockstep.registry.mirror import MirrorCache
from lockstep.registry.urls import url_with_secret
from lockstep.secrets.crypto import SecretBox
from lockstep.services.child_runs import ChildRuns
from lockstep.services.recording import Recorder, wait_briefly
from lockstep.services.runs import RunService
from lockstep.services.triggers import TriggerService
from lockstep.settings import Settings, child_queue, pool_queue
from lockstep.spec.git_names import GitError, parse_remote
from lockstep.storage import secrets as secret_store
from lockstep.storage import workers as worker_store
from lockstep.storage.blobs import BlobStore
from lockstep.storage.database import Database
from lockstep.storage.logs import LogSink
from lockstep.storage.workers import REPORT_EVERY_S
from lockstep.triggers.dispatch import Dispatcher
from lockstep.triggers.firing import FireActivities
from lockstep.worker.activities import SecretResolver, StepActivities, worker_identity
from lockstep.worker.replicas import ReplicaActivities

if TYPE_CHECKING:
    from lockstep.services.deployment_control import DeploymentControl

log = logging.getLogger(__name__)

#: given, so Temporal does not hash every loaded module's code to make one up at each start
#: (half a second of a one-shot `lockstep run`); workers use no build-id versioning
BUILD_ID = f"lockstep-{__version__}"


def _sandbox() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules(
            "lockstep", "cel", "jsonschema", "opentelemetry"
        )
    )


def _interpreter_runner(settings: Settings) -> WorkflowRunner:
    """How the run interpreter's workflows execute: in the sandbox when
    ``LOCKSTEP_WORKFLOW_SANDBOX`` asks (``tests/integration/test_workflow_sandbox.py`` runs
    every kind of step in it), else directly, which costs less CPU per workflow task."""
    return _sandbox() if settings.workflow_sandbox else UnsandboxedWorkflowRunner()


def control_worker(client: Client, settings: Settings, db: Database, blobs: BlobStore) -> Worker:
    """The interpreter alone, for a server that runs no step of its own."""
    return Worker(
        client,
        build_id=BUILD_ID,
        task_queue=settings.control_queue,
        workflows=[RunWorkflow, MachineWorkflow, FanOutWorkflow],
        activities=[
            (recorder := Recorder(db, blobs)).record,
            recorder.cache_lookup,
            recorder.load_outputs,
            wait_briefly,
        ],
        workflow_runner=_interpreter_runner(settings),
        # the recorder is local-only: this worker must never take step tasks
        no_remote_activities=True,
        max_concurrent_local_activities=64,
    )


def child_worker(client: Client, control_queue: str, children: ChildRuns) -> Worker:
    """The attempts of ``workflow:`` steps: start a child run and follow it (every process
    that interprets runs serves them, the one-shot CLI too)."""
    return Worker(
        client,
        build_id=BUILD_ID,
        task_queue=child_queue(control_queue),
        activities=[children.run_child],
        max_concurrent_activities=1000,  # each one mostly waits on its child
    )


def trigger_worker(
    client: Client, queue: str, dispatcher: Dispatcher, triggers: TriggerService, runs: RunService
) -> Worker:
    """The workflow a trigger's Schedule starts, and its local activities."""
    fires = FireActivities(dispatcher, triggers, runs)
    return Worker(
        client,
        build_id=BUILD_ID,
        task_queue=queue,
        workflows=[TriggerFiredWorkflow],
        activities=[fires.fire, fires.run_finished, fires.cancel_run],
        workflow_runner=_sandbox(),
        no_remote_activities=True,
    )


def deployment_worker(client: Client, queue: str, control: DeploymentControl) -> Worker:
    """The deployments' controllers (one workflow each) and their local observation."""
    from lockstep.deployments.controller import DeploymentController
    from lockstep.deployments.replica_workflow import ReplicaWorkflow

    return Worker(
        client,
        build_id=BUILD_ID,
        task_queue=queue,
        workflows=[DeploymentController, ReplicaWorkflow],
        activities=[control.observe],
        workflow_runner=_sandbox(),
        no_remote_activities=True,
    )


def _remove_dead_workers_dirs(work_root: Path) -> None:
    """Attempt directories of workers that died without cleaning up (named ...-<pid>)."""
    if not work_root.is_dir():
        return
    host = socket.gethostname()
    for entry in work_root.iterdir():
        _, _, pid = entry.name.rpartition("-")
        if not entry.name.startswith(host + "-") or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(entry, ignore_errors=True)
        except PermissionError:
            continue


class PoolWorker:
    """A worker of one pool, with its private workspace directory."""

    def __init__(
        self,
        client: Client,
        settings: Settings,
        *,
        pool: str,
        blobs: BlobStore,
        logs: LogSink,
        work_root: Path,
        concurrency: int | None = None,
        interpreter_db: Database | None = None,
        secrets: SecretResolver | None = None,
        mirrors: MirrorCache | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        """``interpreter_db``: also serve the run interpreter from this worker (the server's
        own pool, when it shares the control queue). Temporal then hands a step scheduled on
        that queue straight back to the worker that decided it (eager activity dispatch),
        saving a matching round trip on every step."""
        self.identity = worker_identity(pool)
        self.pool = pool
        self.labels = dict(labels or {})
        self.capacity = concurrency or settings.worker_concurrency
        self.work_dir = work_root / self.identity.replace("/", "-")
        workspaces = WorkspaceManager(self.work_dir, blobs)
        if mirrors is not None:
            workspaces.checkout = git_checkout(mirrors, settings, secrets)
        self.containers = ContainerRuntime(
            settings.container_url(), default_user=settings.container_user
        )
        self.activities = activities = StepActivities(
            containers=self.containers,
            workspaces=workspaces,
            logs=logs,
            identity=self.identity,
            pool=pool,
            kill_grace_s=settings.kill_grace,
            spawner=settings.spawner,
            max_log_bytes=settings.max_log_bytes,
            secrets=secrets,
            outbound=OutboundPolicy(settings.outbound_allow),
        )
        _remove_dead_workers_dirs(work_root)
        # heartbeats carry cancellation back to the step: send them at least every 2 s so a
        # cancel or timeout reaches the process promptly whatever the heartbeat timeout is
        self.replicas = ReplicaActivities(
            self.identity,
            self.work_dir,
            settings.kill_grace,
            secrets=secrets,
            containers=self.containers,
        )
        served: list[Callable[..., Any]] = [activities.run_step, self.replicas.run_replica]
        interpreter: dict[str, Any] = {}
        if interpreter_db is not None:
            recorder = Recorder(interpreter_db, blobs)
            served += [recorder.record, recorder.cache_lookup, recorder.load_outputs, wait_briefly]
            interpreter = {
                "workflows": [RunWorkflow, MachineWorkflow, FanOutWorkflow],
                "workflow_runner": _interpreter_runner(settings),
                "max_concurrent_local_activities": 64,
            }
        self.worker = Worker(
            client,
            build_id=BUILD_ID,
            task_queue=pool_queue(pool),
            activities=served,
            **interpreter,
            identity=self.identity,
            max_concurrent_activities=concurrency or settings.worker_concurrency,
            # A frozen worker's open polls still take tasks, which are then lost after the
            # heartbeat timeout: one poll at a time, so it swallows at most one retry and the
            # engine's infrastructure retries reach a live worker.
            activity_task_poller_behavior=PollerBehaviorSimpleMaximum(maximum=1),
            max_heartbeat_throttle_interval=timedelta(seconds=2),
            default_heartbeat_throttle_interval=timedelta(seconds=2),
            graceful_shutdown_timeout=timedelta(seconds=0),
        )

    def cleanup(self) -> None:
        shutil.rmtree(self.work_dir, ignore_errors=True)

    def report(self, *, stopped: bool = False) -> WorkerReport:
        return WorkerReport(
            identity=self.identity,
            pool=self.pool,
            host=socket.gethostname(),
            pid=os.getpid(),
            capacity=self.capacity,
            running=self.activities.running + self.replicas.running,
            version=__version__,
            labels=self.labels,
            stopped=stopped,
            sent_at=utcnow(),
        )

    async def report_forever(self, send: Callable[[WorkerReport], Awaitable[None]]) -> None:
        """Tell the registry this worker is alive (and how busy) until cancelled. A failed
        report is retried at the next tick: the registry is advisory, steps go on."""
        while True:
            try:
                await send(self.report())
            except Exception:
                log.warning("worker.report_failed", exc_info=True)
            await asyncio.sleep(REPORT_EVERY_S)

    async def reap(self) -> None:
        """Remove containers an earlier life of a worker on this host left running. A host
        without a container runtime has none: that is not an error here."""
        try:
            removed = await reap_leftovers(self.containers, host=socket.gethostname())
        except ExecutionError as exc:
            log.info("worker.reap_skipped", extra={"reason": str(exc)})
            return
        if removed:
            log.warning("worker.reaped_containers", extra={"count": len(removed)})


def db_reporter(db: Database) -> Callable[[WorkerReport], Awaitable[None]]:
    """Reports straight into the metadata DB (a worker beside the server)."""

    async def send(report: WorkerReport) -> None:
        await db.call(lambda s: worker_store.report(s, report))

    return send


def db_secret_resolver(db: Database, box: SecretBox) -> SecretResolver:
    """Reads secret values straight from the metadata DB (a worker beside the server)."""

    async def resolve(project: str, names: list[str], run_id: str) -> dict[str, str]:
        return await db.call(lambda s: secret_store.resolve(s, box, project, names))

    return resolve


def git_checkout(
    mirrors: MirrorCache, settings: Settings, secrets: SecretResolver | None = None
) -> Callable[[str, str, Path, SourceAuth | None], Awaitable[None]]:
    """Checks a commit out of the mirror cache, fetching once if the commit is new there.
    ``auth`` is (project, secret name) of a private remote's ``user:token``."""

    async def checkout(repo: str, sha: str, dest: Path, auth: SourceAuth | None) -> None:
        remote = parse_remote(
            repo, allow_http=settings.git_allow_http, allow_file=settings.git_allow_file
        )
        mirror = mirrors.mirror_path(remote)
        try:
            await mirrors.checkout(mirror, sha, dest)
            return
        except GitError:
            pass
        auth_url = None
        if auth is not None:
            if secrets is None:
                raise GitError(
                    f"{remote.display} needs credentials and this worker cannot read secrets",
                    reason="invalid-credentials",
                )
            value = (await secrets(auth.project, [auth.secret], auth.run_id))[auth.secret]
            auth_url = url_with_secret(remote, value)
        await mirrors.sync(
            remote,
            auth_url=auth_url,
            allow_file=settings.git_allow_file,
            timeout_s=settings.git_timeout,
        )
        await mirrors.checkout(mirror, sha, dest)

    return checkout
