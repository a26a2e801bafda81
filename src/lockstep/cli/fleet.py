"""``lockstep fleet``: pools, their workers and capacity, and what each worker runs."""

from __future__ import annotations

from typing import Any

from lockstep.cli.admin import AsJson, go
from lockstep.cli.client import ApiClient
from lockstep.cli.output import err, out, print_json, visible
from lockstep.cli.workers import age


def fleet_command(as_json: AsJson = False) -> None:
    """Pools, their workers (host, last seen, stale or live), slots total and free, and what
    each worker runs of this project now: step attempts (run/step) and deployment replicas
    (deployment node/replica)."""

    async def run(c: ApiClient) -> None:
        shown = await c.call("GET", f"/projects/{c.project}/fleet")
        if as_json:
            print_json(shown)
            return
        if not shown["pools"]:
            err.print("no workers: start one with `lockstep worker --pool POOL`")
        for pool in shown["pools"]:
            for line in _pool_lines(pool):  # names come from workers and specs: text only
                out.print(visible(line), markup=False, highlight=False, soft_wrap=True)
        if shown["more_runs"]:
            err.print(f"{shown['more_runs']} more running runs not shown")

    go(run)


def _pool_lines(pool: dict[str, Any]) -> list[str]:
    lines = [
        f"pool {pool['pool']}: {pool['live_workers']} live workers, "
        f"{pool['slots_total']} slots, {pool['slots_free']} free"
    ]
    for w in pool["workers"]:
        state = f"stale ({w['state']})" if w["stale"] else "live"
        lines.append(
            f"  worker {w['identity']} on {w['host']}: {state}, last seen "
            f"{age(w['seen_ago_s'])} ago, {w['running']}/{w['capacity']} slots busy"
        )
        lines += [f"    {_step(s)}" for s in w["steps"]]
        lines += [f"    {_replica(r)}" for r in w["replicas"]]
        if w["other"]:
            lines.append(f"    {w['other']} more slots busy with work not listed here")
    if pool["unplaced_steps"] or pool["unplaced_replicas"]:
        lines.append("  on no known worker yet:")
        lines += [f"    {_step(s)}" for s in pool["unplaced_steps"]]
        lines += [f"    {_replica(r)}" for r in pool["unplaced_replicas"]]
    return lines


def _step(s: dict[str, Any]) -> str:
    return f"step {s['run']}/{s['step']} attempt {s['attempt']} since {s['since']}"


def _replica(r: dict[str, Any]) -> str:
    since = f" since {r['since']}" if r["since"] else ""
    return f"replica {r['deployment']} {r['node']}/{r['replica']} {r['state']}{since}"
