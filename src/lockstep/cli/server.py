"""What ``lockstep server`` and ``lockstep worker`` run."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import uvicorn

from lockstep.api.app import create_app
from lockstep.cli import context
from lockstep.cli.output import err
from lockstep.errors import ConfigError, EngineUnavailable
from lockstep.registry.mirror import MirrorCache
from lockstep.server.home import clear_server_info, read_json, write_server_info
from lockstep.server.remote import RemoteServer
from lockstep.server.runtime import ControlPlane, connect, secret_box
from lockstep.server.workers import PoolWorker, db_reporter, db_secret_resolver
from lockstep.settings import Settings
from lockstep.storage.database import Database
from lockstep.storage.logs import DirectoryLogStore
from lockstep.storage.stores import blob_store
from lockstep.storage.workers import WorkerReport


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Uvicorn(uvicorn.Server):
    """uvicorn without its own signal handling: the control plane owns Ctrl-C, so that it
    stops workers and Temporal in order and exits 0."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def serve(host: str, port: int, worker: bool, *, auth: bool) -> None:
    if not auth and not _is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without authentication; --no-auth is for loopback "
            "(127.0.0.1) only"
        )
    asyncio.run(_serve(context.settings(), host, port, worker, auth))


async def _serve(settings: Settings, host: str, port: int, worker: bool, auth: bool) -> None:
    plane = ControlPlane(settings, role="server", pools=["default"] if worker else [], auth=auth)
    services = await plane.start()
    home = settings.home_dir
    try:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc
        url = f"http://{host}:{sock.getsockname()[1]}"
        config = uvicorn.Config(create_app(services), log_level="warning", lifespan="off")
        server = _Uvicorn(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        write_server_info(home, {"url": url, "temporal": plane.temporal_address})
        err.print(f"lockstep server on {url} (home {home}, Temporal {plane.temporal_address})")
        if plane.initial_token:
            # shown once, like Jupyter's; the local CLI reads it from the owner-only file
            err.print(
                f"admin token (shown once, also in {home}/admin.token): {plane.initial_token}"
            )
        elif not auth:
            err.print("[yellow]authentication is off (--no-auth)[/]")
        err.print("Ctrl-C stops it.")
        await server.serve(sockets=[sock])
    finally:
        clear_server_info(home)
        await plane.stop()


def work(pool: str, concurrency: int | None, labels: dict[str, str]) -> None:
    asyncio.run(_work(context.settings(), pool, concurrency, labels))


async def _work(
    settings: Settings, pool: str, concurrency: int | None, labels: dict[str, str]
) -> None:
    home = settings.home_dir
    if settings.url:
        # a worker on another host: no database and no shared disk; the server's API serves
        # what it needs (its engine address, secrets, snapshots, a log sink)
        remote = RemoteServer(settings.url, settings.token)
        config = await asyncio.to_thread(remote.config)
        engine = settings.temporal_address or str(config["temporal_address"])
        client = await connect(engine, settings.temporal_namespace)
        pw = PoolWorker(
            client,
            settings,
            pool=pool,
            secrets=remote.secrets,
            mirrors=MirrorCache(home / "mirrors"),
            blobs=remote.blobs(),
            logs=remote.logs(),
            work_root=Path(home / "work"),
            concurrency=concurrency,
            labels=labels,
        )
        try:
            await _run_worker(pw, engine, remote.report)
        finally:
            remote.close()
        return
    address = settings.temporal_address
    if address is None:
        port = read_json(home / "temporal.json").get("port")
        if not port:
            raise EngineUnavailable(
                f"no Temporal address: set LOCKSTEP_TEMPORAL_ADDRESS or LOCKSTEP_URL, or start "
                f"`lockstep server` with LOCKSTEP_HOME={home}"
            )
        address = f"127.0.0.1:{port}"
    client = await connect(address, settings.temporal_namespace)
    # a worker beside the server (same home) reads the metadata DB directly
    db = Database(settings.sqlalchemy_url())
    await asyncio.to_thread(db.open)
    pw = PoolWorker(
        client,
        settings,
        pool=pool,
        secrets=db_secret_resolver(db, secret_box(settings)),
        mirrors=MirrorCache(home / "mirrors"),
        blobs=blob_store(settings, home / "blobs"),
        logs=DirectoryLogStore(home / "logs"),
        work_root=Path(home / "work"),
        concurrency=concurrency,
        labels=labels,
    )
    try:
        await _run_worker(pw, address, db_reporter(db))
    finally:
        db.close()


async def _run_worker(
    pw: PoolWorker, address: str, report: Callable[[WorkerReport], Awaitable[None]]
) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    err.print(f"worker {pw.identity} serving pool '{pw.pool}' via {address}")
    task = asyncio.create_task(pw.worker.run())
    helpers = [asyncio.create_task(pw.reap()), asyncio.create_task(pw.report_forever(report))]
    await stop.wait()
    await pw.worker.shutdown()
    await task
    for helper in helpers:
        helper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await helper
    with contextlib.suppress(Exception):
        await report(pw.report(stopped=True))
    pw.cleanup()
