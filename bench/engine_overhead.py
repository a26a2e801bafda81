"""Per-step overhead of lockstep against its floors, in one invocation.

Runs, on one machine and one Temporal dev server:
  * a 100-step chain and a 1 -> 200 -> 1 fan-out of `true` steps through lockstep (a real
    `lockstep server`, submitted over its API, timed from the run record: records, logs and
    outputs included),
  * the same shapes as raw Temporal Python SDK activities that spawn `true` (the engine alone),
  * a plain loop of subprocess.run(["true"]) (the floor),
  * and, after lockstep's server has stopped, the same shapes as Prefect tasks
    (bench/peers/prefect_shapes.py, run with the peers' venv's Python: .venv-peers, which
    `make bench` installs; skipped with one line when it is missing).

    python bench/engine_overhead.py [--chain 100] [--width 200] [--repeat 3]
                                    [--peer-python .venv-peers/bin/python]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import start_server, timed_run

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = ROOT / ".venv-peers" / "bin" / "python"
PEER_SCRIPT = ROOT / "bench" / "peers" / "prefect_shapes.py"

# -- raw Temporal --------------------------------------------------------------------------


@activity.defn(name="bench.true")
async def run_true() -> int:
    proc = await asyncio.create_subprocess_exec("true")
    return await proc.wait()


@workflow.defn(name="bench.chain")
class RawChain:
    @workflow.run
    async def run(self, n: int) -> None:
        for _ in range(n):
            await workflow.execute_activity(
                "bench.true", start_to_close_timeout=timedelta(seconds=60)
            )


@workflow.defn(name="bench.fanout")
class RawFanout:
    @workflow.run
    async def run(self, width: int) -> None:
        opts = {"start_to_close_timeout": timedelta(seconds=60)}
        await workflow.execute_activity("bench.true", **opts)
        await asyncio.gather(
            *(workflow.execute_activity("bench.true", **opts) for _ in range(width))
        )
        await workflow.execute_activity("bench.true", **opts)


async def raw_temporal(address: str, chain: int, width: int) -> tuple[float, float]:
    client = await Client.connect(address)
    queue = f"bench-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[RawChain, RawFanout],
        activities=[run_true],
        max_concurrent_activities=64,
        # this script's module imports httpx, which the sandbox refuses to re-import
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        t0 = time.perf_counter()
        await client.execute_workflow(RawChain.run, chain, id=f"c-{queue}", task_queue=queue)
        t1 = time.perf_counter()
        await client.execute_workflow(RawFanout.run, width, id=f"f-{queue}", task_queue=queue)
        t2 = time.perf_counter()
    return t1 - t0, t2 - t1


# -- lockstep ------------------------------------------------------------------------------


def chain_spec(n: int) -> str:
    lines = ["name: bench-chain", "steps:"]
    for i in range(n):
        needs = f", needs: [s{i - 1}]" if i else ""
        lines.append(f'  s{i}: {{run: ["true"]{needs}}}')
    return "\n".join(lines) + "\n"


def fanout_spec(width: int) -> str:
    lines = ["name: bench-fanout", "steps:", '  first: {run: ["true"]}']
    for i in range(width):
        lines.append(f'  m{i}: {{run: ["true"], needs: [first]}}')
    mids = ", ".join(f"m{i}" for i in range(width))
    lines.append(f'  last: {{run: ["true"], needs: [{mids}]}}')
    return "\n".join(lines) + "\n"


def lockstep_run(http: httpx.Client, spec: str) -> float:
    # timed from the run's record, so polling less often changes no figure; polling a
    # 200-step run's record every 20 ms took a good part of a core from the run it measured
    return timed_run(http, spec, poll_s=0.25)


def floor(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        subprocess.run(["true"], check=True)
    return time.perf_counter() - t0


# -- peers ---------------------------------------------------------------------------------


def prefect(python: Path, chain: int, width: int, repeat: int) -> dict[str, Any] | None:
    """The peer script's JSON line, or None (said why) when it could not run."""
    if not python.exists():
        print(
            f"Prefect: not measured, {python} is missing (`make bench` installs .venv-peers, "
            "or pass --peer-python PATH)"
        )
        return None
    argv = [str(python), str(PEER_SCRIPT), f"--chain={chain}", f"--width={width}"]
    proc = subprocess.run(
        [*argv, f"--repeat={repeat}"], capture_output=True, text=True, timeout=1800
    )
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
        print(f"Prefect: not measured, {PEER_SCRIPT.name} exited {proc.returncode}:\n{tail}")
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, default=100)
    parser.add_argument("--width", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--peer-python",
        type=Path,
        default=PEER_PYTHON,
        help="a Python with Prefect installed (default: .venv-peers/bin/python)",
    )
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="lockstep-bench-"))
    server, http, meta = start_server(home)
    try:
        lockstep_run(http, chain_spec(3))  # warm-up: imports, sandbox, first workflow task

        rows: dict[str, list[float]] = {
            k: [] for k in ("floor", "raw_chain", "raw_fan", "ls_chain", "ls_fan")
        }
        for _ in range(args.repeat):
            rows["floor"].append(floor(args.chain))
            raw_c, raw_f = asyncio.run(raw_temporal(meta["temporal"], args.chain, args.width))
            rows["raw_chain"].append(raw_c)
            rows["raw_fan"].append(raw_f)
            rows["ls_chain"].append(lockstep_run(http, chain_spec(args.chain)))
            rows["ls_fan"].append(lockstep_run(http, fanout_spec(args.width)))
        med = {k: statistics.median(v) for k, v in rows.items()}
        http.close()
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
        shutil.rmtree(home, ignore_errors=True)

    # after lockstep's server and engine have stopped: Prefect starts a server of its own
    peer = prefect(args.peer_python, args.chain, args.width, args.repeat)

    print(f"\nmedian of {args.repeat} (chain of {args.chain}, fan-out 1->{args.width}->1)")
    print(f"{'what':<34}{'chain total':>13}{'per step':>11}{'fan-out':>10}")
    print(
        f"{'subprocess.run([true]) loop':<34}{med['floor']:>12.2f}s"
        f"{med['floor'] / args.chain * 1000:>9.1f}ms{'':>10}"
    )
    print(
        f"{'raw Temporal activities':<34}{med['raw_chain']:>12.2f}s"
        f"{med['raw_chain'] / args.chain * 1000:>9.1f}ms{med['raw_fan']:>9.2f}s"
    )
    if peer is not None:
        # until the flow returned, then until Prefect's server had recorded every task run
        for name, step_ms, fan_s in (
            (f"Prefect {peer['version']} (in-process tasks)", "chain_per_step_ms", "fanout_s"),
            (
                "  same, until runs are recorded",
                "chain_recorded_per_step_ms",
                "fanout_recorded_s",
            ),
        ):
            step, fan = peer[step_ms], peer[fan_s]
            print(f"{name:<34}{step * args.chain / 1000:>12.2f}s{step:>9.1f}ms{fan:>9.2f}s")
    ls_step_ms = med["ls_chain"] / args.chain * 1000
    print(
        f"{'lockstep (end to end)':<34}{med['ls_chain']:>12.2f}s"
        f"{ls_step_ms:>9.1f}ms{med['ls_fan']:>9.2f}s"
    )
    if peer is not None:
        print(
            f"lockstep / Prefect {peer['version']} (below 1: lockstep is faster): chain per step "
            f"{ls_step_ms / peer['chain_per_step_ms']:.2f}x "
            f"({ls_step_ms / peer['chain_recorded_per_step_ms']:.2f}x to recorded), "
            f"fan-out {med['ls_fan'] / peer['fanout_s']:.2f}x "
            f"({med['ls_fan'] / peer['fanout_recorded_s']:.2f}x to recorded)"
        )


if __name__ == "__main__":
    main()
