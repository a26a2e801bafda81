"""Reading records without a server stays light: `runs list` and `runs show` answer from the
metadata database through the in-process API without importing the engine, the spec package
or the migrations, on a home with runs and on a directory that has no home yet. What is
checked is what the process imported (Python's own import log), never how long it took."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.harness import BIN, env_for

#: what a read of records must never import: each costs a user time on every `runs list`,
#: and none of it can change the answer. Kept here, in one place, with the reason.
NOT_FOR_READS = {
    "temporalio": "Temporal's client and workers: a read never talks to the engine",
    "lockstep.engine.workflow": "the interpreter workflow, and the executors it pulls in",
    "lockstep.spec.models": "the spec's pydantic models: records are already validated",
    "lockstep.spec._cel": "the CEL expression engine (spec validation)",
    "cel": "the CEL package itself",
    "jsonschema": "params and contracts schemas (spec validation)",
    "yaml": "workflow.yaml parsing",
    "alembic": "migrations: a home at the newest schema needs none, a missing home none",
    "docker": "the container executor's client",
    "boto3": "the S3 artifact store",
    "uvicorn": "serving the home's socket, which only `lockstep run` does",
}
SPEC = "name: light\nsteps:\n  a:\n    run: echo hi\n"


def _imported(proc: subprocess.CompletedProcess[str]) -> set[str]:
    """The modules a process imported, from its ``-X importtime`` log on stderr."""
    names = set()
    for line in proc.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert names, proc.stderr  # the log was there: an empty set proves nothing
    return names


def _heavy(names: set[str]) -> list[str]:
    return sorted(n for n in names if any(n == m or n.startswith(m + ".") for m in NOT_FOR_READS))


def _read(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN), *args],
        env={**env, "PYTHONPROFILEIMPORTTIME": "1"},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _user_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if not line.startswith("import time:")]


@pytest.fixture(scope="module")
def home_with_a_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("light")
    (root / "workflow.yaml").write_text(SPEC)
    ran = subprocess.run(
        [str(BIN), "run", "workflow.yaml", "--json"],
        env=env_for(root / "home"),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ran.returncode == 0, ran.stderr
    return root / "home", json.loads(ran.stdout)["id"]


def test_reads_of_a_home_with_runs_import_no_engine_spec_or_migrations(
    home_with_a_run: tuple[Path, str],
) -> None:
    home, run_id = home_with_a_run
    env = env_for(home)
    listed = _read(home.parent, env, "runs", "list", "--json")
    assert listed.returncode == 0, _user_lines(listed.stderr)
    assert [r["id"] for r in json.loads(listed.stdout)] == [run_id]
    assert _heavy(_imported(listed)) == []

    shown = _read(home.parent, env, "runs", "show", run_id, "--json")
    assert shown.returncode == 0, _user_lines(shown.stderr)
    assert json.loads(shown.stdout)["status"] == "succeeded"
    assert _heavy(_imported(shown)) == []

    unknown = _read(home.parent, env, "runs", "show", "rzzzzzzzzzzzzzzzz")
    assert unknown.returncode == 1
    assert len(_user_lines(unknown.stderr)) == 1 and "not found" in unknown.stderr
    assert _heavy(_imported(unknown)) == []


def test_reads_of_a_directory_without_a_home_import_nothing_heavy(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    env = env_for(fresh / ".lockstep")
    listed = _read(fresh, env, "runs", "list")
    assert listed.returncode == 0, _user_lines(listed.stderr)
    assert "no runs yet" in listed.stdout
    assert _heavy(_imported(listed)) == []

    unknown = _read(fresh, env, "runs", "show", "rzzzzzzzzzzzzzzzz")
    assert unknown.returncode == 1
    assert "not found" in unknown.stderr
    assert _heavy(_imported(unknown)) == []
    assert not (fresh / ".lockstep").exists()  # and no home was made to answer
