"""Workers on other hosts: separate data directories, no database, only the server's URL and a
token. Steps alternate between two such pools and pass outputs along; snapshots, secrets and
logs travel through the server's API."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import BIN, Server, env_for, wait_for

SPEC = """\
name: hops
steps:
  a:
    runs_on: remote-a
    env: {TOKEN: "${{ secrets.REMOTE_TOKEN }}"}
    run: |
      echo "token $TOKEN"
      echo "x=$(cat data.txt)-a" >> "$LOCKSTEP_OUTPUTS"
      echo "made on a" > made.txt
    artifacts: {made: made.txt}
  b:
    runs_on: remote-b
    needs: [a]
    inputs: {artifacts: [a.made]}
    run: |
      echo "x=${{ steps.a.outputs.x }}-b" >> "$LOCKSTEP_OUTPUTS"
      echo "made=$(cat made.txt)" >> "$LOCKSTEP_OUTPUTS"
      echo "big=$(head -c 100000 /dev/zero | tr '\\0' y)" >> "$LOCKSTEP_OUTPUTS"
  c:
    runs_on: remote-a
    needs: [b]
    with: {big: "${{ steps.b.outputs.big }}"}
    run: |
      echo "x=${{ steps.b.outputs.x }}-c" >> "$LOCKSTEP_OUTPUTS"
      python3 -c "import json, os; print('big', len(json.load(open(os.environ['LOCKSTEP_INPUT']))['big']))"
"""


@pytest.fixture
def remote_workers(server: Server, tmp_path: Path) -> Iterator[dict[str, Path]]:
    homes = {pool: tmp_path / pool for pool in ("remote-a", "remote-b")}
    # a worker token (not the administrator's): the worker API and nothing else
    made = subprocess.run(
        [str(BIN), "workers", "token", "hops"],
        env=env_for(tmp_path, LOCKSTEP_URL=server.url, LOCKSTEP_TOKEN=server.token),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    assert "for worker.hops (shown once)" in made.stderr
    procs = []
    for pool, home in homes.items():
        home.mkdir()
        procs.append(
            subprocess.Popen(
                [str(BIN), "worker", "--pool", pool],
                env=env_for(home, LOCKSTEP_URL=server.url, LOCKSTEP_TOKEN=token),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        )
    try:
        yield homes
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=30)


def test_steps_hop_between_remote_pools(
    server: Server, remote_workers: dict[str, Path], tmp_path: Path
) -> None:
    assert (
        server.http.put("/secrets/REMOTE_TOKEN", json={"value": "hop-secret-1"}).status_code < 300
    )
    work = tmp_path / "snap"
    work.mkdir()
    (work / "data.txt").write_text("data")
    run = server.run_and_wait(SPEC, workdir=work, timeout=90)
    assert run["status"] == "succeeded", run["steps"]
    assert run["steps"]["c"]["outputs"] == {"x": "data-a-b-c"}
    # an output stored by reference, put and fetched by remote workers through the server
    assert run["steps"]["b"]["outputs"]["big"]["__lockstep_ref__"]["size"] == 100_002
    assert "big 100000" in [line["text"] for line in server.logs(run["id"], "c")]
    assert run["steps"]["b"]["outputs"]["made"] == "made on a"  # an artifact across hosts
    pools = {sid: s["history"][0]["worker"].split("/")[1] for sid, s in run["steps"].items()}
    assert pools == {"a": "remote-a", "b": "remote-b", "c": "remote-a"}
    texts = [line["text"] for line in server.logs(run["id"], "a")]
    assert "token ***" in texts and not any("hop-secret-1" in t for t in texts)
    for home in remote_workers.values():
        assert not (home / "lockstep.db").exists() and not (home / "logs").exists()
    live = {w["pool"] for w in server.api.get("/workers").json()}
    assert {"remote-a", "remote-b"} <= live


def test_the_worker_api_gives_a_run_only_its_own_secrets(server: Server) -> None:
    server.http.put("/secrets/OTHER_SECRET", json={"value": "not-yours"})
    spec = (
        "name: asks\nsteps:\n  a:\n    env: {T: '${{ secrets.REMOTE_TOKEN }}'}\n    run: sleep 30\n"
    )
    server.http.put("/secrets/REMOTE_TOKEN", json={"value": "v"})
    run_id = server.submit(spec)["id"]
    wait_for(lambda: server.run(run_id)["status"] == "running", timeout=30)
    body = {"project": "default", "run_id": run_id, "names": ["OTHER_SECRET"]}
    refused = server.api.post("/worker/secrets", json=body)
    assert refused.status_code == 403 and "does not use OTHER_SECRET" in refused.text
    body["names"] = ["REMOTE_TOKEN"]
    assert server.api.post("/worker/secrets", json=body).json() == {"values": {"REMOTE_TOKEN": "v"}}
    server.http.post(f"/runs/{run_id}/cancel")
    server.wait(run_id)
    finished = server.api.post("/worker/secrets", json=body)
    assert finished.status_code == 403 and "not running" in finished.text
