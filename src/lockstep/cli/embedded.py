"""The API served in-process, for a CLI without a server: the same HTTP API as a server's,
over an ASGI transport, so every command has one code path.

The control plane starts on the first request, not before. A home that does not exist yet
is not created to read it: reads are answered from an empty in-memory database (its other
files in a scratch temporary directory) until a write needs the real one.

A ``lockstep run`` shares its engine with later runs on the same home (``server/share.py``):
the later one joins it over the home's socket instead of being refused.
"""

from __future__ import annotations

import contextlib
import gc
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from lockstep.cli.output import err
from lockstep.server.home import HomeBusy
from lockstep.settings import Settings

if TYPE_CHECKING:
    from lockstep.server.runtime import ControlPlane
    from lockstep.server.share import SharedApi

_READS = frozenset({"GET", "HEAD", "OPTIONS"})
#: how long the embedded Temporal server of a CLI command gets to close before SIGKILL
ENGINE_GRACE_S = 0.3


@contextlib.contextmanager
def _lasting_imports() -> Iterator[None]:
    """Around imports whose objects live as long as the process (the API's: some 100,000):
    the garbage collector walks them neither while they load nor in later collections, which
    saves a read of records a sixth of its time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class EmbeddedTransport(httpx.AsyncBaseTransport):
    def __init__(self, settings: Settings, *, engine: bool) -> None:
        self._settings = settings
        self._engine = engine
        self._plane: ControlPlane | None = None
        self._app: httpx.AsyncBaseTransport | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self._shared: SharedApi | None = None
        #: this invocation joined the engine of another `lockstep run` on the home
        self.joined = False

    def _home_exists(self) -> bool:
        s = self._settings
        return s.database_url is not None or (s.home_dir / "lockstep.db").exists()

    async def open(self, *, read_only: bool = False) -> None:
        """Start the control plane (on a scratch home for reads of a home not made yet), or
        join the one another ``lockstep run`` serves on this home."""
        if self._app is not None and (self._scratch is None or read_only):
            return
        await self.aclose()
        settings = self._settings
        if read_only and not self._engine and not self._home_exists():
            # an in-memory database: no file to create, no migration to run
            self._scratch = tempfile.TemporaryDirectory(prefix="lockstep-empty-")
            scratch = {"home": Path(self._scratch.name), "database_url": "sqlite://"}
            settings = settings.model_copy(update=scratch)
        # imported here: the engine stack (Temporal, FastAPI, SQLAlchemy) costs seconds to
        # import, and commands that talk to a server never need it
        with _lasting_imports():
            from lockstep.api.app import create_app
            from lockstep.server.runtime import ControlPlane

        plane = ControlPlane(settings, role="cli", engine=self._engine, auth=False)
        try:
            services = await plane.start()
        except HomeBusy:
            from lockstep.server.share import shared_socket

            sock = shared_socket(settings.home_dir)
            if sock is None:
                raise
            self._app = httpx.AsyncHTTPTransport(uds=str(sock))
            self.joined = True
            return
        self._plane = plane
        app = create_app(services)
        self._app = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        if self._engine:
            # uvicorn, for the home's socket: only a command that runs the engine serves it
            from lockstep.server.share import SharedApi

            shared = SharedApi(app, settings.home_dir)
            self._shared = shared if await shared.start() else None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.open(read_only=request.method in _READS)
        assert self._app is not None
        return await self._app.handle_async_request(request)

    async def aclose(self) -> None:
        plane, self._plane = self._plane, None
        app, self._app = self._app, None
        shared, self._shared = self._shared, None
        try:
            if shared is not None:
                try:
                    await self._serve_joined(plane, shared)
                finally:
                    await shared.close()
        finally:
            try:
                if isinstance(app, httpx.AsyncHTTPTransport):
                    await app.aclose()
                if plane is not None:
                    # the engine's graceful close takes a second; what it holds is committed
                    await plane.stop(engine_grace_s=ENGINE_GRACE_S)
            finally:
                if self._scratch is not None:
                    self._scratch.cleanup()
                    self._scratch = None

    async def _serve_joined(self, plane: ControlPlane | None, shared: SharedApi) -> None:
        """Keep the engine up while runs that other invocations submitted here go on."""
        if plane is None or plane.services is None:
            return
        runs, since, told = plane.services.runs, plane.started_at, False

        async def active() -> int:
            nonlocal told
            count = await runs.unfinished_since(since)
            if count and not told:
                err.print(
                    f"waiting for {count} run(s) another `lockstep run` started on this home "
                    "(Ctrl-C stops them)"
                )
                told = True
            return count

        await shared.quiesce(active)
