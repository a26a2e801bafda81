"""Workers: they report themselves (anyone signed in may list them), and a worker on another
host sends its steps' log lines here."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from lockstep.records import WorkerReport
from lockstep.storage import workers as store
from lockstep.storage.database import Database
from lockstep.storage.logs import LogStore, LogStream


class WorkerService:
    def __init__(self, db: Database, logs: LogStore) -> None:
        self._db = db
        self._logs = logs

    async def report(self, report: WorkerReport) -> None:
        await self._db.call(lambda s: store.report(s, report))

    async def list(self, *, include_gone: bool = False) -> list[dict[str, Any]]:
        """Live workers (``include_gone``: also stopped and lost ones), by pool."""
        return await self._db.call(lambda s: store.list_workers(s, include_gone=include_gone))

    async def append_log(self, key: str, lines: Iterable[tuple[datetime, LogStream, str]]) -> None:
        """Append a batch of a step attempt's log lines (``RUN/STEP/ATTEMPT``) that a worker on
        another host sends; returns once they are stored."""

        def append() -> None:
            writer = self._logs.writer(key)
            try:
                for ts, stream, text in lines:
                    writer.write(stream, text, ts=ts)
            finally:
                writer.close()

        await asyncio.to_thread(append)
