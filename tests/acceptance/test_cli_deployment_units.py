"""A pipeline whose nodes use all of what a replica can carry: a source and an `image:` transform
joined by a `local` channel in one placement group (one replica process on a `lockstep worker`
of pool `work`), the transform in a real Podman container using a project secret, and a sink
over a `stream` channel; the workers of pool `work` are remote (the server's API gives them
the secret). The secret's value reaches the program and nowhere else; the container
goes with its replica (deleted deployment, worker killed -9); a missing secret or image is said
in one line, with nothing started or restarted in a loop."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import docker

from tests.acceptance.test_cli_deployment_replicas import SINK
from tests.harness import BIN, Server, api_get, cli, env_for, wait_for
from tests.podman import Podman

N = 120
TOKEN = "tok-5ecr3t-value-0042"

SOURCE = """\
import json, os, sys, time
for n in range(int(os.environ["N"])):
    print(json.dumps({"emit": {"to": "out", "data": {"n": n}}}), flush=True)
while True:
    time.sleep(3600)
"""
# busybox sh in the test image: the record's data passed on with a digest of the secret (the
# value itself would land in the stream's files), the value printed to its log to be masked
TRANSFORM = r"""
echo "starting with token $TOKEN" >&2
sum=$(printf %s "$TOKEN" | md5sum | cut -c1-32)
while IFS= read -r line; do
  id=${line#*\"id\":\"}; id=${id%%\"*}
  data=${line#*\"data\":}; data=${data%\}}
  echo "{\"emit\":{\"to\":\"out\",\"data\":{\"in\":$data,\"sum\":\"$sum\",\"host\":\"$(hostname)\"}}}"
  echo "{\"ack\":\"$id\"}"
done
"""


def _pipeline(d: Path, image: str, name: str = "units") -> str:
    (d / "source.py").write_text(SOURCE)
    (d / "sink.py").write_text(SINK)
    return f"""\
kind: pipeline
name: {name}
nodes:
  read:
    kind: source
    group: work
    run: [python3, {d / "source.py"}]
    env: {{N: "{N}"}}
  fix:
    kind: transform
    group: work
    image: {image}
    run: {json.dumps(TRANSFORM)}
    secrets: [TOKEN]
    resources: {{cpu: "0.5", memory: 64Mi}}
    from: [{{node: read, class: local}}]
    restart: {{backoff: 0.2s, crash_loop_after: 2}}
  write:
    kind: sink
    run: [python3, {d / "sink.py"}]
    env: {{OUT: "{d / "out.jsonl"}"}}
    from: [{{node: fix, ack_wait: 3s}}]
placement: {{work: work}}
"""


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    return proc


def _deploy(home: Path, name: str, version: str) -> None:
    plan = _ok(cli(home, "plan", name, "--version", version))
    _ok(cli(home, "deploy", name, "--plan", plan.stderr.split("--plan ")[1].split()[0]))


def _status(home: Path, name: str = "prod") -> dict[str, Any]:
    shown = api_get(home, f"/deployments/{name}")  # polled: no process a try
    return shown.get("status") or {}


def _workloads(home: Path) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = api_get(home, "/workloads")
    return rows


def _received(d: Path) -> list[dict[str, Any]]:
    out = d / "out.jsonl"
    lines = out.read_text().splitlines() if out.exists() else []
    return [json.loads(line) for line in lines if line.endswith("}")]


def _containers(podman: Podman) -> list[dict[str, Any]]:
    """The node containers there are, running or not."""
    api = docker.APIClient(base_url=podman.socket)
    try:
        found: list[dict[str, Any]] = api.containers(
            all=True, filters={"label": ["lockstep.managed=1", "lockstep.worker"]}
        )
        return [c for c in found if c["Names"] and "lockstep-node-" in c["Names"][0]]
    finally:
        api.close()


def _leaks(*roots: Path) -> list[str]:
    """Files holding the secret's value (the DB holds it encrypted); files come and go
    meanwhile (os.walk closes what it lists, whatever vanishes)."""
    found = []
    for root in roots:
        for where, _, files in os.walk(root):
            for name in files:
                path = Path(where, name)
                try:
                    if TOKEN.encode() in path.read_bytes():
                        found.append(str(path))
                except OSError:
                    continue
    return found


def test_an_image_node_with_a_secret_in_a_local_group(
    home: Path, tmp_path: Path, podman: Podman
) -> None:
    socket = podman.socket
    server = Server(home, LOCKSTEP_CONTAINER_HOST=socket, LOCKSTEP_REPLICA_HEARTBEAT_TIMEOUT="6")
    server.start()
    # workers on "other hosts": no database, secrets asked of the server's API
    homes = [tmp_path / f"worker{i}" for i in range(2)]
    for where in homes:
        where.mkdir()
    logs = [where / "worker.log" for where in homes]
    outs = [log.open("w") for log in logs]
    remote = {"LOCKSTEP_URL": server.url, "LOCKSTEP_TOKEN": server.token}
    workers = [
        subprocess.Popen(
            [str(BIN), "worker", "--pool", "work"],
            env=env_for(where, LOCKSTEP_CONTAINER_HOST=socket, **remote),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        for where, out in zip(homes, outs, strict=True)
    ]
    try:
        wait_for(
            lambda: sum(w["pool"] == "work" for w in server.api.get("/workers").json()) == 2,
            timeout=60,
            what="two workers of pool work",
        )
        d = tmp_path / "pipe"
        d.mkdir()
        (tmp_path / "units.yaml").write_text(_pipeline(d, podman.image))
        _ok(cli(home, "publish", str(tmp_path / "units.yaml")))

        # the secret is not set yet: the unit waits, said in one line, nothing started
        _deploy(home, "prod", "units@1")
        said = wait_for(
            lambda: (_status(home).get("nodes") or {}).get("fix", {}).get("message"),
            timeout=60,
            what="the unit's reason",
        )
        assert said.startswith("pending: secret TOKEN is not set in project ")
        assert "lockstep secrets set TOKEN" in said
        assert [r for r in _workloads(home) if r["node"] in ("read", "fix")] == []
        assert _containers(podman) == []

        _ok(cli(home, "secrets", "set", "TOKEN", input=TOKEN))
        wait_for(lambda: len(_received(d)) >= N, timeout=120, what="every record at the sink")
        got = _received(d)
        assert sorted(r["in"]["n"] for r in got) == list(range(N))  # none lost
        # the program saw the value, and ran in a container (its hostname is the container's)
        assert {r["sum"] for r in got} == {hashlib.md5(TOKEN.encode()).hexdigest()}
        (box,) = _containers(podman)
        assert {r["host"] for r in got} == {box["Id"][:12]}
        assert box["State"] == "running"
        limits = docker.APIClient(base_url=socket).inspect_container(box["Id"])["HostConfig"]
        assert (limits["Memory"], limits["NanoCpus"]) == (64 << 20, 500_000_000)

        # one replica process runs both nodes of the group, on a worker of pool work
        (unit,) = [r for r in _workloads(home) if r["node"] in ("read", "fix")]
        assert (unit["node"], unit["pool"], unit["state"]) == ("read", "work", "running")
        nodes = _status(home)["nodes"]
        assert {n: nodes[n]["actual"] for n in nodes} == {"read": 1, "fix": 1, "write": 1}
        # each node of the unit with its own counters
        counted = wait_for(
            lambda: (n := _status(home)["nodes"])["fix"]["records_in"] == N and n,
            what="the transform's counters",
        )
        assert (counted["read"]["records_out"], counted["fix"]["records_out"]) == (N, N)

        # the value is in no log, file of the home, or output a user sees
        shown = [
            _ok(cli(home, *args)).stdout
            for args in (
                ("deployments", "show", "prod", "--json"),
                ("deployments", "events", "prod", "--json"),
                ("workloads", "--json"),
            )
        ]
        assert not [s for s in shown if TOKEN in s]
        assert _leaks(home, *homes) == []
        # the server gives a replica's worker only what the deployed version names
        (rid,) = [r["id"] for r in _status(home)["replicas"] if r["node"] == "read"]
        asked = {"project": rid.split("/")[1], "run_id": rid, "names": ["TOKEN"]}
        assert server.api.post("/worker/secrets", json=asked).json() == {"values": {"TOKEN": TOKEN}}
        other = server.api.post("/worker/secrets", json={**asked, "names": ["OTHER"]})
        assert other.status_code == 403 and "does not use OTHER" in other.text

        # the worker running the unit killed -9: its container goes, the unit runs elsewhere
        victim = next(w for w in workers if unit["worker"].endswith(f"/{w.pid}"))
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait(timeout=30)
        wait_for(
            lambda: box["Id"] not in {c["Id"] for c in _containers(podman)},
            timeout=60,
            what="the killed worker's container removed",
        )
        wait_for(
            lambda: [c for c in _containers(podman) if c["State"] == "running"],
            timeout=120,
            what="the unit's container started again on the other worker",
        )

        _ok(cli(home, "deployments", "delete", "prod"))
        wait_for(lambda: _containers(podman) == [], timeout=60, what="no container after delete")
        gone = server.api.post("/worker/secrets", json=asked)
        assert gone.status_code == 403 and "is not deployed" in gone.text

        # an image that is not there: degraded with one line, not restarted in a loop
        (tmp_path / "bad.yaml").write_text(
            _pipeline(d, "localhost/lockstep-test/missing:1", name="bad")
        )
        _ok(cli(home, "publish", str(tmp_path / "bad.yaml")))
        _deploy(home, "broken", "bad@1")
        summary = wait_for(
            lambda: "degraded" in (s := _status(home, "broken").get("summary") or "") and s,
            timeout=120,
            what="the unit degraded",
        )
        assert "image 'localhost/lockstep-test/missing:1' not found" in summary, summary
        assert "\n" not in summary
        (row,) = [r for r in _workloads(home) if r["node"] == "read"]
        # crash_loop_after: 2 — one program restart, then left stopped; a loaded machine may
        # add retries of the activity itself (a late heartbeat), never a busy loop
        assert row["state"] == "degraded" and 1 <= row["restarts"] <= 10, row
        assert _containers(podman) == []
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(timeout=30)
        for out in outs:
            out.close()
        server.stop()
