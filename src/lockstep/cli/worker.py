"""What ``lockstep worker`` runs: a pool worker that follows the engine (its options are read
in ``cli/daemons.py``).

A worker holds a connection to Temporal. When the engine goes away (the server restarts),
the worker says so in one line, stops reporting itself live, and asks where the engine is
now: back at the same address, it carries on; at a new one, it reconnects there; away for
``LOST_FOR_S``, it exits 1 with one line so that a supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from temporalio.client import Client

from lockstep import tracing
from lockstep.cli.output import err
from lockstep.errors import ConfigError, EngineUnavailable, LockstepError
from lockstep.records import WorkerReport
from lockstep.registry.mirror import MirrorCache
from lockstep.server.home import read_json, running_server
from lockstep.server.local_worker import LocalWorkerHost
from lockstep.server.remote import RemoteServer
from lockstep.server.temporal_client import connect
from lockstep.server.workers import PoolWorker
from lockstep.settings import Settings

#: how often a worker checks that the engine answers, and how long one check may take
CHECK_EVERY_S = 2.0
CHECK_TIMEOUT_S = 5.0
#: a worker that cannot reach any engine for this long exits (a supervisor restarts it)
LOST_FOR_S = 300.0
#: how long a worker that leaves a lost engine waits for its steps to let go
SHUTDOWN_WAIT_S = 10.0

Report = Callable[[WorkerReport], Awaitable[None]]
MakeWorker = Callable[[Client], PoolWorker]


async def work(
    settings: Settings, pool: str, concurrency: int | None, labels: dict[str, str]
) -> None:
    tracing.start("lockstep-worker")
    try:
        await _work(settings, pool, concurrency, labels)
    finally:
        if tracing.ON:  # the spans still batched leave before the process does
            await asyncio.to_thread(tracing.shutdown)


async def _work(
    settings: Settings, pool: str, concurrency: int | None, labels: dict[str, str]
) -> None:
    home = settings.home_dir
    common = {"pool": pool, "concurrency": concurrency, "labels": labels}
    #: the namespace to serve when it is not this worker's setting (a remote worker's server's)
    served: dict[str, str] = {}
    if settings.url:
        # a worker on another host: no database and no shared disk; the server's API serves
        # what it needs (its engine address, secrets, snapshots, a log sink)
        remote = RemoteServer(settings.url, settings.token)

        async def remote_engine() -> str:
            config = await asyncio.to_thread(remote.config)
            if "temporal_namespace" not in settings.model_fields_set:
                # the server's namespace unless this worker was told one (--namespace)
                served["namespace"] = str(config.get("temporal_namespace") or "default")
            return settings.temporal_address or str(config["temporal_address"])

        def remote_worker(client: Client) -> PoolWorker:
            return PoolWorker(
                client,
                settings,
                secrets=remote.secrets,
                mirrors=MirrorCache(home / "mirrors"),
                blobs=remote.blobs(),
                logs=remote.logs(),
                work_root=Path(home / "work"),
                **common,  # type: ignore[arg-type]
            )

        try:
            await _follow(settings, remote_engine, remote_worker, remote.report, served)
        finally:
            remote.close()
        return

    async def local_engine() -> str:
        if settings.temporal_address:
            return settings.temporal_address
        port = read_json(home / "temporal.json").get("port")
        if port:
            return f"127.0.0.1:{port}"
        # the home's server runs on a Temporal of its own choosing (--temporal): that one,
        # in the server's namespace unless this worker was told one
        server = running_server(home) or {}
        if server.get("temporal"):
            if "temporal_namespace" not in settings.model_fields_set:
                served["namespace"] = str(server.get("namespace") or "default")
            return str(server["temporal"])
        raise EngineUnavailable(
            f"no Temporal address: set LOCKSTEP_TEMPORAL_ADDRESS or LOCKSTEP_URL, or start "
            f"`lockstep server` with LOCKSTEP_HOME={home}"
        )

    # a worker beside the server (same home) reads the metadata DB directly: the server's
    server = running_server(home) or {}
    if server.get("db") not in (None, settings.database_mark()):
        raise ConfigError(
            f"the server on {home} uses another metadata database than this worker; give the "
            "worker the server's LOCKSTEP_DATABASE_URL (or LOCKSTEP_URL and a worker token)"
        )
    host = LocalWorkerHost(settings)
    await host.open()

    def local_worker(client: Client) -> PoolWorker:
        return host.worker(client, pool=pool, concurrency=concurrency, labels=labels)

    try:
        await _follow(settings, local_engine, local_worker, host.report, served)
    finally:
        host.close()


async def _follow(
    settings: Settings,
    where: Callable[[], Awaitable[str]],
    make: MakeWorker,
    report: Report,
    namespace: dict[str, str] | None = None,
) -> None:
    """Serve the pool on the engine ``where`` names, and follow it when it moves."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    address = await where()
    while True:
        client = await connect(address, settings, (namespace or {}).get("namespace"))
        moved = await _serve(make(client), client, address, where, report, stop)
        if moved is None:
            return
        err.print(f"worker: the engine moved to {moved}; reconnecting")
        address = moved


async def _serve(
    pw: PoolWorker,
    client: Client,
    address: str,
    where: Callable[[], Awaitable[str]],
    report: Report,
    stop: asyncio.Event,
) -> str | None:
    """Run one worker until stopped (None) or until the engine has moved (its address)."""
    healthy = asyncio.Event()
    healthy.set()

    async def live_report(r: WorkerReport) -> None:
        # a worker cut off from the engine runs nothing: it must not be listed live
        if healthy.is_set() or r.stopped:
            await report(r)

    err.print(f"worker {pw.identity} serving pool '{pw.pool}' via {address}")
    task: asyncio.Task[object] = asyncio.create_task(pw.worker.run())
    helpers = [asyncio.create_task(pw.reap()), asyncio.create_task(pw.report_forever(live_report))]
    watch: asyncio.Task[str] = asyncio.create_task(_watch(client, address, where, healthy))
    stopped: asyncio.Task[object] = asyncio.create_task(stop.wait())
    try:
        done, _ = await asyncio.wait([task, watch, stopped], return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # the worker failed by itself: say why
        moved = watch.result() if watch in done else None
    finally:
        for t in (watch, stopped):
            t.cancel()
        with contextlib.suppress(Exception, asyncio.TimeoutError):
            await asyncio.wait_for(pw.worker.shutdown(), SHUTDOWN_WAIT_S)
        if not task.done():
            task.cancel()
        for t in (task, *helpers, watch, stopped):
            if not t.done():
                t.cancel()
            with contextlib.suppress(BaseException):
                await t
        with contextlib.suppress(Exception):
            await report(pw.report(stopped=True))
        pw.cleanup()
    return moved


async def _watch(
    client: Client, address: str, where: Callable[[], Awaitable[str]], healthy: asyncio.Event
) -> str:
    """Check the engine every ``CHECK_EVERY_S``; return the new address once it has moved,
    raise when it has been away for ``LOST_FOR_S``."""
    loop = asyncio.get_running_loop()
    lost_since: float | None = None
    while True:
        await asyncio.sleep(CHECK_EVERY_S)
        if await _answers(client):
            if lost_since is not None:
                err.print(f"worker: the engine at {address} is back")
                lost_since = None
                healthy.set()
            continue
        if lost_since is None:
            lost_since = loop.time()
            healthy.clear()
            err.print(f"worker: lost the engine at {address}; waiting for it to come back")
        with contextlib.suppress(LockstepError, OSError):
            now = await where()
            if now != address:
                return now
        if loop.time() - lost_since > LOST_FOR_S:
            raise EngineUnavailable(
                f"the engine at {address} has been unreachable for {LOST_FOR_S:g}s; exiting so "
                "that a supervisor can restart this worker"
            )


async def _answers(client: Client) -> bool:
    try:
        await asyncio.wait_for(client.service_client.check_health(), CHECK_TIMEOUT_S)
    except Exception:
        return False  # any failure means the same here: no engine to take steps from
    return True
