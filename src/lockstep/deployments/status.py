"""What the reconciler reports per node: desired against actual replicas, and why they differ.

Pure: the controller's activity hands in where each node should run and what each pool can
take; this says, per node, ``degraded`` (a replica in a crash loop), ``drift`` (a change made
outside lockstep, reported), ``running``, ``stopped`` (0 desired), ``paused``, ``waiting`` (its
pool has no free slot) or ``pending`` (replicas starting, or a reason they cannot), with the
replicas' counters summed, and one summary line for the deployment.
"""

from __future__ import annotations

from typing import Any

from lockstep.deployments.model import Placed

#: what a pool can take: (live workers, free slots)
Capacity = dict[str, tuple[int, int]]


def node_status(
    placed: dict[str, Placed],
    capacity: Capacity,
    actual: dict[str, dict[str, Any]],
    *,
    paused: bool,
) -> dict[str, Any]:
    """Per node {pool, desired, actual, state, message, restarts, records_in, records_out, lag,
    last_error}, and the deployment's summary. ``actual``: per node its ``running`` replicas
    and their counters."""
    nodes: dict[str, dict[str, Any]] = {}
    for nid, where in placed.items():
        seen = actual.get(nid, {})
        running = int(seen.get("running", 0))
        error = seen.get("last_error")
        _, free = capacity.get(where.pool, (0, 0))
        if seen.get("degraded"):
            state, message = "degraded", f"degraded: crash loop, last exit: {error}"
        elif seen.get("drift"):
            state, message = "drift", str(seen["drift"])
        elif where.replicas == running:
            state, message = ("stopped", "0 replicas desired") if running == 0 else ("running", "")
        elif paused:
            state, message = "paused", "paused: replicas are left as they are"
        elif free == 0:
            state, message = "waiting", f"waiting: pool {where.pool} has 0 free slots"
        else:
            state, message = "pending", f"pending: {error or 'replicas starting'}"
        nodes[nid] = {
            "pool": where.pool,
            "desired": where.replicas,
            "actual": running,
            "state": state,
            "message": message,
            "restarts": int(seen.get("restarts", 0)),
            "records_in": int(seen.get("records_in", 0)),
            "records_out": int(seen.get("records_out", 0)),
            "lag": int(seen.get("lag", 0)),
            "last_error": error,
        }
    return {"nodes": nodes, "summary": _summary(nodes, paused)}


def _summary(nodes: dict[str, dict[str, Any]], paused: bool) -> str:
    degraded = sorted(
        f"{nid} {n['message']}" for nid, n in nodes.items() if n["state"] == "degraded"
    )
    if degraded:
        return "; ".join(degraded)
    drifted = sorted(n["message"] for n in nodes.values() if n["state"] == "drift")
    if drifted:
        return "; ".join(drifted)
    waiting = sorted({n["message"] for n in nodes.values() if n["state"] == "waiting"})
    if waiting:
        return "; ".join(waiting)
    if paused:
        return "paused"
    if any(n["state"] == "pending" for n in nodes.values()):
        return "pending"
    return "converged"


#: a workload's columns, in the order ``lockstep workloads`` shows them
WORKLOAD_FIELDS = (
    "deployment",
    "node",
    "replica",
    "state",
    "pool",
    "worker",
    "since",
    "restarts",
    "records_in",
    "records_out",
    "lag",
    "errors",
    "last_error",
)


def workloads(deployments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What runs where, from each deployment's recorded status: a row per replica the
    reconciler started (``current`` False: of an older deploy, being rolled away)."""
    rows: list[dict[str, Any]] = []
    for d in deployments:
        for r in (d.get("status") or {}).get("replicas", []):
            row = {key: r.get(key) for key in WORKLOAD_FIELDS}
            rows.append({**row, "deployment": d["name"], "current": bool(r.get("current"))})
    return rows
