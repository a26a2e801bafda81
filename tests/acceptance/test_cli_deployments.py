"""`lockstep plan|deploy|rollback` and `lockstep deployments …` as a user types them, against
a running server: plan -> deploy -> edit -> the plan shows the exact change set -> a stale plan
is refused -> rollback restores the old desired state; and bad input changes nothing."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

from tests.harness import BIN, Server, api_get, cli, env_for, wait_for

V1 = """\
kind: pipeline
name: orders
contracts:
  order: {type: object, required: [id]}
nodes:
  read:
    kind: source
    run: python3 read.py
    outputs: {orders: order}
  enrich:
    kind: transform
    group: work
    run: python3 enrich.py
    stateful: true
    inputs: {orders: order}
    from: [read]
  write:
    kind: sink
    group: work
    run: python3 write.py
    from: [{node: enrich, class: local}]
replicas: {work: 2}
"""
#: version 2: enrich runs another program, write reads over a stream, a new audit sink
V2 = (
    V1.replace("run: python3 enrich.py", "run: python3 enrich.py --fast")
    .replace("{node: enrich, class: local}", "{node: enrich, class: stream}")
    .replace("replicas:", "  audit:\n    kind: sink\n    run: cat\n    from: [read]\nreplicas:")
)
WORKFLOW = "name: plain\nsteps:\n  a:\n    run: echo hi\n"


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    return proc


def _refused(proc: subprocess.CompletedProcess[str], says: str) -> None:
    assert proc.returncode != 0, proc.stdout
    assert proc.stderr.count("\n") == 1 and says in proc.stderr, proc.stderr


def _plan_id(proc: subprocess.CompletedProcess[str]) -> str:
    found = re.search(r"lockstep deploy \S+ --plan ([0-9a-f]{16})", proc.stderr)
    assert found, proc.stderr
    return found.group(1)


def _show(home: Path, name: str = "prod") -> dict[str, Any]:
    shown: dict[str, Any] = api_get(home, f"/deployments/{name}")  # polled: no process a try
    return shown


def _publish(home: Path, file: Path, text: str) -> None:
    file.write_text(text)
    _ok(cli(home, "publish", str(file)))


def _join_pool(server: Server, pool: str) -> None:
    """A worker of ``pool`` joins and leaves: the pool now exists for placement."""
    worker = subprocess.Popen(
        [str(BIN), "worker", "--pool", pool],
        env=env_for(server.home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for(
            lambda: any(w["pool"] == pool for w in server.api.get("/workers").json()),
            timeout=60,
            what=f"a worker of pool {pool}",
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_plan_deploy_edit_stale_rollback_from_the_cli(home: Path, tmp_path: Path) -> None:
    server = Server(home)
    server.start()
    try:
        _join_pool(server, "ingest")
        _scenario(home, tmp_path)
        _bad_input(home, tmp_path)
    finally:
        server.stop()


def _scenario(home: Path, tmp_path: Path) -> None:
    file = tmp_path / "orders.yaml"
    _publish(home, file, V1)
    _ok(cli(home, "tags", "set", "orders", "$LIVE", "1"))

    first = _ok(
        cli(home, "plan", "prod", "--version", "orders@$LIVE", "--placement", "read=ingest")
    )
    assert "nothing deployed -> version 1 (orders@$LIVE)" in first.stdout
    assert "  + read: create on pool ingest, 1 replicas" in first.stdout
    assert "  + enrich: create on pool default, 2 replicas" in first.stdout
    assert "  + channel enrich.out -> write.in (local)" in first.stdout
    assert "  roll order: write, enrich, read" in first.stdout
    deployed = _ok(cli(home, "deploy", "prod", "--plan", _plan_id(first), "-m", "go live"))
    assert "generation 1, version 1" in deployed.stderr
    assert _show(home)["nodes"] == {
        "read": {"group": "read", "pool": "ingest", "replicas": 1},
        "enrich": {"group": "work", "pool": "default", "replicas": 2},
        "write": {"group": "work", "pool": "default", "replicas": 2},
    }
    # the deployment's controller records desired against actual: pool ingest has no worker
    waiting = "waiting: pool ingest has 0 free slots"
    wait_for(
        lambda: (_show(home).get("status") or {}).get("summary") == waiting,
        timeout=60,
        what="the controller to report the empty pool",
    )
    seen = _show(home)["status"]["nodes"]
    assert seen["read"] == {
        "pool": "ingest",
        "desired": 1,
        "actual": 0,
        "state": "waiting",
        "message": waiting,
        "restarts": 0,
        "records_in": 0,
        "records_out": 0,
        "lag": 0,
        "last_error": None,
    }
    assert seen["enrich"]["desired"] == 2 and seen["write"]["desired"] == 2
    shown = _ok(cli(home, "deployments", "show", "prod")).stdout
    assert f"  read: pool ingest, 1 replicas, 0 running: {waiting}" in shown

    # edit: version 2 is published; the plan shows exactly what changes, placement kept
    _publish(home, file, V2)
    second = _ok(cli(home, "plan", "prod", "--version", "orders@2", "--replicas", "work=3"))
    lines = second.stdout.splitlines()
    assert lines[1:] == [
        "  ~ enrich: update",
        "      run: 'python3 enrich.py' -> 'python3 enrich.py --fast'",
        "      replicas: 2 -> 3",
        "    ! enrich: state built by the old program is kept; pass --recompute to rebuild it",
        "  ~ write: update",
        "      replicas: 2 -> 3",
        "  + audit: create on pool default, 1 replicas",
        "  ~ channel enrich.out -> write.in: class local -> stream",
        "    ! channel enrich.out -> write.in: records queued on the old local channel are not "
        "moved to the new one",
        "  + channel read.orders -> audit.in (stream)",
        "  roll order: write, enrich, audit",
    ], second.stdout
    plan2 = _plan_id(second)
    same = _ok(cli(home, "plan", "prod", "--version", "orders@2", "--replicas", "work=3"))
    assert _plan_id(same) == plan2  # the same request against the same deployment
    recompute = _ok(cli(home, "plan", "prod", "--version", "orders@2", "--recompute"))
    assert "! enrich: state is recomputed from its input (--recompute)" in recompute.stdout

    # a plan against generation 1 goes stale once another plan is deployed
    other = _plan_id(
        _ok(cli(home, "plan", "prod", "--version", "orders@1", "--replicas", "work=4"))
    )
    _ok(cli(home, "deploy", "prod", "--plan", plan2))
    _refused(cli(home, "deploy", "prod", "--plan", other), f"plan {other} is stale")
    now = _show(home)
    assert (now["generation"], now["desired"]["version"]) == (2, 2)
    assert now["nodes"]["write"] == {"group": "work", "pool": "default", "replicas": 3}
    assert now["nodes"]["read"]["pool"] == "ingest"

    # the selector of a plan moving elsewhere makes it stale too
    live = _plan_id(_ok(cli(home, "plan", "prod", "--version", "orders@$LIVE")))
    _ok(cli(home, "tags", "set", "orders", "$LIVE", "2"))
    _refused(cli(home, "deploy", "prod", "--plan", live), "orders@$LIVE now names version 2")
    assert _show(home)["generation"] == 2

    # rollback: the previous deploy's desired state, through the same path
    back = _ok(cli(home, "rollback", "prod", "-m", "enrich --fast drops rows"))
    assert "version 2 -> version 1 (orders@1)" in back.stdout
    assert "  - audit: delete (pool default, 1 replicas)" in back.stdout
    restored = _show(home)
    assert (restored["generation"], restored["desired"]["version"]) == (3, 1)
    assert restored["nodes"] == {
        "read": {"group": "read", "pool": "ingest", "replicas": 1},
        "enrich": {"group": "work", "pool": "default", "replicas": 2},
        "write": {"group": "work", "pool": "default", "replicas": 2},
    }
    assert [r["action"] for r in restored["revisions"]] == ["rollback", "deploy", "deploy"]
    again = _ok(cli(home, "rollback", "prod", "--to", "2"))  # the latest deploy of version 2
    assert "version 1 -> version 2 (orders@2)" in again.stdout
    assert _show(home)["nodes"]["write"]["replicas"] == 3

    # pause / resume, and every change is an event with who and why
    _ok(cli(home, "deployments", "pause", "prod", "-m", "maintenance"))
    assert _show(home)["state"] == "paused"
    _ok(cli(home, "deployments", "resume", "prod"))
    events = json.loads(_ok(cli(home, "deployments", "events", "prod", "--json")).stdout)
    kinds = [e["kind"] for e in events if e["actor"] != "reconciler"]
    assert kinds.count("deployed") == 2 and kinds.count("rolled_back") == 2
    assert kinds[-2:] == ["paused", "resumed"] and "planned" in kinds
    assert {e["actor"] for e in events} == {"user:admin", "reconciler"}
    assert any(e["kind"] == "status" and e["reason"] == waiting for e in events)
    assert {e["reason"] for e in events} >= {"go live", "enrich --fast drops rows", "maintenance"}
    audit = _ok(cli(home, "audit", "--json")).stdout
    assert "/deployments/prod/deploy" in audit and "/deployments/prod/rollback" in audit

    listed = json.loads(_ok(cli(home, "deployments", "list", "--json")).stdout)
    assert [(d["name"], d["desired"]["version"]) for d in listed] == [("prod", 2)]


def _bad_input(home: Path, tmp_path: Path) -> None:
    before = _show(home)

    def unchanged() -> None:
        after = _show(home)
        assert (after["generation"], after["desired"]) == (before["generation"], before["desired"])

    cases = [
        (("--placement", "read=nowhere"), "pool 'nowhere' (placement of 'read') does not exist"),
        (("--replicas", "work=-1"), "replicas of 'work' must be between 0 and 100, got -1"),
        (("--replicas", "work=1000"), "replicas of 'work' must be between 0 and 100, got 1000"),
        (("--replicas", "enrich=2"), "node 'enrich' is placed and scaled with its group 'work'"),
        (("--placement", "ghost=ingest"), "names 'ghost', which is no node or group of orders"),
    ]
    for extra, says in cases:
        _refused(cli(home, "plan", "prod", "--version", "orders@2", *extra), says)
    _publish(home, tmp_path / "other.yaml", V1.replace("name: orders", "name: other"))
    _refused(
        cli(home, "plan", "prod", "--version", "other@1"),
        "deployment 'prod' deploys definition 'orders'; other@1 is a version of 'other'",
    )
    _publish(home, tmp_path / "plain.yaml", WORKFLOW)
    _refused(
        cli(home, "plan", "new", "--version", "plain@1"), "plain@1 is a workflow, not a pipeline"
    )
    _refused(cli(home, "run", "orders@1"), "'orders' is a pipeline (kind: pipeline)")
    cyclic = tmp_path / "orders.yaml"  # write turned into a transform feeding enrich
    cyclic.write_text(
        V1.replace("    from: [read]\n", "    from: [read, write]\n").replace(
            "kind: sink", "kind: transform"
        )
    )
    bad = cli(home, "validate", str(cyclic))
    assert bad.returncode == 1
    assert re.search(
        rf"^error: {cyclic}:16:18: cycle: enrich <- write <- enrich$", bad.stderr, re.M
    )
    _refused(cli(home, "publish", str(cyclic)), "cycle: enrich <- write <- enrich")
    _refused(cli(home, "deploy", "prod", "--plan", "0" * 16), "plan '0000000000000000'")
    unchanged()
    assert [d["name"] for d in json.loads(cli(home, "deployments", "list", "--json").stdout)] == [
        "prod"
    ]
    _ok(cli(home, "deployments", "delete", "prod", "-m", "retired"))
    _refused(cli(home, "deployments", "show", "prod"), "deployment 'prod' not found")
