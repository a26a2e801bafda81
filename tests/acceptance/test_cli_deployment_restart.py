"""A server killed -9 (with its embedded engine) while a deployment runs loses no record: the
source sends its second batch while no server runs, and once the server is back its
reconciler takes the deployment up again — every record at both sinks (a stream and a landing
channel), each landed file taken once and finished, one running copy of each replica, the
deployment's record unchanged."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.test_cli_deployment_replicas import (
    FIRST,
    SECOND,
    SINK,
    SOURCE,
    THIRD,
    _programs,
    _received,
    _workers,
)
from tests.harness import Server, api_get, cli, wait_for


def _pipeline(d: Path) -> str:
    # the source sends FIRST records, then SECOND once `go` exists (THIRD never: no `go3`)
    (d / "source.py").write_text(f"FIRST, SECOND, THIRD = {FIRST}, {SECOND}, {THIRD}\n" + SOURCE)
    (d / "sink.py").write_text(SINK)
    return f"""\
kind: pipeline
name: survives
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
  keep:
    kind: sink
    run: [python3, {d / "sink.py"}]
    env: {{OUT: "{d / "kept.jsonl"}"}}
    from: [{{node: read, class: landing}}]
placement: {{read: work, write: work, keep: work}}
"""


def _copies(d: Path) -> dict[str, int]:
    """How many copies of each node program run (the program itself, not its supervisor)."""
    found: dict[str, int] = {}
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(argv) >= 2 and argv[0] == b"python3" and argv[1].startswith(str(d).encode()):
            name = Path(argv[1].decode()).name
            found[name] = found.get(name, 0) + 1
    return found


def _kept(d: Path) -> list[int]:
    out = d / "kept.jsonl"
    lines = out.read_text().splitlines() if out.exists() else []
    return [json.loads(line)["n"] for line in lines if line.endswith("}")]


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    return proc


def _shown(home: Path) -> dict[str, Any]:
    row: dict[str, Any] = api_get(home, "/deployments/prod")  # polled: no process a try
    return row


def taken_up_again(
    home: Path, d: Path, before: dict[str, Any], copies: dict[str, int], nodes: list[str]
) -> None:
    """After a server was killed: deployment ``prod`` is observed converged again (later than
    ``before``) with its desired state unchanged, runs ``copies`` of its programs (one copy
    each, whatever was retried), lists ``nodes`` running, and its delete stops them all."""
    wait_for(
        lambda: (
            (_shown(home).get("status") or {}).get("summary") == "converged"
            and _shown(home)["observed_at"] > before["observed_at"]
        ),
        timeout=120,
        what="the reconciler observing again",
    )
    after = _shown(home)
    assert (after["generation"], after["desired"]) == (before["generation"], before["desired"])
    wait_for(lambda: _copies(d) == copies, timeout=60, what="one copy of each program")
    rows = json.loads(_ok(cli(home, "workloads", "--json")).stdout)
    assert sorted((r["node"], r["state"]) for r in rows) == [(n, "running") for n in nodes]
    _ok(cli(home, "deployments", "delete", "prod"))
    wait_for(lambda: not _programs(d), timeout=60, what="the replicas stopped on delete")


@pytest.mark.slow
@pytest.mark.timeout(360)  # a server, a worker, two engines' restarts and three programs
def test_a_server_killed_while_replicas_run_loses_no_record(
    home: Path, tmp_path: Path, nats_url: str
) -> None:
    # the broker outlives the server (LOCKSTEP_NATS_URL); a 2s replica heartbeat timeout runs
    # out while no engine runs, so the engine starts each replica again when it is back: the
    # old copy must stop (its heartbeat is refused) and the new one carry on without a loss
    server = Server(home, LOCKSTEP_NATS_URL=nats_url, LOCKSTEP_REPLICA_HEARTBEAT_TIMEOUT="2")
    server.start()
    (worker,) = _workers(server, 1)
    try:
        wait_for(
            lambda: any(w["pool"] == "work" for w in server.api.get("/workers").json()),
            timeout=60,
            what="a worker of pool work",
        )
        d = tmp_path / "pipe"
        d.mkdir()
        (tmp_path / "survives.yaml").write_text(_pipeline(d))
        _ok(cli(home, "publish", str(tmp_path / "survives.yaml")))
        plan = _ok(cli(home, "plan", "prod", "--version", "survives@1"))
        _ok(cli(home, "deploy", "prod", "--plan", plan.stderr.split("--plan ")[1].split()[0]))
        wait_for(lambda: len(set(_received(d))) == FIRST, timeout=180, what="the first records")
        before = _shown(home)

        server.kill9()
        (d / "go").touch()  # the second batch is sent while no server runs
        server.start()
        every = set(range(FIRST + SECOND))
        wait_for(lambda: set(_received(d)) == every, timeout=120, what="every streamed record")
        wait_for(lambda: set(_kept(d)) == every, timeout=120, what="every landed record")
        assert set(_received(d)) == every  # none lost
        # landing: each landed file was taken once and finished, across the restart
        manifest = sorted(home.rglob("landing/*/manifest/*.json"))
        assert manifest and set(_kept(d)) == every
        for entry in manifest:
            edge = entry.parent.parent
            assert (edge / "claims" / entry.name).exists() and (edge / "done" / entry.name).exists()
        # one running copy of each replica, whatever the engine retried while it was down
        taken_up_again(home, d, before, {"source.py": 1, "sink.py": 2}, ["keep", "read", "write"])
    finally:
        if worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=30)
        server.stop()
