"""What a ``lockstep worker`` beside the server (on the same home) works with: the metadata DB
for its runs' secrets and its own reports, and the home's blob and log stores and mirrors.
(A worker on another host gets all of this from the server's API: ``server/remote.py``.)"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from lockstep.records import WorkerReport
from lockstep.registry.mirror import MirrorCache
from lockstep.server.runtime import secret_box
from lockstep.settings import Settings
from lockstep.storage.database import Database
from lockstep.storage.logs import DirectoryLogStore
from lockstep.storage.stores import blob_store

if TYPE_CHECKING:
    from temporalio.client import Client

    from lockstep.server.workers import PoolWorker


class LocalWorkerHost:
    """Opened once per ``lockstep worker``; makes a pool worker for each engine it follows."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._db = Database(settings.sqlalchemy_url())
        self._report: Callable[[WorkerReport], Awaitable[None]] | None = None

    async def open(self) -> None:
        from lockstep.server.workers import db_reporter

        await asyncio.to_thread(self._db.open)
        self._report = db_reporter(self._db)

    def worker(
        self, client: Client, *, pool: str, concurrency: int | None, labels: dict[str, str]
    ) -> PoolWorker:
        from lockstep.server.workers import PoolWorker, db_secret_resolver

        settings, home = self._settings, self._settings.home_dir
        return PoolWorker(
            client,
            settings,
            pool=pool,
            concurrency=concurrency,
            labels=labels,
            secrets=db_secret_resolver(self._db, secret_box(settings)),
            mirrors=MirrorCache(home / "mirrors"),
            blobs=blob_store(settings, home / "blobs"),
            logs=DirectoryLogStore(settings.step_logs_dir),
            work_root=Path(home / "work"),
        )

    async def report(self, report: WorkerReport) -> None:
        """Record the worker's report in the metadata DB (``workers list`` reads it)."""
        assert self._report is not None, "open() first"
        await self._report(report)

    def close(self) -> None:
        self._db.close()
