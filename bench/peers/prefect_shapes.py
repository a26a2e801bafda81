"""lockstep's two bench shapes as Prefect tasks, run by the Python that has Prefect installed.

Measures, on Prefect's default task runner (threads) with its ephemeral local API server:
  * a chain of N tasks, each submitted to wait on the one before, each running
    subprocess.run(["true"]): per step, the chain flow's wall time over N;
  * a 1 -> W -> 1 fan-out of the same task (`.submit()`, `.map()` over W, `.submit()`
    waiting on all W): the flow's wall time.

A warm-up flow runs first, so neither the server's start nor the first imports are counted.
Prefect runs with its defaults, as a user gets them. A sync flow ends by joining its heartbeat
thread, which sleeps in 1 s steps: each flow's wall time holds up to 1 s of that wait (an
empty flow took ~1.1 s here).

Prefect's server records task runs from their events after the flow has moved on. After each
timed flow the script waits until the server has recorded all its task runs as completed, so
the next flow does not pay for the last one's backlog. chain_per_step_ms and fanout_s end when
the flow returns; chain_recorded_per_step_ms and fanout_recorded_s end when every task run is
recorded (lockstep's own figures are of that kind: timed from its run record).

Prints one JSON line, medians of --repeat runs: {"peer": "prefect", "version",
"chain_per_step_ms", "fanout_s", "chain_recorded_per_step_ms", "fanout_recorded_s"}.
It does not import lockstep. bench/engine_overhead.py runs it with .venv-peers/bin/python
(`make bench` builds that venv).

    .venv-peers/bin/python bench/peers/prefect_shapes.py [--chain 100] [--width 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def local_prefect(home: Path) -> None:
    """Prefect's state in ``home`` only, its own ephemeral server, nothing sent anywhere."""
    for name in [k for k in os.environ if k.startswith("PREFECT_")]:
        del os.environ[name]  # a developer's PREFECT_API_URL, profile, … must not apply
    os.environ.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ALLOW_EPHEMERAL_MODE="true",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_CLOUD_ENABLE_ORCHESTRATION_TELEMETRY="false",
        PREFECT_TELEMETRY_ENABLE_RESOURCE_METRICS="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_LOGGING_TO_API_ENABLED="false",
        DO_NOT_TRACK="1",
    )


def measure(chain: int, width: int, repeat: int, style: str) -> dict[str, Any]:
    import prefect  # after local_prefect(): settings are read at import
    from prefect import flow, task
    from prefect.client.orchestration import get_client

    client = get_client(sync_client=True)

    def timed(run: Any, arg: int, tasks: int) -> tuple[float, float]:
        """Seconds until the flow returned, and until the server recorded its task runs."""
        t0 = time.perf_counter()
        state = run(arg, return_state=True)
        returned = time.perf_counter() - t0
        if not state.is_completed():
            raise SystemExit(f"prefect flow {run.name}: {state}")
        body = {
            "flow_runs": {"id": {"any_": [str(state.state_details.flow_run_id)]}},
            "task_runs": {"state": {"type": {"any_": ["COMPLETED"]}}},
        }
        deadline = time.monotonic() + 300
        while client.request("POST", "/task_runs/count", json=body).json() < tasks:
            if time.monotonic() > deadline:
                raise SystemExit(f"prefect flow {run.name}: task runs not recorded in 300 s")
            time.sleep(0.02)
        return returned, time.perf_counter() - t0

    @task
    def true_step(item: int = 0) -> int:
        return subprocess.run(["true"], check=True).returncode

    @flow
    def chain_flow(n: int) -> None:
        if style == "call":  # plain calls: each runs in the flow's thread after the last
            for _ in range(n):
                true_step()
            return
        future = true_step.submit()
        for _ in range(n - 1):
            future = true_step.submit(wait_for=[future])
        future.result()

    @flow
    def fanout_flow(w: int) -> None:
        first = true_step.submit()
        middle = true_step.map(range(w), wait_for=[first])
        true_step.submit(wait_for=middle).result()

    with client:
        timed(chain_flow, 3, 3)  # warm-up: the server's start, first flow and task runs
        timed(fanout_flow, 3, 5)
        runs: dict[str, list[float]] = {k: [] for k in ("chain", "chain_rec", "fan", "fan_rec")}
        for _ in range(repeat):
            c, c_rec = timed(chain_flow, chain, chain)
            f, f_rec = timed(fanout_flow, width, width + 2)
            for key, value in zip(runs, (c, c_rec, f, f_rec), strict=True):
                runs[key].append(value)
    med = {k: statistics.median(v) for k, v in runs.items()}
    return {
        "peer": "prefect",
        "version": prefect.__version__,
        "chain_per_step_ms": round(med["chain"] / chain * 1000, 2),
        "fanout_s": round(med["fan"], 3),
        "chain_recorded_per_step_ms": round(med["chain_rec"] / chain * 1000, 2),
        "fanout_recorded_s": round(med["fan_rec"], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--chain-style",
        choices=["submit", "call"],
        default="submit",
        help="submit: each task submitted to the task runner, waiting on the previous future "
        "(default); call: plain calls in the flow's thread",
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="prefect-bench-"))
    try:
        local_prefect(home)
        result = measure(args.chain, args.width, args.repeat, args.chain_style)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
