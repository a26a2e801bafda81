"""The fleet: every pool, its workers, their capacity, and what each runs now for a project.

Composed from the services that own each part: the worker registry (who serves which pool,
their slots, last report), the deployments' workloads (which worker each replica runs on) and
the project's running runs (which step attempts are under way). A running attempt's worker is
recorded only when it finishes, so the engine is asked which worker its run's step activities
heartbeat from; when a run's running steps are spread over several workers (or the engine
cannot say) its attempts are listed under their pool instead, never guessed.

Workers are shared infrastructure (any signed-in user may list them); the work named here is
only the project's own. What else a worker runs is a count, ``other``, naming nothing: other
projects' work, and the project's steps listed under their pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from lockstep.errors import LockstepError
from lockstep.records import RunFilter, StepRecord

if TYPE_CHECKING:
    from lockstep.services.deployments import DeploymentService
    from lockstep.services.runs import RunService
    from lockstep.services.workers import WorkerService

log = logging.getLogger(__name__)

#: running runs looked at per call (the newest); more are counted, not listed
MAX_RUNS = 50
#: running items of one fan-out step listed
MAX_ITEMS = 100
#: how long the engine may take to say where one run's steps are
DESCRIBE_TIMEOUT = timedelta(seconds=3)
_AT_ONCE = 8


class FleetService:
    def __init__(self, workers: WorkerService, deployments: DeploymentService, runs: RunService):
        self._workers = workers
        self._deployments = deployments
        self._runs = runs

    async def fleet(self, project: str) -> dict[str, Any]:
        """Pools (sorted), each with its live and lately lost workers, slots total/free over
        live workers, and what each worker runs of ``project``: step attempts and replicas."""
        workers = await self._workers.list()
        replicas = await self._deployments.workloads(project)
        attempts, more_runs = await self._running_attempts(project)
        pools: dict[str, dict[str, Any]] = {}
        by_id: dict[str, dict[str, Any]] = {}
        for w in workers:
            pool = pools.setdefault(w["pool"], _pool(w["pool"]))
            row = {
                "identity": w["identity"],
                "host": w["host"],
                "state": w["state"],
                "stale": w["state"] != "live",
                "last_seen": w["last_seen"],
                "seen_ago_s": w["seen_ago_s"],
                "capacity": w["capacity"],
                "running": w["running"],
                "steps": [],
                "replicas": [],
                "other": 0,
            }
            pool["workers"].append(row)
            by_id[w["identity"]] = row
            if w["state"] == "live":
                pool["live_workers"] += 1
                pool["slots_total"] += w["capacity"]
                pool["slots_free"] += max(0, w["capacity"] - w["running"])
        for r in replicas:
            item = {k: r[k] for k in ("deployment", "node", "replica", "state", "since")}
            found = by_id.get(r["worker"] or "")
            if found is not None:
                found["replicas"].append(item)
            else:  # not placed yet, or on a worker no longer listed
                pools.setdefault(r["pool"], _pool(r["pool"]))["unplaced_replicas"].append(item)
        for a in attempts:
            step = {k: a[k] for k in ("run", "step", "attempt", "since")}
            found = by_id.get(a["worker"] or "")
            if found is not None:
                found["steps"].append(step)
            else:
                pools.setdefault(a["pool"], _pool(a["pool"]))["unplaced_steps"].append(step)
        for pool in pools.values():
            for w in pool["workers"]:
                w["other"] = max(0, w["running"] - len(w["steps"]) - len(w["replicas"]))
        return {"pools": [pools[p] for p in sorted(pools)], "more_runs": more_runs}

    async def _running_attempts(self, project: str) -> tuple[list[dict[str, Any]], int]:
        """The project's running step attempts (of its newest ``MAX_RUNS`` running runs),
        each with its worker when the engine says it unambiguously; and how many running runs
        were left out."""
        page = await self._runs.list(project, RunFilter(status="running"), limit=MAX_RUNS + 1)
        runs = page.items[:MAX_RUNS]
        found: list[dict[str, Any]] = []
        for summary in runs:
            try:
                record = await self._runs.get(project, summary.id)
            except LockstepError:  # finished and gone, or damaged: the next call shows it
                continue
            for sid, step in sorted(record.steps.items()):
                if step.status != "running":
                    continue
                found += _running(record.id, sid, step, record.pool, item=False)
                if step.items:  # a fan-out: its running items (each run by a child workflow)
                    items = await self._runs.items(
                        project, record.id, sid, status="running", offset=0, limit=MAX_ITEMS
                    )
                    for i in items:
                        found += _running(record.id, f"{sid}[{i.index}]", i, record.pool, True)
        where = await self._workers_of({a["run"] for a in found})
        for a in found:
            # an item's activity belongs to a child workflow, not to the run's own
            a["worker"] = None if a["item"] else where.get(a["run"])
        return found, max(0, len(page.items) - MAX_RUNS)

    async def _workers_of(self, run_ids: set[str]) -> dict[str, str]:
        """Per run, the one worker its started step activities heartbeat from (runs whose
        steps run on several workers, or that the engine cannot describe, are left out)."""
        if not run_ids:
            return {}
        try:
            client = self._runs.engine
        except LockstepError:
            return {}
        from temporalio.api.enums.v1 import PendingActivityState

        from lockstep.engine.interpreter import STEP_ACTIVITY

        started = PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
        gate = asyncio.Semaphore(_AT_ONCE)
        where: dict[str, str] = {}

        async def one(run_id: str) -> None:
            async with gate:
                with contextlib.suppress(Exception):  # the engine is down or slow: unplaced
                    got = await client.get_workflow_handle(run_id).describe(
                        rpc_timeout=DESCRIBE_TIMEOUT
                    )
                    seen = {
                        act.last_worker_identity
                        for act in got.raw_description.pending_activities
                        if act.activity_type.name == STEP_ACTIVITY
                        and act.state == started
                        and act.last_worker_identity
                    }
                    if len(seen) == 1:
                        where[run_id] = seen.pop()

        await asyncio.gather(*(one(r) for r in sorted(run_ids)))
        return where


def _running(
    run_id: str, step_id: str, step: StepRecord, pool: str | None, item: bool
) -> list[dict[str, Any]]:
    """The step's attempt under way, if its last attempt runs."""
    last = step.history[-1] if step.history else None
    if step.status != "running" or last is None or last.status != "running":
        return []
    since = last.started_at or last.scheduled_at
    where = last.pool or pool or "default"
    return [
        {"run": run_id, "step": step_id, "attempt": last.attempt, "since": since, "pool": where}
        | {"worker": None, "item": item}
    ]


def _pool(name: str) -> dict[str, Any]:
    return {
        "pool": name,
        "live_workers": 0,
        "slots_total": 0,
        "slots_free": 0,
        "workers": [],
        "unplaced_steps": [],
        "unplaced_replicas": [],
    }
