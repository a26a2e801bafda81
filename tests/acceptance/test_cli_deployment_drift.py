"""Drift: a replica stopped or started outside lockstep (here with the engine's own CLI and
client, as an operator would) is seen, recorded as an event, and reconciled back — or, under
`lockstep deployments policy NAME --drift report`, only reported and left as it is."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from temporalio.client import Client, WorkflowExecutionStatus

from tests.harness import Server, api_get, cli, wait_for

PIPELINE = """\
kind: pipeline
name: drifts
nodes:
  read:
    kind: source
    run: exec sleep 3600
  write:
    kind: sink
    run: exec cat > /dev/null
    from: [read]
replicas: {write: 2}
"""
TEMPORAL = str(Path(sys.prefix) / "bin" / "temporal")


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    return proc


def _shown(home: Path) -> dict[str, Any]:
    row: dict[str, Any] = api_get(home, "/deployments/prod")  # polled: no process a try
    return row


def _summary(home: Path) -> str:
    return str((_shown(home).get("status") or {}).get("summary"))


def _write_ids(home: Path) -> dict[str, str]:
    """replica -> workflow id of the node write's current replicas."""
    listed = (_shown(home).get("status") or {}).get("replicas", [])
    return {r["replica"]: r["id"] for r in listed if r["node"] == "write" and r["current"]}


def _drift_events(home: Path) -> list[str]:
    events = api_get(home, "/deployments/prod/events")
    return [e["reason"] for e in events if e["kind"] == "drift"]


def _running(address: str, rid: str) -> bool:
    async def look() -> bool:
        client = await Client.connect(address)
        found = await client.get_workflow_handle(rid).describe()
        return found.status == WorkflowExecutionStatus.RUNNING

    return asyncio.run(look())


def _start_copy(address: str, rid: str, new_id: str) -> None:
    """Start another replica workflow with the same input, as someone with engine access
    could: lockstep did not start it."""

    async def start() -> None:
        client = await Client.connect(address)
        history = await client.get_workflow_handle(rid).fetch_history()
        started = history.events[0].workflow_execution_started_event_attributes
        (given,) = await client.data_converter.decode(started.input.payloads)
        await client.start_workflow(
            "lockstep.DeploymentReplica", given, id=new_id, task_queue=started.task_queue.name
        )

    asyncio.run(start())


def test_replicas_changed_by_hand_are_reconciled_or_reported(home: Path, tmp_path: Path) -> None:
    server = Server(home)
    server.start()
    try:
        address = json.loads((home / "server.json").read_text())["temporal"]
        (tmp_path / "drifts.yaml").write_text(PIPELINE)
        _ok(cli(home, "publish", str(tmp_path / "drifts.yaml")))
        plan = _ok(cli(home, "plan", "prod", "--version", "drifts@1"))
        _ok(cli(home, "deploy", "prod", "--plan", plan.stderr.split("--plan ")[1].split()[0]))
        wait_for(lambda: _summary(home) == "converged", timeout=90, what="converged")
        assert _shown(home)["drift_policy"] == "reconcile"

        # reconcile (the default): a replica terminated by hand is started again
        first = _write_ids(home)["1"]
        _ok(subprocess.run([TEMPORAL, "workflow", "terminate", "--address", address,
                            "--workflow-id", first, "--reason", "by hand"],
                           capture_output=True, text=True))  # fmt: skip
        said = "write/1 was terminated outside lockstep; started again"
        wait_for(lambda: said in _drift_events(home), timeout=60, what="the drift recorded")
        wait_for(
            lambda: _summary(home) == "converged" and _running(address, first),
            timeout=60,
            what="the replica started again",
        )

        # report: the next one is held, said on the node, and not started again
        _ok(cli(home, "deployments", "policy", "prod", "--drift", "report", "-m", "hands off"))
        _ok(subprocess.run([TEMPORAL, "workflow", "terminate", "--address", address,
                            "--workflow-id", first, "--reason", "by hand"],
                           capture_output=True, text=True))  # fmt: skip
        held = "drift: write/1 stopped outside lockstep (reported)"
        wait_for(lambda: _summary(home) == held, timeout=60, what="the drift reported")
        observed = _shown(home)["observed_at"]
        wait_for(lambda: _shown(home)["observed_at"] > observed, what="another round")
        assert not _running(address, first) and list(_write_ids(home)) == ["0"]
        shown = _ok(cli(home, "deployments", "show", "prod")).stdout
        assert "drift policy: report" in shown and f"status: {held}" in shown
        assert "  write: pool default, 2 replicas, 1 running: " + held in shown

        # a replica started by hand is reported and left running under report
        extra = first.replace("/write/1/", "/write/9/")
        _start_copy(address, _write_ids(home)["0"], extra)
        wait_for(
            lambda: any(
                e.startswith(f"write/9 ({extra}) was started") for e in _drift_events(home)
            ),
            timeout=60,
            what="the foreign replica reported",
        )
        assert _running(address, extra)

        # back to reconcile: the held replica starts again, the foreign one is stopped
        _ok(cli(home, "deployments", "policy", "prod", "--drift", "reconcile"))
        wait_for(
            lambda: _summary(home) == "converged" and not _running(address, extra),
            timeout=60,
            what="reconciled",
        )
        assert _running(address, first)
        reasons = _drift_events(home)
        assert "write/1: held replica started again (drift policy reconcile)" in reasons
        assert f"write/9 ({extra}) was started outside lockstep; stopped" in reasons
        events = json.loads(_ok(cli(home, "deployments", "events", "prod", "--json")).stdout)
        changed = [(e["actor"], e["reason"]) for e in events if e["kind"] == "policy_changed"]
        assert changed == [("user:admin", "hands off"), ("user:admin", "drift policy reconcile")]
        # the audit log has the people's calls and what the reconciler did by itself
        audit = json.loads(_ok(cli(home, "audit", "--json", "--limit", "500")).stdout)
        actions = {(a["user"], a["action"]) for a in audit}
        assert (None, "RECONCILE /deployments/prod drift") in actions
        assert ("admin", "POST /api/v1/projects/default/deployments/prod/policy") in actions
        assert {"reason": said} in [a["detail"] for a in audit]

        # a policy lockstep does not know: one line, nothing changed
        bad = cli(home, "deployments", "policy", "prod", "--drift", "ignore")
        assert bad.returncode != 0 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
        assert "reconcile" in bad.stderr and "report" in bad.stderr
        assert _shown(home)["drift_policy"] == "reconcile"
    finally:
        server.stop()
