"""The door to the metadata DB: engine, migrations, and a single writer thread (the tables
themselves are in ``storage/rows.py``).

Every DB call from async code goes through ``Database.call``: one thread owns the
connection pool, so SQLite never sees two writers from this process and no caller ever
gets "database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Engine, select
from sqlalchemy.exc import OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from lockstep.clock import utcnow
from lockstep.errors import ConfigError, EngineUnavailable
from lockstep.storage import migrate
from lockstep.storage.rows import ProjectRow, make_engine

T = TypeVar("T")


def _missing_driver(url: str, exc: ImportError) -> str:
    scheme = url.partition(":")[0]
    if scheme.startswith("postgresql"):
        fix = "install it with `pip install 'lockstep[postgres]'` (psycopg)"
    else:
        fix = f"install the Python package that provides '{exc.name}'"
    return f"LOCKSTEP_DATABASE_URL names a {scheme} database, but its driver is missing; {fix}"


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine = make_engine(url)
        except ImportError as exc:
            raise ConfigError(_missing_driver(url, exc)) from exc
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lockstep-db")

    def open(self) -> None:
        try:
            migrate.upgrade(self.engine)
            with self.session() as s:
                if s.get(ProjectRow, "default") is None:
                    s.add(ProjectRow(id="default", name="default", created_at=utcnow()))
        except OperationalError as exc:
            reason = " ".join(str(exc.orig).split())  # drivers answer in several lines
            raise EngineUnavailable(
                f"cannot open the metadata database ({reason}); check LOCKSTEP_DATABASE_URL "
                "and that its server is running"
            ) from exc

    @contextlib.contextmanager
    def session(self) -> Iterator[Session]:
        with self._sessions.begin() as s:
            yield s

    async def call(self, fn: Callable[[Session], T]) -> T:
        """Run ``fn`` in one transaction on the DB thread."""

        def _run() -> T:
            with self.session() as s:
                return fn(s)

        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, _run)
        except OperationalError as exc:
            raise EngineUnavailable(f"metadata database error: {exc.orig}") from exc

    def project_ids(self) -> list[str]:
        with self.session() as s:
            return list(s.scalars(select(ProjectRow.id)))

    def close(self) -> None:
        self._thread.shutdown(wait=True)
        self.engine.dispose()


__all__ = ["Database", "SQLAlchemyError"]
