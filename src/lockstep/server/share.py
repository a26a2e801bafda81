"""One home, several ``lockstep run``s: the first one's in-process control plane also serves
the API on an owner-only unix socket in the home (``api.sock``), and a later run on the same
home submits there and follows its run, instead of being refused.

The first run, once its own run has ended, keeps serving until the runs submitted while it
served have ended too; a run that joins just as it closes takes the engine over (Temporal's
history is in the home, so nothing is lost).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

SOCKET_NAME = "api.sock"
#: a unix socket path longer than this cannot be bound (sun_path is 108 bytes on Linux)
_MAX_PATH = 100


class QuietServer(uvicorn.Server):
    """uvicorn without its own signal handling: the process that runs it owns Ctrl-C, so that
    it stops workers and Temporal in order."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def shared_socket(home: Path) -> Path | None:
    path = home / SOCKET_NAME
    return path if path.exists() else None


class _Gate:
    """Counts the requests in flight, and once closing answers 503 to new ones: a run that
    the owner did not see submitted is never lost, the joiner submits it again elsewhere."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.closing = False
        self.inflight = 0
        self.idle = asyncio.Event()
        self.idle.set()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.closing:
            from lockstep.api.errors import problem

            resp = problem(503, "unavailable", "unavailable", "this home's engine is closing")
            await resp(scope, receive, send)
            return
        self.inflight += 1
        self.idle.clear()
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
            if not self.inflight:
                self.idle.set()


class SharedApi:
    """Serves ``app`` on ``home/api.sock`` (mode 600: the home's owner only)."""

    def __init__(self, app: Any, home: Path) -> None:
        self._gate = _Gate(app)
        self._app = self._gate
        self.path = home / SOCKET_NAME
        self._server: QuietServer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> bool:
        """Start serving; False when the home's path is too long for a unix socket."""
        if len(os.fsencode(self.path)) > _MAX_PATH:
            return False
        self.path.unlink(missing_ok=True)  # left by a process that was killed
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        self.path.chmod(0o600)
        sock.listen(128)  # a joiner that finds the socket waits in the backlog, never refused
        config = uvicorn.Config(self._app, log_level="warning", lifespan="off")
        self._server = QuietServer(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        return True

    async def quiesce(self, active: Callable[[], Awaitable[int]]) -> None:
        """Refuse new requests; return once none is in flight and ``active()`` (the runs still
        to serve) is 0, serving again meanwhile if a run came in just before."""
        while True:
            if await active():
                await asyncio.sleep(0.2)
                continue
            self._gate.closing = True
            await self._gate.idle.wait()
            if not await active():
                return
            self._gate.closing = False

    async def close(self) -> None:
        self.path.unlink(missing_ok=True)  # no new run joins from here on
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 10)
        self._server = self._task = None
