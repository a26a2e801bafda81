"""Placement: an instance's pool sends its steps to the workers of that pool, and nowhere else."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tests.gitrepo import Repo
from tests.harness import BIN, Server, env_for, wait_for

SPEC = 'name: placed\nsteps:\n  where:\n    run: echo "pool=$LOCKSTEP_RUN_ID" >/dev/null\n'


def test_an_instance_pool_places_its_steps_on_that_pools_workers(
    server: Server, tmp_path: Path
) -> None:
    repo = Repo(tmp_path / "placed")
    repo.commit({"workflow.yaml": SPEC})
    repo.push("main")
    server.http.post("/repositories", json={"url": repo.url, "name": "placed", "poll_s": 86400})
    assert server.http.post("/repositories/placed/scan").status_code == 200
    created = server.http.post(
        "/instances",
        json={"name": "placed-gpu", "definition": "placed", "ref": "main", "pool": "gpu-a"},
    )
    assert created.status_code == 201, created.text
    listed = {i["name"]: i for i in server.http.get("/instances").json()}
    assert listed["placed-gpu"]["pool"] == "gpu-a"

    run_id = server.http.post("/instances/placed-gpu/runs", json={}).json()["id"]
    # no worker serves pool gpu-a yet: the server's own default-pool worker must not take it
    wait_for(lambda: server.run(run_id)["status"] == "running", timeout=30)
    waiting = server.run(run_id)["steps"]["where"]["history"]
    assert [(a["worker"], a["started_at"]) for a in waiting] == [(None, None)]  # scheduled only

    worker = subprocess.Popen(
        [str(BIN), "worker", "--pool", "gpu-a"],
        env=env_for(server.home, LOCKSTEP_GIT_ALLOW_FILE="true"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        run = server.wait(run_id, timeout=60)
        assert run["status"] == "succeeded", run["steps"]
        assert run["pool"] == "gpu-a"
        attempt = run["steps"]["where"]["history"][0]
        assert "/gpu-a/" in attempt["worker"] and str(worker.pid) in attempt["worker"]
        # a rerun keeps the placement
        again = server.http.post(f"/runs/{run_id}/rerun", json={})
        rerun = server.wait(again.json()["id"], timeout=60)
        assert (
            rerun["pool"] == "gpu-a"
            and "/gpu-a/" in rerun["steps"]["where"]["history"][0]["worker"]
        )
    finally:
        worker.terminate()
        worker.wait(timeout=30)


def test_a_bad_pool_name_is_refused(server: Server, home: Path) -> None:
    resp = server.http.post(
        "/instances",
        json={"name": "bad-pool", "definition": "placed", "ref": "main", "pool": "GPU;rm"},
    )
    assert resp.status_code == 422
    assert server.http.get("/instances").json() == [
        i for i in server.http.get("/instances").json() if i["name"] != "bad-pool"
    ]
    proc = subprocess.run(
        [str(BIN), "worker", "--pool", "../x"], env=env_for(home), capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "invalid pool name" in proc.stderr
