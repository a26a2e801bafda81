"""The reconciler's hands: start, observe and stop a deployment's replicas (one
``ReplicaWorkflow`` each, ``deployments.replica_workflow``), rolling node by node.

Called by the controller's round (``DeploymentControl.observe``). What it saw per replica
(worker, since, restarts, records in/out, lag, last error) is returned for the deployment's
status record, which ``lockstep workloads`` reads; the replica workflow ids it started are kept
there too, so the next round (or the next server) finds them again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from lockstep.deployments.drift import Drift, judge
from lockstep.deployments.model import Desired, placed
from lockstep.deployments.replica_workflow import (
    REPLICA_TYPE,
    ReplicaInput,
    ReplicaTask,
    ReplicaWorkflow,
    replica_id,
)
from lockstep.pipelines.channels.stream import BrokerUnavailable
from lockstep.pipelines.nats_server import NatsServer, broker_url
from lockstep.pipelines.wiring import NodeRun, carried_by, needs_broker, node_runs
from lockstep.settings import Settings, pool_queue
from lockstep.spec.pipeline import PipelineSpec, edges

log = logging.getLogger(__name__)

#: (project, secret names) -> the names not set in the project
MissingSecrets = Callable[[str, list[str]], Awaitable[list[str]]]


@dataclass
class Seen:
    """What a round learnt: per node its running replicas and counters, per replica a row."""

    nodes: dict[str, dict[str, Any]] = field(default_factory=dict)
    replicas: list[dict[str, Any]] = field(default_factory=list)
    #: (kind, reason, detail) of what this round did: replica started / stopped, drift
    events: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    #: ``Drift.to_json``: what the next round must remember (replicas held, foreign ones)
    drift: dict[str, Any] = field(default_factory=dict)


class Broker:
    """``LOCKSTEP_NATS_URL``, or an embedded nats-server in the home, started the first time
    a deployment needs a ``stream`` channel and stopped with the server."""

    def __init__(self, configured: str | None, home: Path) -> None:
        self._configured = configured
        self._home = home
        self._url: str | None = None
        self._server: NatsServer | None = None
        self._lock = asyncio.Lock()

    async def url(self) -> str:
        async with self._lock:
            if self._url is None:
                self._url, self._server = await broker_url(self._configured, self._home)
            return self._url

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()


class ReplicaControl:
    def __init__(
        self,
        client: Client,
        settings: Settings,
        queue: str,
        store: Path | None,
        missing_secrets: MissingSecrets | None = None,
    ):
        self._client = client
        self._missing_secrets = missing_secrets
        self._queue = queue
        self._heartbeat_s = settings.replica_heartbeat_timeout
        self._store = store
        self.broker = Broker(settings.nats_url, settings.home_dir)
        #: replicas this server stopped, and when (not drift when seen gone or still running)
        self._cancelled: dict[str, float] = {}
        #: how a replica's workflow ended, from the last describe that found it not running
        self._ended: dict[str, str] = {}

    async def converge(
        self,
        project: str,
        name: str,
        spec: PipelineSpec,
        desired: Desired,
        *,
        paused: bool,
        known: list[dict[str, Any]],
        policy: str = "reconcile",
        drift_before: dict[str, Any] | None = None,
    ) -> Seen:
        """Start what is missing and stop what is left over, node by node downstream first
        (a node's old replicas stop once its new ones run, and until then hold the roll there;
        a node with none to replace does not hold it). Paused: only look."""
        runs = node_runs(project, name, spec, desired)
        where = placed(spec, desired)
        want: dict[str, tuple[str, str, str]] = {}  # id -> (node, replica, pool)
        blocked: dict[str, str] = {}
        carried = carried_by(spec)
        for nid, at in where.items():
            if nid in carried:
                continue  # runs in the replicas of the unit its local channels join it to
            reason = await self._missing(project, runs[nid])
            if reason is not None:
                blocked[nid] = reason
                continue
            for i in range(at.replicas):
                rid = replica_id(project, name, nid, str(i), runs[nid].digest)
                want[rid] = (nid, str(i), at.pool)
        alive = {r["id"]: r for r in known}
        seen = {rid: await self._describe(rid) for rid in {*alive, *want}}
        ended = {
            rid: self._ended.get(rid, "stopped")
            for rid in alive
            if seen[rid] is None and rid not in self._cancelled
        }
        alive = {rid: r for rid, r in alive.items() if seen[rid] is not None}
        drift = judge(
            policy=policy,
            paused=paused,
            before=drift_before or {},
            want=want,
            ended=ended,
            unknown=await self._unknown(project, name, {*alive, *want}),
        )
        for rid, (nid, replica, pool) in want.items():  # started by a round never recorded
            if seen[rid] is not None and rid not in alive:
                alive[rid] = {"id": rid, "node": nid, "replica": replica, "pool": pool}
        done: list[tuple[str, str, dict[str, Any]]] = []
        if (want or alive) and needs_broker(runs):
            # also after a server restart: running replicas need the embedded broker back
            try:
                await self.broker.url()
            except BrokerUnavailable as exc:  # said on the nodes that need it; none started
                for nid, run in runs.items():
                    if needs_broker({nid: run}) and nid not in blocked:
                        blocked[nid] = str(exc)
                want = {rid: w for rid, w in want.items() if w[0] not in blocked}
        done.extend(("drift", why, {}) for why in drift.events)
        for rid in sorted(drift.stop):
            await self._cancel(rid)
        if not paused:
            await self._roll(
                project, name, spec, runs, want, alive, seen, done, set(blocked), drift.held
            )
        found = self._summary(where, want, alive, seen, blocked, drift)
        _carry(found, carried)
        forget(self._cancelled, self._ended, f"deployment/{project}/{name}/", {*alive, *want})
        found.events = done
        found.drift = drift.to_json()
        return found

    async def _missing(self, project: str, run: NodeRun) -> str | None:
        """Why the unit cannot start: a secret its nodes use is not set (None: it can)."""
        if not run.secrets or self._missing_secrets is None:
            return None
        gone = await self._missing_secrets(project, run.secrets)
        if not gone:
            return None
        return (
            f"secret {', '.join(gone)} is not set in project {project}; "
            f"set it with `lockstep secrets set {gone[0]}`"
        )

    async def stop_all(self, known: list[dict[str, Any]]) -> None:
        for r in known:
            await self._cancel(r["id"])

    async def _roll(
        self,
        project: str,
        name: str,
        spec: PipelineSpec,
        runs: dict[str, NodeRun],
        want: dict[str, tuple[str, str, str]],
        alive: dict[str, dict[str, Any]],
        seen: dict[str, dict[str, Any] | None],
        done: list[tuple[str, str, dict[str, Any]]],
        blocked: set[str],
        held: set[str],
    ) -> None:
        order = _downstream_first(spec)
        order += sorted({r["node"] for r in alive.values()} - set(order))  # deleted nodes
        for nid in order:
            mine = {rid: w for rid, w in want.items() if w[0] == nid}
            old = [rid for rid, r in alive.items() if r["node"] == nid and rid not in want]
            if nid in blocked:
                if old:
                    return  # its old replicas keep running; the roll waits here
                continue
            for rid, (node, replica, pool) in mine.items():
                if seen[rid] is None and rid not in held:
                    await self._start(project, name, runs[node], rid, replica, pool)
                    alive[rid] = {"id": rid, "node": node, "replica": replica, "pool": pool}
                    done.append(("replica_started", f"{node}/{replica} on pool {pool}", _at(rid)))
            if all(_healthy(seen[rid]) for rid in mine):
                for rid in old:
                    await self._cancel(rid)
                    gone = alive.pop(rid)
                    why = f"{nid}/{gone['replica']}: replaced or no longer desired"
                    done.append(("replica_stopped", why, _at(rid)))
            elif old:
                return  # the roll waits here: this node's new replicas replace running ones

    async def _start(
        self, project: str, name: str, run: NodeRun, rid: str, replica: str, pool: str
    ) -> None:
        spec = run.to_json()
        if needs_broker({run.node.name: run}):
            spec["nats_url"] = await self.broker.url()
        if self._store is not None:
            spec["store"] = str(self._store)
        task = ReplicaTask(project, name, run.node.name, replica, json.dumps(spec))
        await self._client.start_workflow(
            ReplicaWorkflow.run,
            ReplicaInput(task, pool_queue(pool), self._heartbeat_s),
            id=rid,
            task_queue=self._queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        )
        log.info("deployment.replica_started", extra={"replica": rid, "pool": pool})

    async def _cancel(self, rid: str) -> None:
        self._cancelled[rid] = time.monotonic()
        with contextlib.suppress(RPCError):
            await self._client.get_workflow_handle(rid).cancel()
        log.info("deployment.replica_stopped", extra={"replica": rid})

    async def _describe(self, rid: str) -> dict[str, Any] | None:
        """The replica as Temporal last saw it; None when its workflow is not running."""
        try:
            found = await self._client.get_workflow_handle(rid).describe()
        except RPCError:
            self._ended[rid] = "removed"
            return None
        if found.status != WorkflowExecutionStatus.RUNNING:
            status = found.status.name.lower().replace("_", " ") if found.status else "stopped"
            self._ended[rid] = "cancelled" if status == "canceled" else status
            return None
        self._ended.pop(rid, None)
        out: dict[str, Any] = {"state": "waiting", "restarts": 0}
        for act in found.raw_description.pending_activities:
            details: dict[str, Any] = {}
            if act.heartbeat_details.payloads:
                got = await self._client.data_converter.decode(act.heartbeat_details.payloads)
                details = got[0] if got and isinstance(got[0], dict) else {}
            started = act.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
            out = {
                "state": str(details.get("state", "starting")) if started else "waiting",
                "worker": act.last_worker_identity or None,
                "since": act.last_started_time.ToJsonString() if started else None,
                # attempts of the activity (a lost worker, a crash loop) and program restarts
                "restarts": act.attempt - 1 + int(details.get("restarts", 0)),
                "records_in": int(details.get("records_in", 0)),
                "records_out": int(details.get("records_out", 0)),
                "lag": int(details.get("lag", 0)),
                "errors": int(details.get("errors", 0)),
                "last_error": details.get("last_exit") or act.last_failure.message or None,
            }
            if isinstance(details.get("nodes"), dict) and len(details["nodes"]) > 1:
                out["nodes"] = details["nodes"]  # a unit of several nodes: each one's counters
        return out

    async def _unknown(self, project: str, name: str, ours: set[str]) -> set[str]:
        """Running replica workflows of this deployment that this reconciler did not start
        (the engine's list is eventually consistent: each is described before it counts)."""
        prefix = f"deployment/{project}/{name}/"
        query = f"WorkflowType = '{REPLICA_TYPE}' AND ExecutionStatus = 'Running'"
        found: set[str] = set()
        try:
            async for listed in self._client.list_workflows(query):
                rid = listed.id
                if rid.startswith(prefix) and rid not in ours | self._cancelled.keys():
                    found |= {rid} if await self._describe(rid) is not None else set()
        except RPCError:
            log.warning("deployment.list_replicas_failed", extra={"deployment": name})
        return found

    def _summary(
        self,
        where: dict[str, Any],
        want: dict[str, tuple[str, str, str]],
        alive: dict[str, dict[str, Any]],
        seen: dict[str, dict[str, Any] | None],
        blocked: dict[str, str],
        drift: Drift,
    ) -> Seen:
        out = Seen()
        for nid in where:
            out.nodes[nid] = {"running": 0, "restarts": 0, "records_in": 0, "records_out": 0}
            out.nodes[nid].update({"lag": 0, "last_error": blocked.get(nid)})
            if nid in drift.nodes:
                out.nodes[nid]["drift"] = drift.nodes[nid]
        for rid, r in sorted(alive.items()):
            got = seen.get(rid) or {"state": "starting", "restarts": 0}
            out.replicas.append({**r, **got, "current": rid in want})
            node = out.nodes.get(r["node"])
            if node is None or rid not in want:
                continue
            node["running"] += _healthy(got)
            node["degraded"] = node.get("degraded", False) or got.get("state") == "degraded"
            for key in ("restarts", "records_in", "records_out", "lag"):
                node[key] += int(got.get(key, 0))
            node["last_error"] = node["last_error"] or got.get("last_error")
        return out


#: how long a stopped replica is remembered once its deployment no longer lists it (the
#: engine's list of running workflows may show it for a while after the cancel)
REMEMBER_STOPPED_S = 600.0


def forget(
    cancelled: dict[str, float],
    ended: dict[str, str],
    prefix: str,
    current: set[str],
    now: float | None = None,
) -> None:
    """Drop what the rounds no longer need, so a long-lived server keeps no memory of
    deployments' past: how a replica of this deployment (ids under ``prefix``) ended once it is
    not ``current`` (each round describes its replicas again), and any stopped replica once it
    was stopped ``REMEMBER_STOPPED_S`` ago and is not current (deleted deployments' too)."""
    now = time.monotonic() if now is None else now
    for rid in [r for r in ended if r.startswith(prefix) and r not in current]:
        del ended[rid]
    for rid in [r for r, at in cancelled.items() if now - at > REMEMBER_STOPPED_S]:
        if rid not in current:
            del cancelled[rid]


def _carry(found: Seen, carried: dict[str, str]) -> None:
    """A node run in another's unit: its replicas are the unit's, its counters its own."""
    for nid, lead in carried.items():
        node, unit = found.nodes.get(nid), found.nodes.get(lead)
        if node is None or unit is None:
            continue
        for key in ("running", "restarts", "degraded", "last_error"):
            if key in unit:
                node[key] = unit[key]
        for r in found.replicas:
            mine = (r.get("nodes") or {}).get(nid)
            if r["node"] != lead or not r.get("current") or not isinstance(mine, dict):
                continue
            for key in ("records_in", "records_out", "lag"):
                node[key] += int(mine.get(key, 0))


def _at(rid: str) -> dict[str, Any]:
    return {"replica": rid}


def _healthy(seen: dict[str, Any] | None) -> bool:
    return seen is not None and seen.get("state") == "running"


def _downstream_first(spec: PipelineSpec) -> list[str]:
    from lockstep.deployments.plan import downstream_first

    return downstream_first(spec, edges(spec))
