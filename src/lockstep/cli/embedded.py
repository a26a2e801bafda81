"""The API served in-process, for a CLI without a server: the same HTTP API as a server's,
over an ASGI transport, so every command has one code path.

The control plane starts on the first request, not before. A home that does not exist yet
is not created to read it: reads are answered from an empty scratch home in a temporary
directory until a write needs the real one.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from lockstep.settings import Settings

if TYPE_CHECKING:
    from lockstep.server.runtime import ControlPlane

_READS = frozenset({"GET", "HEAD", "OPTIONS"})


class EmbeddedTransport(httpx.AsyncBaseTransport):
    def __init__(self, settings: Settings, *, engine: bool) -> None:
        self._settings = settings
        self._engine = engine
        self._plane: ControlPlane | None = None
        self._app: httpx.ASGITransport | None = None
        self._scratch: tempfile.TemporaryDirectory[str] | None = None

    def _home_exists(self) -> bool:
        s = self._settings
        return s.database_url is not None or (s.home_dir / "lockstep.db").exists()

    async def open(self, *, read_only: bool = False) -> None:
        """Start the control plane (on a scratch home for reads of a home not made yet)."""
        if self._app is not None and (self._scratch is None or read_only):
            return
        await self.aclose()
        settings = self._settings
        if read_only and not self._engine and not self._home_exists():
            self._scratch = tempfile.TemporaryDirectory(prefix="lockstep-empty-")
            settings = settings.model_copy(update={"home": Path(self._scratch.name)})
        # imported here: the engine stack (Temporal, FastAPI, SQLAlchemy) costs seconds to
        # import, and commands that talk to a server never need it
        from lockstep.api.app import create_app
        from lockstep.server.runtime import ControlPlane

        plane = ControlPlane(settings, role="cli", engine=self._engine, auth=False)
        services = await plane.start()
        self._plane = plane
        self._app = httpx.ASGITransport(app=create_app(services), raise_app_exceptions=False)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        await self.open(read_only=request.method in _READS)
        assert self._app is not None
        return await self._app.handle_async_request(request)

    async def aclose(self) -> None:
        plane, self._plane, self._app = self._plane, None, None
        try:
            if plane is not None:
                await plane.stop()
        finally:
            if self._scratch is not None:
                self._scratch.cleanup()
                self._scratch = None
