"""Deployments with several servers on one PostgreSQL database and one Temporal: either server
answers for a deployment, and when the server running its controller is killed -9 another
carries the controller on (its workflow's tasks go to the deployments' queue every server
serves) — the pipeline loses no record, no replica runs twice, and the deployment is seen
converged again, observed anew, from the surviving server."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.acceptance.test_cli_deployment_replicas import FIRST, SECOND, SINK, SOURCE, THIRD
from tests.acceptance.test_cli_deployment_restart import _ok, _shown, taken_up_again
from tests.harness import BIN, Server, cli, env_for, wait_for
from tests.integration.test_servers_take_over import shared  # noqa: F401 - a fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]


def _pipeline(d: Path) -> str:
    (d / "source.py").write_text(f"FIRST, SECOND, THIRD = {FIRST}, {SECOND}, {THIRD}\n" + SOURCE)
    (d / "sink.py").write_text(SINK)
    return f"""\
kind: pipeline
name: shared-moves
nodes:
  read:
    kind: source
    run: [python3, {d / "source.py"}]
    env: {{DIR: "{d}"}}
  write:
    kind: sink
    run: [python3, {d / "sink.py"}]
    env: {{OUT: "{d / "out.jsonl"}"}}
    from: [{{node: read, ack_wait: 3s}}]
placement: {{read: work, write: work}}
"""


def _received(d: Path) -> set[int]:
    out = d / "out.jsonl"
    lines = out.read_text().splitlines() if out.exists() else []
    return {json.loads(line)["n"] for line in lines if line.endswith("}")}


def test_a_deployment_outlives_the_server_that_ran_its_controller(
    shared: dict[str, str],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
    nats_url: str,
) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    env = {**shared, "LOCKSTEP_NATS_URL": nats_url, "LOCKSTEP_REPLICA_HEARTBEAT_TIMEOUT": "3"}
    a = Server(first, worker=False, **env)
    a.start()
    shutil.copy(first / "admin.token", second / "admin.token")  # one database, one admin
    b = Server(second, worker=False, **env)
    # a worker on another host, told the first server's address; it reaches Temporal itself,
    # so its replicas run on while no server answers it
    with (tmp_path / "worker.log").open("w") as sink:
        worker = subprocess.Popen(
            [str(BIN), "worker", "--pool", "work"],
            env=env_for(tmp_path / "w", LOCKSTEP_URL=a.url, LOCKSTEP_TOKEN=a.token),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    d = tmp_path / "pipe"
    d.mkdir()
    try:
        wait_for(
            lambda: any(w["pool"] == "work" for w in a.api.get("/workers").json()),
            timeout=60,
            what="a worker of pool work",
        )
        (tmp_path / "moves.yaml").write_text(_pipeline(d))
        _ok(cli(first, "publish", str(tmp_path / "moves.yaml")))
        plan = _ok(cli(first, "plan", "prod", "--version", "shared-moves@1"))
        _ok(cli(first, "deploy", "prod", "--plan", plan.stderr.split("--plan ")[1].split()[0]))
        wait_for(lambda: len(_received(d)) == FIRST, timeout=120, what="the first records")
        wait_for(
            lambda: (_shown(first).get("status") or {}).get("summary") == "converged",
            timeout=120,
            what="converged",
        )
        # only now a second server: the deployment's controller is the first one's
        b.start()
        # both servers answer for the deployment, from the one database
        wait_for(
            lambda: (_shown(second).get("status") or {}).get("summary") == "converged",
            timeout=120,
            what="converged, seen from the second server",
        )
        before = _shown(second)

        a.kill9()
        (d / "go").touch()  # the second batch, while only the second server runs
        every = set(range(FIRST + SECOND))
        wait_for(lambda: _received(d) == every, timeout=120, what="every record")
        taken_up_again(second, d, before, {"source.py": 1, "sink.py": 1}, ["read", "write"])
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)
        a.stop()
        b.stop()
