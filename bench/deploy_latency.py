"""Seconds from `deploy` to every replica running, against a floor: starting the same programs
as plain processes joined by a shell pipe.

A real `lockstep server` (embedded Temporal, its own worker of pool `default`, the embedded
nats-server) gets a pipeline of source -> transform x R -> sink (`stream` channels; the
programs of tests/pipeline_nodes.py waiting for input, the source is `sleep`). For each round:
plan + deploy through the API, then poll the deployment's status until it says `converged`
(every replica's program started and heartbeating `running`), then delete and wait for the
replicas to be gone. The first round also pays for the broker's start; it is shown apart.
The floor is
`sleep | transform | sink` started by bash, timed until all three processes exist (the
programs' own start-up is in both).

    python bench/deploy_latency.py [--replicas 2] [--repeat 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench._server import start_server  # noqa: E402

PROGRAM = str(ROOT / "tests" / "pipeline_nodes.py")
POLL_S = 0.05


def pipeline(replicas: int) -> str:
    py = sys.executable
    return f"""\
kind: pipeline
name: bench
nodes:
  read:
    kind: source
    run: [sleep, "3600"]
  work:
    kind: transform
    run: [{py}, {PROGRAM}, transform]
    from: [read]
  write:
    kind: sink
    run: [{py}, {PROGRAM}, sink, /dev/null]
    from: [work]
replicas: {{work: {replicas}}}
"""


def _status(http: httpx.Client) -> str | None:
    got = http.get("/deployments/bench")
    if got.status_code == 404:
        return None
    return str((got.json().get("status") or {}).get("summary"))


def _until(check: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(POLL_S)


def deploy_once(http: httpx.Client) -> float:
    plan = http.post("/deployments/bench/plans", json={"version": "bench@1"}).raise_for_status()
    began = time.monotonic()
    http.post("/deployments/bench/deploy", json={"plan": plan.json()["id"]}).raise_for_status()
    _until(lambda: _status(http) == "converged", 120, "converged")
    took = time.monotonic() - began
    http.delete("/deployments/bench").raise_for_status()
    _until(lambda: not http.get("/workloads").json(), 120, "the replicas gone")
    return took


def floor_once(work: Path) -> float:
    """A shell pipe of the same three programs, until all three processes run."""
    py = sys.executable
    line = f"sleep 3600 | {py} {PROGRAM} transform | {py} {PROGRAM} sink /dev/null"
    began = time.monotonic()
    shell = subprocess.Popen(["bash", "-c", line], start_new_session=True)
    try:

        def running() -> bool:
            found = subprocess.run(["pgrep", "-g", str(shell.pid)], capture_output=True, text=True)
            return len(set(found.stdout.split()) - {str(shell.pid)}) >= 3

        _until(running, 30, "the pipe's programs")
        return time.monotonic() - began
    finally:
        subprocess.run(["pkill", "-g", str(shell.pid)], check=False)
        shell.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicas", type=int, default=2, help="transform replicas")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lockstep-bench-deploy-") as tmp:
        work = Path(tmp)
        server, http, _ = start_server(work / "home")
        try:
            text = pipeline(args.replicas)
            http.post("/definitions", json={"name": "bench"}).raise_for_status()
            http.put(
                "/definitions/bench/draft",
                content=text.encode(),
                headers={"content-type": "application/yaml"},
            ).raise_for_status()
            http.post("/definitions/bench/publish", json={}).raise_for_status()
            first = deploy_once(http)
            rounds = [deploy_once(http) for _ in range(args.repeat)]
        finally:
            server.terminate()
            server.wait(timeout=60)
        floors = [floor_once(work) for _ in range(args.repeat)]
    replicas = args.replicas + 2
    print(f"deploy -> running, source -> transform x{args.replicas} -> sink ({replicas} replicas)")
    print(f"{'':38} {'median s':>9} {'min s':>7}")
    print(f"{'lockstep deploy, first (broker starts)':38} {first:>9.2f} {first:>7.2f}")
    print(f"{'lockstep deploy':38} {statistics.median(rounds):>9.2f} {min(rounds):>7.2f}")
    print(f"{'floor: bash pipe of the programs':38} {statistics.median(floors):>9.2f} "
          f"{min(floors):>7.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
