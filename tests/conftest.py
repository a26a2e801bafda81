"""Shared fixtures: a clean environment, and a real lockstep server for the session."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lockstep.storage.database import Database
from tests.harness import Server
from tests.nats_broker import nats_broker
from tests.old_schemas import database_at
from tests.podman import Podman, podman_service
from tests.postgres import Postgres, postgres_cluster
from tests.s3 import S3, s3_server

# The suite must not pick up a developer's lockstep configuration.
for _name in [n for n in os.environ if n.startswith("LOCKSTEP_")]:
    del os.environ[_name]


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One embedded control plane (Temporal dev server, API, worker) for the session."""
    srv = Server(
        tmp_path_factory.mktemp("server-home"),
        heartbeat_timeout=5,
        LOCKSTEP_GIT_ALLOW_FILE="true",
        # http steps call the tests' receivers on 127.0.0.1 (tests/receivers.py); nothing else
        # on loopback or a private range is reachable
        LOCKSTEP_OUTBOUND_ALLOW="127.0.0.1/32",
    )
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def home(tmp_path: Path) -> Path:
    path = tmp_path / "home"
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    """A real Podman serving the Docker API on a private socket, with the busybox test images.
    Started by the first test that asks for it; fails (never skips) when Podman cannot run."""
    with podman_service(tmp_path_factory.mktemp("podman")) as service:
        yield service


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3]:
    """A real S3 API server (moto) with a bucket, started by the first test that asks."""
    with s3_server(tmp_path_factory.mktemp("s3")) as store:
        yield store


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real NATS JetStream broker (Debian's nats-server), started by the first test that
    asks; fails (never skips) when it cannot start."""
    with nats_broker(tmp_path_factory.mktemp("nats")) as url:
        yield url


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A real PostgreSQL cluster with a template database at the head, started by the first
    test that asks; fails (never skips) when it cannot start."""
    with postgres_cluster() as cluster:
        yield cluster


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a new metadata database, once per dialect lockstep supports (SQLite: made
    at its first open; PostgreSQL: a copy of the template, already at the head)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'meta.db'}"
    cluster: Postgres = request.getfixturevalue("postgres")
    return cluster.database()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """An open metadata database with the default project, on each dialect (``db_url``)."""
    database = Database(db_url)
    database.open()
    yield database
    database.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def old_database(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[str], str]:
    """Makes a metadata database as an older lockstep left it (migrated by the real scripts up
    to a revision), once per dialect; returns its URL."""
    if request.param == "sqlite":
        return lambda revision: database_at(tmp_path / "meta.db", revision)
    cluster: Postgres = request.getfixturevalue("postgres")
    return lambda revision: cluster.empty_database(revision)
