"""`lockstep fleet` as a user types it: a worker of a second pool joins, a step runs on it and
a deployment's replica on the server's own worker; the fleet lists both pools, their workers and
slots, and what each worker runs (the step by run/step, the replica by deployment node/replica)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from tests.harness import BIN, Server, api_get, cli, env_for, wait_for

PIPELINE = """\
kind: pipeline
name: ticker
nodes:
  tick:
    kind: source
    run: sleep 3600
"""
STEP = """\
name: on-gpu
steps:
  train:
    runs_on: gpu
    run: while [ ! -e {go} ]; do sleep 0.1; done
  spread:
    runs_on: gpu
    for_each: [a, b]
    run: while [ ! -e {go} ]; do sleep 0.1; done
"""


def _ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, proc.stderr
    return proc


def _fleet(home: Path) -> dict[str, dict[str, Any]]:
    shown = api_get(home, "/fleet")  # polled: no process a try
    return {p["pool"]: p for p in shown["pools"]}


def _runs(pools: dict[str, dict[str, Any]], pool: str, kind: str) -> list[tuple[str, Any]]:
    """(worker, item) for each step or replica shown on a worker of ``pool``."""
    found = pools.get(pool, {}).get("workers", [])
    return [(w["identity"], item) for w in found for item in w[kind]]


def test_fleet_lists_both_pools_and_what_each_worker_runs(home: Path, tmp_path: Path) -> None:
    server = Server(home)
    server.start()
    gpu = subprocess.Popen(
        [str(BIN), "worker", "--pool", "gpu", "--concurrency", "3"],
        env=env_for(home),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    go = tmp_path / "go"
    try:
        # the step waits for the gpu worker, which joins while the deployment is made
        run_id = server.submit(STEP.format(go=go))["id"]
        (tmp_path / "ticker.yaml").write_text(PIPELINE)
        _ok(cli(home, "publish", str(tmp_path / "ticker.yaml")))
        plan = _ok(cli(home, "plan", "ticks", "--version", "ticker@1"))
        _ok(cli(home, "deploy", "ticks", "--plan", plan.stderr.split("--plan ")[1].split()[0]))

        def both() -> dict[str, dict[str, Any]] | None:
            pools = _fleet(home)
            on_gpu = pools.get("gpu", {})  # the worker reports its busy slots every 5 s
            steps = bool(_runs(pools, "gpu", "steps")) and on_gpu.get("slots_free") == 0
            steps = steps and len(on_gpu["unplaced_steps"]) == 2
            replicas = [
                r for _, r in _runs(pools, "default", "replicas") if r["state"] == "running"
            ]
            return pools if steps and replicas else None

        pools = wait_for(both, timeout=90, what="the step and the replica on their workers")
        [(gpu_worker, step)] = _runs(pools, "gpu", "steps")
        assert gpu_worker.endswith(f"/gpu/{gpu.pid}")
        assert (step["run"], step["step"], step["attempt"]) == (run_id, "train", 1)
        [(default_worker, replica)] = _runs(pools, "default", "replicas")
        assert (replica["deployment"], replica["node"], replica["replica"]) == (
            "ticks",
            "tick",
            "0",
        )
        gpu_pool = pools["gpu"]
        # the fan-out's items run in child workflows: listed under their pool, not guessed
        items = sorted((s["run"], s["step"]) for s in gpu_pool["unplaced_steps"])
        assert items == [(run_id, "spread[0]"), (run_id, "spread[1]")]
        assert (gpu_pool["live_workers"], gpu_pool["slots_total"]) == (1, 3)
        assert gpu_pool["slots_free"] == 0  # the step and two items take its three slots
        assert gpu_pool["workers"][0]["other"] == 2  # the items' slots, named under the pool
        assert not gpu_pool["workers"][0]["stale"]

        text = _ok(cli(home, "fleet")).stdout
        assert "pool gpu: 1 live workers, 3 slots, 0 free" in text
        assert f"  on no known worker yet:\n    step {run_id}/spread[0] attempt 1 since " in text
        assert "    2 more slots busy with work not listed here" in text
        assert f"  worker {gpu_worker} on " in text
        assert f"    step {run_id}/train attempt 1 since " in text
        assert f"  worker {default_worker} on " in text
        assert "    replica ticks tick/0 running since " in text
        assert text.index("pool default") < text.index(f"worker {default_worker}")
        assert text.index(f"worker {default_worker}") < text.index("pool gpu")

        # the gpu worker is killed outright: once it misses its reports it shows as stale,
        # and its pool has no slot left
        go.touch()
        server.wait(run_id)
        gpu.kill()
        gpu.wait(timeout=30)
        gone = wait_for(
            lambda: (p := _fleet(home)["gpu"])["workers"][0]["stale"] and p,
            timeout=60,
            what="the gpu worker to show as stale",
        )
        assert (gone["live_workers"], gone["slots_total"], gone["slots_free"]) == (0, 0, 0)
        assert gone["workers"][0]["state"] == "lost" and gone["workers"][0]["steps"] == []
        assert f"worker {gpu_worker} on " in (text := _ok(cli(home, "fleet")).stdout)
        assert ": stale (lost), last seen " in text
    finally:
        go.touch()
        if gpu.poll() is None:
            gpu.terminate()
            gpu.wait(timeout=30)
        server.stop()
