"""A real PostgreSQL for tests: one throwaway cluster per test process, a template database
migrated to the head by lockstep's own code, and a fresh copy of it for each test.

The cluster is Debian's PostgreSQL (``postgresql``, installed by ``scripts/system-deps.sh
test``). It lives in a private temporary directory outside the work tree, runs as the
``postgres`` OS user when the tests run as root (the server refuses root), listens on no TCP
port (only a unix socket in that directory, so no port can collide), trusts local
connections, and is stopped and removed when the session ends. When it cannot start, the
tests that need it fail with the reason; they never skip.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from alembic import command
from sqlalchemy import Engine, text

from lockstep.storage import migrate
from lockstep.storage.database import Database
from lockstep.storage.rows import make_engine

_BINARIES = Path("/usr/lib/postgresql")
_TEMPLATE = "lockstep_template"
_START_TIMEOUT_S = 60
_RUN_AS = "postgres"  # the OS user the server runs as when the tests run as root


class PostgresUnavailable(RuntimeError):
    pass


@dataclass
class Postgres:
    """A running cluster: ``database()`` gives each caller a database of its own."""

    socket_dir: Path
    data_dir: Path
    _names: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def url(self, name: str) -> str:
        # a plain postgresql:// URL, as a user writes LOCKSTEP_DATABASE_URL
        return f"postgresql://postgres@/{name}?host={self.socket_dir}"

    def database(self) -> str:
        """A new database copied from the template (migrated to the head, with the default
        project); returns its URL."""
        name = f"test_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE {_TEMPLATE}')
        return self.url(name)

    def empty_database(self, revision: str | None = None) -> str:
        """A new database with no schema, or migrated by the real scripts up to ``revision``
        (the schema an older lockstep left); returns its URL."""
        name = f"test_{next(self._names)}"
        self._admin(f'CREATE DATABASE "{name}" TEMPLATE template0')
        url = self.url(name)
        if revision is not None:
            with _engine(url) as engine, engine.begin() as conn:
                cfg = migrate.alembic_config()
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, revision)
        return url

    def files(self, url: str) -> list[Path]:
        """The files on disk that hold the database at ``url`` (its tables and the write-ahead
        log), once a checkpoint has written out what it holds in memory."""
        name = url.partition("?")[0].rpartition("/")[2]
        engine = _engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine as admin, admin.connect() as conn:
            conn.execute(text("CHECKPOINT"))
            oid = conn.scalar(text("SELECT oid FROM pg_database WHERE datname = :n"), {"n": name})
        dirs = [self.data_dir / "base" / str(oid), self.data_dir / "pg_wal"]
        return [p for d in dirs for p in d.iterdir() if p.is_file()]

    def _admin(self, sql: str) -> None:
        engine = _engine(self.url("postgres"), isolation_level="AUTOCOMMIT")
        with engine as admin, admin.connect() as conn:
            conn.execute(text(sql))


@contextlib.contextmanager
def _engine(url: str, **kwargs: str) -> Iterator[Engine]:
    engine = make_engine(url, **kwargs)
    try:
        yield engine
    finally:
        engine.dispose()


def _bin_dir() -> Path:
    found = sorted(_BINARIES.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    if not found:
        raise PostgresUnavailable(
            f"no PostgreSQL server under {_BINARIES}; install Debian's `postgresql` package "
            "(`make system-deps` does)"
        )
    return found[-1].parent


def _run(argv: list[str], timeout: float = _START_TIMEOUT_S) -> None:
    if os.geteuid() == 0:
        argv = ["runuser", "-u", _RUN_AS, "--", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise PostgresUnavailable(
            f"`{' '.join(argv)}` exited with {done.returncode}: "
            f"{(done.stderr or done.stdout).strip()}"
        )


@contextlib.contextmanager
def postgres_cluster() -> Iterator[Postgres]:
    """Start a cluster and its template database; stop and remove both on exit."""
    bin_dir = _bin_dir()
    root = Path(tempfile.mkdtemp(prefix="lockstep-pg-"))  # outside the work tree
    data, sockets = root / "data", root / "run"
    sockets.mkdir()
    if os.geteuid() == 0:
        user = pwd.getpwnam(_RUN_AS)
        for path in (root, sockets):
            os.chown(path, user.pw_uid, user.pw_gid)
    started = False
    try:
        initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"]
        _run([*initdb, "--no-sync", "-E", "UTF8", "--locale=C"])
        options = f"-c listen_addresses='' -k {sockets} -c fsync=off -c full_page_writes=off"
        pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log")]
        _run([*pg_ctl, "-o", options, "-w", "-t", str(_START_TIMEOUT_S), "start"])
        started = True
        cluster = Postgres(socket_dir=sockets, data_dir=data)
        cluster._admin(f"CREATE DATABASE {_TEMPLATE} TEMPLATE template0")
        template = Database(cluster.url(_TEMPLATE))
        template.open()  # lockstep's own migration code, as a server's first start runs it
        template.close()
        yield cluster
    except PostgresUnavailable as exc:
        log = root / "server.log"
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise PostgresUnavailable(f"{exc}\n{tail}".strip()) from None
    finally:
        if started:
            with contextlib.suppress(PostgresUnavailable, subprocess.TimeoutExpired):
                _run([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"])
        shutil.rmtree(root, ignore_errors=True)
