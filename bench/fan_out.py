"""Fan-out throughput: a ``for_each`` step over N no-op items, against raw Temporal.

Runs, on one machine and one Temporal dev server:
  * lockstep: a real `lockstep server`, one run whose step fans out over N items
    (``uses: noop``), timed from the run record (every item recorded, outputs aggregated);
  * raw Temporal: the same shape with the Python SDK alone: child workflows of 200 no-op
    activities each, all at once (the engine's floor for this shape, recording nothing).

    python bench/fan_out.py [--items 1000] [--real 300] [--repeat 1]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import statistics
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import start_server, timed_run

BATCH = 200


@activity.defn(name="bench.noop")
async def noop(item: int) -> dict[str, int]:
    return {"square": item * item}


@workflow.defn(name="bench.batch")
class RawBatch:
    @workflow.run
    async def run(self, items: list[int]) -> list[dict[str, int]]:
        calls = [
            workflow.execute_activity(
                noop, i, task_queue="bench", start_to_close_timeout=timedelta(seconds=60)
            )
            for i in items
        ]
        return list(await asyncio.gather(*calls))


@workflow.defn(name="bench.fanout")
class RawFanOut:
    @workflow.run
    async def run(self, n: int) -> int:
        spans = [list(range(s, min(s + BATCH, n))) for s in range(0, n, BATCH)]
        children = [
            workflow.execute_child_workflow(
                RawBatch.run, span, id=f"{workflow.info().workflow_id}-{k}"
            )
            for k, span in enumerate(spans)
        ]
        return sum(len(r) for r in await asyncio.gather(*children))


async def raw(address: str, n: int) -> float:
    client = await Client.connect(address)
    async with Worker(
        client,
        task_queue="bench",
        workflows=[RawFanOut, RawBatch],
        activities=[noop],
        workflow_runner=UnsandboxedWorkflowRunner(),
        max_concurrent_activities=16,
    ):
        start = time.perf_counter()
        await client.execute_workflow(
            RawFanOut.run, n, id=f"bench-{uuid.uuid4().hex}", task_queue="bench"
        )
        return time.perf_counter() - start


def spec(n: int, what: str = "uses: noop") -> str:
    ids = "ids=" + "json.dumps(list(range(" + str(n) + ")))"
    return f"""
name: wide
steps:
  prep:
    run: |
      python3 -c "import json; print('{ids.split("=")[0]}=' + {ids.split("=", 1)[1]})" \\
        >> "$LOCKSTEP_OUTPUTS"
    outputs: {{type: object, properties: {{ids: {{type: array}}}}}}
  each:
    needs: [prep]
    for_each: ${{{{ steps.prep.outputs.ids }}}}
    {what}
    with: {{square: "${{{{ item * item }}}}"}}
outputs:
  count: ${{{{ size(steps.each.outputs) }}}}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--real", type=int, default=300, help="items that each run a process")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="lockstep-bench-fanout-"))
    server, http, meta = start_server(home)
    try:
        ours = [timed_run(http, spec(args.items), poll_s=0.2) for _ in range(args.repeat)]
        real = [
            timed_run(http, spec(args.real, 'run: ["true"]'), poll_s=0.2)
            for _ in range(args.repeat)
        ]
        theirs = [asyncio.run(raw(meta["temporal"], args.items)) for _ in range(args.repeat)]
        raw_real = [asyncio.run(raw(meta["temporal"], args.real)) for _ in range(args.repeat)]
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(60)
        shutil.rmtree(home, ignore_errors=True)
    n, m = args.items, args.real
    rows = [
        (n, "raw Temporal: children of 200 no-op activities", statistics.median(theirs), None),
        (n, "lockstep `uses: noop` items (decided in the engine)", statistics.median(ours), None),
        (m, "raw Temporal: children of 200 no-op activities", statistics.median(raw_real), None),
        (m, 'lockstep `run: ["true"]` items (a process each)', statistics.median(real), 2),
    ]
    print(f"\nfan-out, wall time from submit to recorded finish, median of {args.repeat}\n")
    print("| items | what | wall s | items/s | vs raw |")
    print("|---|---|---|---|---|")
    for items, name, secs, peer in rows:
        base = rows[peer][2] if peer is not None else rows[0][2] if items == n else secs
        print(f"| {items} | {name} | {secs:.2f} | {items / secs:.0f} | {secs / base:.2f}x |")


if __name__ == "__main__":
    main()
