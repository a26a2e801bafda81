"""The ``lockstep server`` process: a control plane (``server/runtime.py``) with its API served
by uvicorn on a listening socket, until Ctrl-C. (The command's options are read in
``cli/daemons.py``; ``lockstep worker`` runs ``cli/worker.py``.)"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
import socket

import uvicorn

from lockstep.api.app import create_app
from lockstep.cli import context
from lockstep.cli.output import err
from lockstep.errors import ConfigError
from lockstep.server import log_setup
from lockstep.server.home import clear_server_info, write_server_info
from lockstep.server.http_protocol import head_timed
from lockstep.server.runtime import ControlPlane
from lockstep.server.share import QuietServer
from lockstep.settings import Settings


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(host: str, port: int, worker: bool, *, auth: bool) -> None:
    if not auth and not _is_loopback(host):
        raise ConfigError(
            f"refusing to listen on {host} without authentication; --no-auth is for loopback "
            "(127.0.0.1) only"
        )
    settings = context.settings()
    log_setup.configure(settings.log_format, settings.log_level)
    asyncio.run(_serve(settings, host, port, worker, auth))


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
        # listening before the address is published: a client that reads server.json and
        # connects at once waits in the backlog until uvicorn accepts, instead of being refused
        sock.listen(2048)
        url = f"http://{host}:{sock.getsockname()[1]}"
        config = uvicorn.Config(
            create_app(services),
            log_level="warning",
            lifespan="off",
            http=head_timed(settings.http_header_timeout),
            limit_concurrency=settings.http_max_connections,
        )
        server = QuietServer(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, lambda: setattr(server, "should_exit", True))
        if plane.sender is not None:
            plane.sender.api_url = url  # notifications link here without LOCKSTEP_PUBLIC_URL
        info = {"url": url, "temporal": plane.temporal_address}
        # a worker beside this server (same home) serves the same engine and namespace
        mark = settings.database_mark()
        write_server_info(home, info | {"namespace": settings.temporal_namespace, "db": mark})
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
