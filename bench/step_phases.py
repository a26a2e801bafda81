"""Where a step's time goes: one chain run through a real `lockstep server`, its milliseconds
attributed phase by phase from the run's Temporal history and its records.

For each step of a chain of `true` steps (after the first), the gap from the previous step's
activity completing to this step's activity completing is split into:

  * decide   previous activity completed -> this activity scheduled: the workflow task that
             reacts (its schedule -> start wait, then its processing, which includes the
             recorder's local activity when it holds the task), as the history shows it;
  * queue    scheduled -> started: the step's pool worker polling it;
  * execute  started -> completed: the worker's activity (leases, secrets, spawn `true`, wait,
             read outputs, log flush);

and separately the run's start (API accepted -> workflow started) and end (last activity ->
run recorded finished). Local activities (record flushes, cache and output loads) are counted
per step from the history's markers, with the time they held workflow tasks.

    python bench/step_phases.py [--chain 30]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import start_server
from bench.engine_overhead import RawChain, run_true


def _ms(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() * 1000


Events = list[tuple[int, datetime]]


async def _history(client: Client, workflow_id: str) -> Events:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    return [(e.event_type, e.event_time.ToDatetime(tzinfo=UTC)) for e in history.events]


async def _histories(address: str, run_id: str, chain: int) -> tuple[Events, Events]:
    """The lockstep run's history, and that of the same chain as raw Temporal activities
    spawning `true` on the same server (the engine alone, for comparison)."""
    client = await Client.connect(address, namespace="default")
    queue = f"phases-{uuid.uuid4().hex[:8]}"
    async with Worker(
        client,
        task_queue=queue,
        workflows=[RawChain],
        activities=[run_true],
        workflow_runner=UnsandboxedWorkflowRunner(),
    ):
        await client.execute_workflow(RawChain.run, chain, id=queue, task_queue=queue)
    return await _history(client, run_id), await _history(client, queue)


def _phases(events: Events) -> dict[str, list[float]]:
    got: dict[str, list[float]] = {k: [] for k in ("decide", "queue", "execute", "wft_held")}
    markers: list[int] = []
    scheduled = started = completed = None
    wft_started: datetime | None = None
    marks_since = 0
    for kind, at in events:
        if kind == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED:
            wft_started = at
        elif kind == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED and wft_started:
            got["wft_held"].append(_ms(wft_started, at))
        elif kind == EventType.EVENT_TYPE_MARKER_RECORDED:
            marks_since += 1
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            if completed is not None:
                got["decide"].append(_ms(completed, at))
            scheduled = at
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            started = at
        elif kind == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED:
            completed = at
            if scheduled and started:
                got["queue"].append(_ms(scheduled, started))
                got["execute"].append(_ms(started, at))
            markers.append(marks_since)
            marks_since = 0
    got["local activities per step"] = [float(m) for m in markers]
    return got


def _stat(values: list[float]) -> str:
    if not values:
        return f"{'-':>16}{'-':>8}"
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
    return f"{statistics.median(values):>16.1f}{p90:>8.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chain", type=int, default=30)
    args = parser.parse_args()
    steps = "".join(
        f"  s{i}:\n    run: 'true'\n" + (f"    needs: [s{i - 1}]\n" if i else "")
        for i in range(args.chain)
    )
    spec = f"name: phases\nsteps:\n{steps}"
    with tempfile.TemporaryDirectory(prefix="lockstep-bench-") as tmp:
        server, http, meta = start_server(Path(tmp) / "home")
        try:
            http.post("/runs", json={"spec": "name: warm\nsteps:\n  a:\n    run: 'true'\n"})
            submitted = time.time()
            run_id = http.post("/runs", json={"spec": spec}).raise_for_status().json()["id"]
            while (run := http.get(f"/runs/{run_id}").json())["status"] not in (
                "succeeded",
                "failed",
                "cancelled",
            ):
                time.sleep(0.02)
            assert run["status"] == "succeeded", run
            events, raw = asyncio.run(_histories(meta["temporal"], run_id, args.chain))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    created = datetime.fromisoformat(run["created_at"])
    finished = datetime.fromisoformat(run["finished_at"])
    began = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED
    wf_started = next(at for k, at in events if k == began)
    last_done = [at for k, at in events if k == EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED][-1]
    ours, engine = _phases(events), _phases(raw)
    total = _ms(created, finished)
    print(f"chain of {args.chain} `true` steps: {total:.0f} ms recorded, ", end="")
    wall = time.time() - submitted
    print(f"{total / args.chain:.1f} ms a step ({wall:.1f} s wall incl. polling)")
    print(f"{'phase':<28}{'lockstep median':>16}{'p90':>8}{'raw Temporal median':>21}{'p90':>8}")
    for name, values in ours.items():
        print(f"{name:<28}{_stat(values)}     {_stat(engine[name])}")
    print(f"{'run start (created->wf)':<28}{_ms(created, wf_started):>10.1f}")
    print(f"{'run end (last act->record)':<28}{_ms(last_done, finished):>10.1f}")


if __name__ == "__main__":
    main()
