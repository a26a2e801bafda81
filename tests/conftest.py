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

#: The files that take longest (from `--durations`, longest first) start first, so that no long
#: file is left to run alone at the end of a parallel run: `make test` hands files out in
#: collection order (`--no-loadscope-reorder`; xdist's default gives out the files with the
#: most tests first, which left the long one-test files for last). Refresh when it drifts.
LONGEST_FIRST = (
    "acceptance/test_cli_deployment_restart.py",
    "acceptance/test_cli_first_hour.py",
    "integration/test_schedule_triggers.py",
    "integration/test_schedule_durability.py",
    "acceptance/test_cli_deployments.py",
    "integration/test_container_steps.py",
    "acceptance/test_cli_deployment_replicas.py",
    "acceptance/test_cli_run.py",
    "acceptance/test_cli_http_steps.py",
    "acceptance/test_cli_trigger_fires.py",
    "integration/test_deployments_on_two_servers.py",
    "integration/test_auth.py",
    "acceptance/test_cli_deployment_units.py",
    "acceptance/test_cli_causes.py",
    "acceptance/test_make_demo.py",
    "acceptance/test_external_temporal.py",
    "integration/test_api_fuzz.py",
    "integration/test_durability.py",
    "acceptance/test_cli_init.py",
    "acceptance/test_worker_follows_server.py",
    "acceptance/test_cli_partial.py",
    "integration/test_fan_out.py",
    "acceptance/test_cli_deployment_drift.py",
    "acceptance/test_home_and_contexts.py",
    "integration/test_container_executor.py",
    "acceptance/test_cli_notifications.py",
    "integration/test_child_runs.py",
    "acceptance/test_cli_fleet.py",
    "acceptance/test_cli_dialects.py",
    "integration/test_upstream_durability.py",
    "integration/test_servers_take_over.py",
    "integration/test_tracing.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    gone = [name for name in LONGEST_FIRST if not (Path(__file__).parent / name).is_file()]
    if gone:
        raise pytest.UsageError(f"tests/conftest.py LONGEST_FIRST names no file: {gone}")
    rank = {f"tests/{name}": i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable


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
