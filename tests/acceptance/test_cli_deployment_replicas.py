"""A deployed pipeline really runs: its replicas are started on workers of their pools (separate
`lockstep worker` processes), records move source -> transform x3 -> sink over `stream`
channels (the server's embedded broker) with none lost, and a worker killed outright has its
replicas started on another worker of the pool, still losing nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tests.harness import BIN, Server, api_get, cli, env_for, wait_for

FIRST, SECOND, THIRD = 150, 150, 150

SOURCE = """\
import json, os, sys, time
from pathlib import Path
here = Path(os.environ["DIR"])
offset = here / "offset"
start = int(offset.read_text() or 0) if offset.exists() else 0
def emit(n):
    print(json.dumps({"emit": {"to": "out", "data": {"n": n}}}), flush=True)
    (here / "offset.new").write_text(str(n + 1))  # atomic: a kill between never empties it
    os.replace(here / "offset.new", offset)
for n in range(start, FIRST):
    emit(n)
while not (here / "go").exists():
    time.sleep(0.05)
for n in range(max(start, FIRST), FIRST + SECOND):
    emit(n)
while not (here / "go3").exists():
    time.sleep(0.05)
for n in range(max(start, FIRST + SECOND), FIRST + SECOND + THIRD):
    emit(n)
while True:
    time.sleep(3600)
"""
TRANSFORM = """\
import json, sys
for line in sys.stdin:
    record = json.loads(line)
    print(json.dumps({"emit": {"to": "out", "data": {"n": record["data"]["n"] * 10}}}))
    print(json.dumps({"ack": record["id"]}), flush=True)
"""
SINK = """\
import json, os, sys
with open(os.environ["OUT"], "a") as out:
    for line in sys.stdin:
        record = json.loads(line)
        out.write(json.dumps(record["data"]) + "\\n")
        out.flush()
        print(json.dumps({"ack": record["id"]}), flush=True)
"""


def _pipeline(d: Path, version: int = 1) -> str:
    (d / "source.py").write_text(f"FIRST, SECOND, THIRD = {FIRST}, {SECOND}, {THIRD}\n" + SOURCE)
    (d / "transform.py").write_text(TRANSFORM)
    (d / "sink.py").write_text(SINK)
    return f"""\
kind: pipeline
name: moves
nodes:
  read:
    kind: source
    run: [python3, {d / "source.py"}]
    env: {{DIR: "{d}"}}
  fix:
    kind: transform
    run: [python3, {d / "transform.py"}]
    env: {{VERSION: "{version}"}}
    # a killed replica's unacked records go to the other one after 3s (default 30s)
    from: [{{node: read, ack_wait: 3s}}]
  write:
    kind: sink
    run: [python3, {d / "sink.py"}]
    env: {{OUT: "{d / "out.jsonl"}"}}
    from: [{{node: fix, ack_wait: 3s}}]
placement: {{fix: work}}
replicas: {{fix: 3}}
"""


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    return proc


def _status(home: Path) -> dict[str, Any]:
    shown = api_get(home, "/deployments/prod")  # polled: no process a try
    return shown.get("status") or {}


def _received(d: Path) -> list[int]:
    out = d / "out.jsonl"
    lines = out.read_text().splitlines() if out.exists() else []
    return [json.loads(line)["n"] for line in lines if line.endswith("}")]


def _workers(server: Server, count: int) -> Iterator[subprocess.Popen[str]]:
    for _ in range(count):
        yield subprocess.Popen(
            [str(BIN), "worker", "--pool", "work"],
            env=env_for(server.home),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )


def _programs(d: Path) -> list[int]:
    """Processes running one of the pipeline's node programs, wherever they were started."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(a.startswith(str(d).encode()) and a.endswith(b".py") for a in argv):
            found.append(int(proc.name))
    return found


def _workloads(home: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api_get(home, "/workloads")
    return rows


def _fix_workers(home: Path) -> set[str]:
    """The workers the transform's current replicas run on (`lockstep workloads`)."""
    return {
        r["worker"]
        for r in _workloads(home)
        if r["node"] == "fix" and r["state"] == "running" and r["current"]
    }


def test_replicas_move_records_and_survive_a_killed_worker(home: Path, tmp_path: Path) -> None:
    # a short replica heartbeat timeout: a killed worker's replicas move within seconds
    server = Server(home, LOCKSTEP_REPLICA_HEARTBEAT_TIMEOUT="10")
    server.start()
    workers = list(_workers(server, 2))
    try:
        wait_for(
            lambda: sum(w["pool"] == "work" for w in server.api.get("/workers").json()) == 2,
            timeout=60,
            what="two workers of pool work",
        )
        d = tmp_path / "pipe"
        d.mkdir()
        (tmp_path / "moves.yaml").write_text(_pipeline(d))
        _ok(cli(home, "publish", str(tmp_path / "moves.yaml")))
        plan = _ok(cli(home, "plan", "prod", "--version", "moves@1"))
        assert "  + fix: create on pool work, 3 replicas" in plan.stdout
        plan_id = plan.stderr.split("--plan ")[1].split()[0]
        _ok(cli(home, "deploy", "prod", "--plan", plan_id))

        status = wait_for(
            lambda: (s := _status(home)).get("summary") == "converged" and s,
            timeout=90,
            what="every replica running",
        )
        nodes = status["nodes"]
        assert {n: (v["pool"], v["actual"]) for n, v in nodes.items()} == {
            "read": ("default", 1),
            "fix": ("work", 3),
            "write": ("default", 1),
        }
        wait_for(lambda: len(set(_received(d))) == FIRST, timeout=60, what="the first records")
        # what runs where: the source and sink on the server's worker, the transform on pool work
        seen = sorted(_workloads(home), key=lambda r: (r["node"], r["replica"]))
        assert sorted((r["deployment"], r["node"], r["pool"]) for r in seen) == [
            ("prod", "fix", "work"),
            ("prod", "fix", "work"),
            ("prod", "fix", "work"),
            ("prod", "read", "default"),
            ("prod", "write", "default"),
        ]
        assert all(r["worker"] and r["since"] and r["state"] == "running" for r in seen)
        wait_for(
            lambda: sum(r["records_out"] for r in _workloads(home) if r["node"] == "read") == FIRST,
            timeout=90,
            what="the source's records counted",
        )
        table = _ok(cli(home, "workloads", "--deployment", "prod")).stdout
        assert f"prod read/0 running on {seen[3]['worker']} since " in table
        assert f", pool default: restarts 0, records in 0 out {FIRST}, lag 0, errors 0" in table

        # kill -9 a worker running transform replicas, while the second half is flowing
        # (one that has taken records: both replicas share the stream's consumer)
        fix_rows = [r for r in _workloads(home) if r["node"] == "fix"]
        busy = max(fix_rows, key=lambda r: r["records_in"])["worker"]
        assert max(r["records_in"] for r in fix_rows) > 0
        victim = next(w for w in workers if busy.endswith(f"/{w.pid}"))
        (d / "go").touch()
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)

        def moved() -> bool:
            on = _fix_workers(home)
            return len(on) > 0 and busy not in on and _status(home)["nodes"]["fix"]["actual"] == 3

        wait_for(moved, timeout=120, what="the transform's replicas on the other worker")
        wait_for(
            lambda: len(set(_received(d))) == FIRST + SECOND,
            timeout=120,
            what="every record at the sink",
        )
        got = _received(d)
        assert set(got) == {n * 10 for n in range(FIRST + SECOND)}  # none lost
        duplicates = len(got) - len(set(got))  # at-least-once: a killed replica's records again
        print(f"{len(got)} records received, {duplicates} duplicates")
        fix = _status(home)["nodes"]["fix"]
        assert fix["restarts"] >= 1 and fix["records_in"] > 0
        _rolls_without_losing_records(home, tmp_path, d)
        _scales_down(home)
        assert _programs(d), "the node programs run"
        _ok(cli(home, "deployments", "delete", "prod"))
        wait_for(lambda: not _programs(d), timeout=60, what="the replicas stopped on delete")
        assert _workloads(home) == []
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(timeout=30)
        server.stop()


def _scales_down(home: Path) -> None:
    """--replicas fix=1: the replicas beyond the count are stopped, the first left running."""

    def fixes() -> set[tuple[str, str, str]]:
        return {
            (r["replica"], r["worker"], r["since"]) for r in _workloads(home) if r["node"] == "fix"
        }

    kept = {f for f in fixes() if f[0] == "0"}
    plan = _ok(cli(home, "plan", "prod", "--version", "moves@2", "--replicas", "fix=1"))
    assert "fix" in plan.stdout and "3 -> 1" in plan.stdout, plan.stdout
    _ok(cli(home, "deploy", "prod", "--plan", plan.stderr.split("--plan ")[1].split()[0]))
    wait_for(
        lambda: fixes() == kept,
        timeout=60,
        what="the transform replicas beyond the first stopped",
    )
    fix = wait_for(
        lambda: (n := _status(home)["nodes"]["fix"])["state"] == "running" and n,
        what="the node's status",
    )
    assert (fix["desired"], fix["actual"]) == (1, 1)


def _rolls_without_losing_records(home: Path, tmp_path: Path, d: Path) -> None:
    """Version 2 changes the transform: its new replicas start, then the old ones stop, while
    the source sends the third batch; nothing is lost and only new replicas remain."""
    before = {(r["node"], r["replica"]): r["worker"] for r in _workloads(home)}
    (tmp_path / "moves.yaml").write_text(_pipeline(d, version=2))
    _ok(cli(home, "publish", str(tmp_path / "moves.yaml")))
    plan = _ok(cli(home, "plan", "prod", "--version", "moves@2"))
    assert "  ~ fix: update" in plan.stdout and "read:" not in plan.stdout
    _ok(cli(home, "deploy", "prod", "--plan", plan.stderr.split("--plan ")[1].split()[0]))
    (d / "go3").touch()
    wait_for(
        lambda: len(set(_received(d))) == FIRST + SECOND + THIRD,
        timeout=120,
        what="the third batch at the sink",
    )
    assert set(_received(d)) == {n * 10 for n in range(FIRST + SECOND + THIRD)}

    def rolled() -> list[dict[str, Any]] | None:
        rows = _workloads(home)
        fix = [r for r in rows if r["node"] == "fix"]
        done = len(fix) == 3 and all(r["current"] and r["state"] == "running" for r in fix)
        return rows if done and _status(home)["summary"] == "converged" else None

    rows = wait_for(rolled, timeout=120, what="the transform rolled to version 2")
    # the source and sink were not restarted by a deploy that did not change them
    after = {(r["node"], r["replica"]): r["worker"] for r in rows}
    assert after[("read", "0")] == before[("read", "0")]
    events = json.loads(_ok(cli(home, "deployments", "events", "prod", "--json")).stdout)
    kinds = [e["kind"] for e in events]
    assert kinds.count("deployed") == 2
    # node by node: the new transform replicas started before the old ones were stopped
    rolled_at = len(kinds) - 1 - kinds[::-1].index("deployed")
    fix = [
        (e["kind"], e["reason"])
        for e in events[rolled_at:]
        if (e["reason"] or "").startswith("fix/")
    ]
    assert sorted(fix) == [
        ("replica_started", "fix/0 on pool work"),
        ("replica_started", "fix/1 on pool work"),
        ("replica_started", "fix/2 on pool work"),
        ("replica_stopped", "fix/0: replaced or no longer desired"),
        ("replica_stopped", "fix/1: replaced or no longer desired"),
        ("replica_stopped", "fix/2: replaced or no longer desired"),
    ]
    assert [k for k, _ in fix] == ["replica_started"] * 3 + ["replica_stopped"] * 3


CRASHING = """\
kind: pipeline
name: crashes
nodes:
  read:
    kind: source
    run: echo cannot start >&2; exit 3
    restart: {backoff: 0.2s, crash_loop_after: 4}
  write:
    kind: sink
    run: cat > /dev/null
    from: [read]
"""


def test_a_crash_looping_node_is_degraded_not_restarted_forever(home: Path, tmp_path: Path) -> None:
    server = Server(home)
    server.start()
    try:
        (tmp_path / "crashes.yaml").write_text(CRASHING)
        _ok(cli(home, "publish", str(tmp_path / "crashes.yaml")))
        plan = _ok(cli(home, "plan", "prod", "--version", "crashes@1"))
        _ok(cli(home, "deploy", "prod", "--plan", plan.stderr.split("--plan ")[1].split()[0]))
        said = "read degraded: crash loop, last exit: exited with code 3"
        wait_for(lambda: _status(home).get("summary") == said, timeout=120, what="degraded")
        (read,) = [r for r in _workloads(home) if r["node"] == "read"]
        # four quick exits (its restart: crash_loop_after): three restarts with backoff, then
        # left stopped (no busy loop)
        assert (read["state"], read["restarts"]) == ("degraded", 3)
        assert read["last_error"] == "exited with code 3"
        shown = _ok(cli(home, "deployments", "show", "prod")).stdout
        assert f"status: {said}" in shown
    finally:
        server.stop()


def test_a_broker_that_cannot_be_reached_is_said_on_the_nodes(home: Path, tmp_path: Path) -> None:
    # LOCKSTEP_NATS_URL names the broker; nothing listens on port 9 (discard) here
    server = Server(home, LOCKSTEP_NATS_URL="nats://127.0.0.1:9")
    server.start()
    try:
        (tmp_path / "crashes.yaml").write_text(CRASHING)
        _ok(cli(home, "publish", str(tmp_path / "crashes.yaml")))
        plan = _ok(cli(home, "plan", "prod", "--version", "crashes@1"))
        _ok(cli(home, "deploy", "prod", "--plan", plan.stderr.split("--plan ")[1].split()[0]))
        nodes = wait_for(
            lambda: (
                (_status(home).get("nodes") or {}).get("read", {}).get("state") == "pending"
                and _status(home)["nodes"]
            ),
            timeout=60,
            what="the nodes' status",
        )
        for node in ("read", "write"):
            message = nodes[node]["message"]
            assert message.startswith(
                "pending: cannot reach the stream broker at nats://127.0.0.1:9"
            )
            assert "fix LOCKSTEP_NATS_URL" in message
        assert _workloads(home) == []  # nothing was started
    finally:
        server.stop()
