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
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench._server import start_server
from bench.engine_overhead import RawChain, run_true

TERMINAL = ("succeeded", "failed", "cancelled")
COMPLETED = EventType.EVENT_TYPE_ACTIVITY_TASK_COMPLETED
SCHEDULED = EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
BEGAN = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED


def _ms(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() * 1000


#: (event type, time, whether the event is of a step's activity: not the recorder's)
Events = list[tuple[int, datetime, bool]]
STEPS = ("lockstep.step", "bench.true")


async def _history(client: Client, workflow_id: str) -> Events:
    history = await client.get_workflow_handle(workflow_id).fetch_history()
    steps: set[int] = set()
    events: Events = []
    for e in history.events:
        scheduled = e.activity_task_scheduled_event_attributes
        if e.event_type == SCHEDULED and scheduled.activity_type.name in STEPS:
            steps.add(e.event_id)
        started = e.activity_task_started_event_attributes.scheduled_event_id
        completed = e.activity_task_completed_event_attributes.scheduled_event_id
        mine = e.event_id in steps or started in steps or completed in steps
        events.append((e.event_type, e.event_time.ToDatetime(tzinfo=UTC), mine))
    return events


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
    for kind, at, step in events:
        if kind in (SCHEDULED, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED, COMPLETED) and not step:
            continue  # an activity of another kind (a child run's, say): not a step's phase
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
        elif kind == COMPLETED:
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
        return f"{'-':>22}"
    p90 = statistics.quantiles(values, n=10)[-1] if len(values) > 1 else values[0]
    return f"{statistics.median(values):>13.1f} ({p90:>5.1f})"


def _measure(spec: str, chain: int, **env: str) -> tuple[dict[str, Any], Events, Events]:
    """Run ``spec`` on a fresh server started with ``env``: its record and two histories."""
    with tempfile.TemporaryDirectory(prefix="lockstep-bench-") as tmp:
        server, http, meta = start_server(Path(tmp) / "home", **env)
        try:
            http.post("/runs", json={"spec": "name: warm\nsteps:\n  a:\n    run: 'true'\n"})
            run_id = http.post("/runs", json={"spec": spec}).raise_for_status().json()["id"]
            while (run := http.get(f"/runs/{run_id}").json())["status"] not in TERMINAL:
                time.sleep(0.1)
            assert run["status"] == "succeeded", run
            events, raw = asyncio.run(_histories(meta["temporal"], run_id, chain))
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=60)
    return run, events, raw


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chain", type=int, default=30)
    args = parser.parse_args()
    steps = "".join(
        f"  s{i}:\n    run: 'true'\n" + (f"    needs: [s{i - 1}]\n" if i else "")
        for i in range(args.chain)
    )
    spec = f"name: phases\nsteps:\n{steps}"
    print(f"chain of {args.chain} `true` steps; milliseconds, median (p90)")
    columns: dict[str, dict[str, list[float]]] = {}
    edges: dict[str, tuple[float, float]] = {}
    raws = []
    for spawner in ("direct", "zygote"):
        run, events, raw = _measure(spec, args.chain, LOCKSTEP_SPAWNER=spawner)
        columns[f"spawner={spawner}"] = _phases(events)
        raws.append(raw)
        created = datetime.fromisoformat(run["created_at"])
        finished = datetime.fromisoformat(run["finished_at"])
        began = next(at for k, at, _ in events if k == BEGAN)
        done = [at for k, at, step in events if k == COMPLETED and step][-1]
        edges[spawner] = (_ms(created, began), _ms(done, finished))
        total = _ms(created, finished)
        print(f"  spawner={spawner}: {total:.0f} ms recorded, {total / args.chain:.1f} ms a step")
    merged = [_phases(raw) for raw in raws]
    columns["raw Temporal"] = {k: [v for m in merged for v in m[k]] for k in merged[0]}
    print(f"{'phase':<28}" + "".join(f"{name:>22}" for name in columns))
    for phase in columns["raw Temporal"]:
        print(f"{phase:<28}" + "".join(_stat(c[phase]) for c in columns.values()))
    for i, what in enumerate(("run start (created -> wf)", "run end (last act -> record)")):
        print(f"{what:<28}" + "".join(f"{edges[s][i]:>22.1f}" for s in edges))


if __name__ == "__main__":
    main()
