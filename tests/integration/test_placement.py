"""Placement: an instance's pool sends its steps to the workers of that pool, and nowhere else."""

from __future__ import annotations

import itertools
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
    assert "pool" in resp.text
    assert "bad-pool" not in {i["name"] for i in server.http.get("/instances").json()}
    proc = subprocess.run(
        [str(BIN), "worker", "--pool", "../x"], env=env_for(home), capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "invalid pool name" in proc.stderr


def _worker(server: Server, pool: str, *extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(BIN), "worker", "--pool", pool, *extra],
        env=env_for(server.home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


def _workers(server: Server, **query: str) -> dict[str, dict[str, object]]:
    rows = server.api.get("/workers", params=query).json()
    return {r["identity"]: r for r in rows}


def test_workers_register_with_labels_and_leave(server: Server) -> None:
    own = [w for w in _workers(server).values() if w["pool"] == "default"]
    assert own and own[0]["state"] == "live" and own[0]["version"]
    proc = _worker(
        server, "labelled", "--label", "zone=eu-1", "--label", "gpu=a100", "--concurrency", "3"
    )
    try:
        wait_for(
            lambda: any(w["pool"] == "labelled" for w in _workers(server).values()), timeout=30
        )
        (mine,) = [w for w in _workers(server).values() if w["pool"] == "labelled"]
        assert mine["labels"] == {"zone": "eu-1", "gpu": "a100"}
        assert (mine["capacity"], mine["running"], mine["pid"]) == (3, 0, proc.pid)
    finally:
        _stop(proc)
    assert not any(w["pool"] == "labelled" for w in _workers(server).values())
    gone = [w for w in _workers(server, all="true").values() if w["pool"] == "labelled"]
    assert [w["state"] for w in gone] == ["stopped"]


def test_a_step_on_an_empty_pool_says_it_is_waiting_then_runs(server: Server) -> None:
    spec = "name: waits\nsteps:\n  a:\n    runs_on: later\n    run: echo ok\n"
    run_id = server.submit(spec)["id"]

    def waiting() -> str | None:
        history = server.run(run_id)["steps"]["a"]["history"]
        return history[0]["waiting"] if history else None

    wait_for(lambda: waiting() == "waiting: no worker in pool later", timeout=30)
    assert server.run(run_id)["steps"]["a"]["history"][0]["pool"] == "later"
    proc = _worker(server, "later")
    try:
        run = server.wait(run_id, timeout=60)
        assert run["status"] == "succeeded"
        assert run["steps"]["a"]["history"][0]["waiting"] is None
    finally:
        _stop(proc)


def test_schedule_timeout_fails_a_step_nobody_takes(server: Server) -> None:
    spec = (
        "name: unplaced\nsteps:\n  a:\n    runs_on: absent\n    schedule_timeout: 2s\n"
        "    run: echo never\n"
    )
    run = server.run_and_wait(spec)
    assert run["status"] == "failed"
    assert run["steps"]["a"]["error"] == (
        "no worker of pool 'absent' took the step within 2s (schedule_timeout)"
    )


def test_a_workers_concurrency_limits_its_pool(server: Server) -> None:
    spec = "name: narrow\nsteps:\n" + "".join(
        f"  s{i}:\n    runs_on: narrow\n    run: sleep 1\n" for i in range(3)
    )
    proc = _worker(server, "narrow", "--concurrency", "1")
    try:
        run = server.run_and_wait(spec, timeout=90)
    finally:
        _stop(proc)
    assert run["status"] == "succeeded"
    spans = sorted(
        (s["history"][0]["started_at"], s["history"][0]["finished_at"])
        for s in run["steps"].values()
    )
    assert all(prev[1] <= nxt[0] for prev, nxt in itertools.pairwise(spans)), run["steps"]
