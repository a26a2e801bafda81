"""The control plane: everything ``lockstep server`` (or an embedded ``lockstep run``) runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lockstep import tracing
from lockstep.api.deps import Services
from lockstep.clock import utcnow
from lockstep.errors import ConfigError, EngineUnavailable
from lockstep.net.addresses import OutboundPolicy
from lockstep.secrets.crypto import SecretBox
from lockstep.server.home import HomeLock, bootstrap_admin
from lockstep.server.temporal_client import connect, describe_transport, tls_enabled
from lockstep.services.approvals import ApprovalService
from lockstep.services.audit import AuditService
from lockstep.services.deployments import DeploymentService
from lockstep.services.doctor import Doctor
from lockstep.services.instances import InstanceService
from lockstep.services.metrics import MetricsService
from lockstep.services.notifications import NotificationService
from lockstep.services.projects import ProjectService
from lockstep.services.registry import Poller, RegistryService
from lockstep.services.resources import ResourceService
from lockstep.services.runs import RunService
from lockstep.services.secrets import SecretService
from lockstep.services.tokens import TokenService
from lockstep.services.triggers import TriggerService
from lockstep.services.versions import VersionService
from lockstep.services.workers import WorkerService
from lockstep.settings import Settings, pool_queue
from lockstep.storage.blobs import BlobStore
from lockstep.storage.database import Database
from lockstep.storage.logs import DirectoryLogStore
from lockstep.storage.stores import blob_store
from lockstep.triggers.dispatch import Dispatcher
from lockstep.triggers.git import GitTriggers
from lockstep.triggers.webhooks import Webhooks

if TYPE_CHECKING:
    # the engine side (Temporal's client, workers, executors, Docker's client) is imported
    # when an engine starts: a CLI that only reads records never pays for it
    from temporalio.client import Client

    from lockstep.server.temporal_dev import DevServer
    from lockstep.server.workers import PoolWorker
    from lockstep.services.notification_sender import Sender
    from lockstep.services.replica_control import ReplicaControl

log = logging.getLogger(__name__)


def secret_box(settings: Settings) -> SecretBox:
    key = settings.secret_key.get_secret_value() if settings.secret_key else None
    return SecretBox.from_settings(key, settings.home_dir)


@dataclass
class ControlPlane:
    settings: Settings
    role: str = "server"
    #: False: only the metadata DB (read-only CLI commands without a server); no lock taken
    engine: bool = True
    #: False: every caller is the local administrator (embedded CLI, `server --no-auth`)
    auth: bool = True
    #: set on the first start of an authenticated server: the admin token, to print once
    initial_token: str | None = None
    pools: list[str] = field(default_factory=lambda: ["default"])
    services: Services | None = None
    #: delivers notifications (started in a server only); ``api_url`` is set once it listens
    sender: Sender | None = None
    temporal_address: str = ""
    #: when this control plane started (a timestamp as the records write them)
    started_at: str = ""
    _lock: HomeLock | None = None
    _dev: DevServer | None = None
    _replicas: ReplicaControl | None = None
    _db: Database | None = None
    _tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    _pool_workers: list[PoolWorker] = field(default_factory=list)

    async def start(self) -> Services:
        home = self.settings.home_dir
        if self.engine:
            self._lock = HomeLock(home)
            self._lock.acquire(self.role)
        try:
            return await self._start()
        except BaseException:
            await self.stop()
            raise

    async def _start(self) -> Services:
        settings, home = self.settings, self.settings.home_dir
        self.started_at = utcnow()
        self._db = Database(settings.sqlalchemy_url())
        await asyncio.to_thread(self._db.open)
        blobs = blob_store(settings, home / "blobs")
        logs = DirectoryLogStore(settings.step_logs_dir)
        box = secret_box(settings)
        registry = RegistryService(settings=settings, db=self._db, box=box, root=home / "mirrors")
        poller = Poller(registry, self._db)
        if not self.engine:
            runs = RunService(settings=settings, db=self._db, client=None, blobs=blobs, logs=logs)
            self.services = self._services(runs, blobs, logs, box, registry, poller)
            return self.services
        from lockstep.server.temporal_dev import DevServer
        from lockstep.server.workers import (
            PoolWorker,
            control_worker,
            db_reporter,
            db_secret_resolver,
        )

        tracing.start("lockstep-server")  # first: a missing extra is said before anything starts
        if settings.temporal_address:
            self.temporal_address = settings.temporal_address
        else:
            if tls_enabled(settings):
                raise ConfigError(
                    "LOCKSTEP_TEMPORAL_TLS* or LOCKSTEP_TEMPORAL_API_KEY is set without a Temporal "
                    "address: the embedded Temporal speaks plain gRPC; pass --temporal HOST:PORT"
                )
            self._dev = DevServer(home, settings.temporal_dynamic_config)
            self.temporal_address = await self._dev.start()
        client = await connect(self.temporal_address, settings)
        runs = RunService(
            settings=settings,
            db=self._db,
            client=client,
            blobs=blobs,
            logs=logs,
            sources=registry.resolve_sources,
        )
        # the interpreter shares the worker of the pool on its own queue when there is one
        merged = next((p for p in self.pools if pool_queue(p) == settings.control_queue), None)
        workers = [] if merged else [control_worker(client, settings, self._db, blobs)]
        for pool in self.pools:
            pw = PoolWorker(
                client,
                settings,
                pool=pool,
                blobs=blobs,
                logs=logs,
                work_root=home / "work",
                interpreter_db=self._db if pool == merged else None,
                secrets=db_secret_resolver(self._db, box),
                mirrors=registry.mirrors,
            )
            self._pool_workers.append(pw)
            workers.append(pw.worker)
        self._tasks = [asyncio.create_task(w.run()) for w in workers]
        self._tasks += [asyncio.create_task(pw.reap()) for pw in self._pool_workers]
        report = db_reporter(self._db)
        self._tasks += [asyncio.create_task(pw.report_forever(report)) for pw in self._pool_workers]
        self.services = self._services(runs, blobs, logs, box, registry, poller)
        workers += self._triggers(client)
        workers += self._deployments(client)
        workers.append(self._children(client, logs))
        self._workers = workers
        if self.auth:
            self.initial_token = await self._db.call(lambda s: bootstrap_admin(s, home))
        if self.role == "server":
            # the background scanner lives in the server; one-shot CLI runs do not poll
            self._tasks.append(asyncio.create_task(poller.run()))
            # queued runs start whenever the engine can take them (also after an outage)
            every = settings.reconcile_interval
            self._tasks.append(asyncio.create_task(runs.reconcile_forever(every)))
            from lockstep.services.notification_sender import Sender

            policy = OutboundPolicy(settings.outbound_allow)
            self.sender = Sender(self._db, box, logs, policy, settings)
            self._tasks.append(asyncio.create_task(self.sender.run_forever()))
        else:
            with contextlib.suppress(EngineUnavailable):
                await runs.reconcile()
        return self.services

    def _children(self, client: Client, logs: DirectoryLogStore) -> Any:
        """The worker of ``workflow:`` steps' attempts (child runs)."""
        from lockstep.server.workers import child_worker
        from lockstep.services.child_runs import ChildRuns

        assert self.services is not None and self._db is not None
        svc, settings = self.services, self.settings
        children = ChildRuns(self._db, svc.runs, svc.versions, logs, settings.child_max_depth)
        worker = child_worker(client, settings.control_queue, children)
        self._tasks.append(asyncio.create_task(worker.run()))
        return worker

    def _deployments(self, client: Client) -> list[Any]:
        """In the server: the deployments' controllers, told of every change to a desired
        state, and started at once for every deployment (``docs/deployments.md``)."""
        if self.role != "server":
            return []  # a one-shot CLI records desired state; the server's start takes it up
        from lockstep.server.workers import deployment_worker
        from lockstep.services.deployment_control import DeploymentControl, deployments_queue

        assert self.services is not None
        queue = deployments_queue(self.settings.control_queue)
        from lockstep.services.replica_control import ReplicaControl

        # a replica's `landing` channels need the artifact store as a directory its workers
        # share (the home's, with a worker beside the server)
        store = None if self.settings.artifacts else self.settings.home_dir / "blobs"
        missing = self.services.secrets.missing  # a node's secrets not set: it stays pending
        self._replicas = ReplicaControl(client, self.settings, queue, store, missing)
        control = DeploymentControl(client, queue, self.services.deployments, self._replicas)
        self.services.deployments.on_change = control.poke
        worker = deployment_worker(client, queue, control)
        self._tasks.append(asyncio.create_task(worker.run()))
        self._tasks.append(asyncio.create_task(control.reconcile()))
        return [worker]

    def _triggers(self, client: Client) -> list[Any]:
        """Registration of triggers when ``$LIVE`` moves (checked before it moves); in the
        server, the worker their Schedules' fires run on and the pump of upstream and resource
        events (a one-shot CLI process serves neither: its events wait for the server)."""
        from lockstep.server.workers import trigger_worker
        from lockstep.services.child_cycles import ChildCycles
        from lockstep.triggers.events import EventPump
        from lockstep.triggers.registration import TriggerRegistry
        from lockstep.triggers.resources import ResourceSource
        from lockstep.triggers.schedules import Control, trigger_queue
        from lockstep.triggers.upstream import UpstreamSource
        from lockstep.triggers.watch import TriggerWatch

        assert self.services is not None and self._db is not None
        settings, triggers = self.settings, self.services.triggers
        queue = trigger_queue(settings.control_queue)
        versions = self.services.versions
        instances = self.services.instances
        registry = TriggerRegistry(
            client,
            queue,
            versions,
            triggers,
            min_interval=settings.schedule_min_interval,
            instances=instances,
            repositories=self.services.registry,
            resources=self.services.resources,
        )
        versions.on_tag_moved = registry.tag_moved
        cycles = ChildCycles(versions)

        async def check_tag_move(project: str, definition: str, tag: str, number: int) -> None:
            await registry.check_tag_move(project, definition, tag, number)
            await cycles.check_tag_move(project, definition, tag, number)

        versions.check_tag_move = check_tag_move
        instances.check_triggers = registry.check_instance
        instances.on_triggers_changed = registry.instance_changed
        self.services.triggers.control = Control(client)
        if self.role != "server":
            return []
        svc = self.services
        worker = trigger_worker(client, queue, svc.dispatcher, svc.triggers, svc.runs)
        self._tasks.append(asyncio.create_task(registry.reconcile()))
        dispatcher = self.services.dispatcher
        # fires acknowledged just before a crash (a webhook's 202) are handled at start and
        # every round after; a schedule's dropped fire times are recorded and told
        watch = TriggerWatch(triggers, dispatcher)
        self._tasks.append(asyncio.create_task(watch.run_forever(settings.reconcile_interval)))
        upstream = UpstreamSource(
            self.services.runs, triggers, dispatcher, settings.upstream_max_depth
        )
        pump = EventPump(triggers, upstream, ResourceSource(triggers, dispatcher))
        versions.on_event = pump.wake
        self.services.resources.on_event = pump.wake
        self._tasks.append(asyncio.create_task(pump.run_forever()))
        self._tasks.append(asyncio.create_task(worker.run()))
        return [worker]

    def _services(
        self,
        runs: RunService,
        blobs: BlobStore,
        logs: DirectoryLogStore,
        box: SecretBox,
        registry: RegistryService,
        poller: Poller,
    ) -> Services:
        db = self._db
        assert db is not None
        versions = VersionService(settings=self.settings, db=db, registry=registry, runs=runs)
        # spec text reaching the server expands its published blueprints (uses: DEF@SELECTOR)
        runs.published = registry.published = versions.published_reader
        triggers = TriggerService(db)
        instances = InstanceService(db=db, runs=runs, versions=versions)
        dispatcher = Dispatcher(versions, triggers, instances)
        # wired whatever the role: a scan never records a move without its git fires (a fire
        # the engine cannot take yet stays accepted for the sweep at the server's start)
        registry.ref_listener = GitTriggers(dispatcher, triggers, instances, registry)
        secrets = SecretService(db, box)
        return Services(
            self.settings,
            runs,
            blobs,
            registry,
            poller,
            instances,
            versions,
            projects=ProjectService(db),
            tokens=TokenService(db),
            secrets=secrets,
            workers=WorkerService(db, logs),
            audit=AuditService(db),
            triggers=triggers,
            dispatcher=dispatcher,
            webhooks=Webhooks(triggers, secrets, dispatcher),
            notifications=NotificationService(db, OutboundPolicy(self.settings.outbound_allow)),
            approvals=ApprovalService(db, runs),
            resources=ResourceService(db),
            metrics=MetricsService(db, lambda: runs.engine.service_client.check_health()),
            doctor=Doctor(
                db=db,
                runs=runs,
                blobs=blobs,
                address=self.temporal_address or "(none)",
                namespace=self.settings.temporal_namespace,
                transport=describe_transport(self.settings),
            ),
            deployments=DeploymentService(db, versions),
            auth=self.auth,
            engine_address=self.temporal_address,
        )

    async def stop(self, engine_grace_s: float = 10.0) -> None:
        """Stop workers, loops and the embedded engine (given ``engine_grace_s`` to close)."""
        if self.services is not None:
            await self.services.webhooks.close()
        for w in getattr(self, "_workers", []):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(w.shutdown(), timeout=15)
        for t in self._tasks:
            if not t.done():
                t.cancel()
            with contextlib.suppress(BaseException):
                await t
        self._tasks = []
        if self._pool_workers:
            from lockstep.server.workers import db_reporter
        for pw in self._pool_workers:
            pw.cleanup()
            if self._db is not None:
                with contextlib.suppress(Exception):
                    await db_reporter(self._db)(pw.report(stopped=True))
        if self._replicas is not None:
            self._replicas.broker.stop()
            self._replicas = None
        if self._dev is not None:
            await asyncio.to_thread(self._dev.stop, engine_grace_s)
            self._dev = None
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None
        if tracing.ON:  # spans still batched leave (blocking up to the exporter's timeout)
            await asyncio.to_thread(tracing.shutdown)
