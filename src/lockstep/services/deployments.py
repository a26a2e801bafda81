"""Deployments: plan, deploy, rollback, pause, resume, delete, and their reads.

A plan resolves the version once, checks every choice (placement groups, pools, replicas,
the definition), computes the change set against what is deployed, and is kept under its id.
A deploy applies exactly a kept plan, refusing a stale one; a rollback is a plan of an earlier
desired state deployed through the same path. Only the desired state changes here: the
reconciler converges the running replicas to it (``docs/deployments.md``).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError

from lockstep.deployments.model import (
    DEFAULT_POOL,
    Desired,
    carry_over,
    check_groups,
    check_replicas,
    placed,
)
from lockstep.errors import Conflict, InvalidRequest, PermissionDenied
from lockstep.services.selectors import Resolved, SelectorResolver
from lockstep.storage import deployments as store
from lockstep.storage import identity
from lockstep.storage import workers as worker_store
from lockstep.storage.database import Database

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from lockstep.deployments.plan import Plan, State
    from lockstep.services.replica_control import ReplicaControl
    from lockstep.spec.pipeline import PipelineSpec

#: how many events a listing returns at most
MAX_EVENTS = 1000
log = logging.getLogger(__name__)


class DeploymentService:
    def __init__(self, db: Database, versions: SelectorResolver) -> None:
        self._db = db
        self._versions = versions
        #: called after the desired state changed (project, name): the server tells the
        #: deployment's controller (``services.deployment_control``) to look again
        self.on_change: Callable[[str, str], Awaitable[object]] | None = None

    async def _changed(self, project: str, name: str) -> None:
        if self.on_change is None:
            return  # no controller here (a one-shot CLI): the server's start-up catches up
        try:
            await self.on_change(project, name)
        except Exception:  # the change is recorded; the controller's next round sees it
            log.exception("deployment.controller_unreachable", extra={"deployment": name})

    # -- plan, deploy, rollback ---------------------------------------------------------------

    async def plan(
        self,
        project: str,
        name: str,
        *,
        version: str | None,
        placement: dict[str, str],
        replicas: dict[str, Any],
        overrides: dict[str, dict[str, str]] | None,
        recompute: bool,
        by: str,
        reason: str | None,
    ) -> dict[str, Any]:
        """Compute and keep the plan that would take deployment ``name`` to ``version``
        (default: its selector, resolved again) with these choices on top of the deployed
        ones. Refused, keeping nothing, when a choice is bad."""
        counts = check_replicas(replicas)
        base, current = await self._current(project, name)
        if version is None:
            if current is None:
                raise InvalidRequest(
                    f"deployment '{name}' has nothing deployed yet; give --version DEF@N"
                )
            version = current.desired.selector
        got = await self._versions.resolve(project, version)
        spec = _pipeline(got)
        if current is not None and got.definition != current.desired.definition:
            raise InvalidRequest(
                f"deployment '{name}' deploys definition '{current.desired.definition}'; "
                f"{version} is a version of '{got.definition}' (use another deployment name)"
            )
        check_groups(spec, list(placement), "placement")
        check_groups(spec, list(counts), "replicas")
        for node in overrides or {}:
            if node not in spec.nodes:
                raise InvalidRequest(f"overrides name node '{node}', which {spec.name} lacks")
        prior = current.desired if current else None
        chosen_p, chosen_r, notes = carry_over(prior, spec, placement, counts)
        target = Desired(
            definition=got.definition,
            version=got.number,
            selector=got.selector,
            digest=_digest(got),
            placement=chosen_p,
            replicas=chosen_r,
            overrides=dict(overrides) if overrides is not None else _kept(prior, spec),
        )
        plan = await self._make(project, name, base, current, target, spec, recompute, notes)
        await self._db.call(lambda s: store.save_plan(s, project, plan.to_json(), by, reason))
        return _shown(plan)

    async def deploy(
        self, project: str, name: str, plan_id: str, *, by: str, reason: str | None
    ) -> dict[str, Any]:
        """Apply exactly the kept plan ``plan_id``; refuse it when it is stale."""
        plan = await self._db.call(lambda s: store.get_plan(s, project, name, plan_id))
        if plan["applied_generation"] is not None:
            raise Conflict(
                f"plan {plan_id} was deployed already (generation {plan['applied_generation']}); "
                "make a new plan"
            )
        desired = Desired.from_json(plan["desired"])
        now = await self._versions.resolve(project, desired.selector)
        if now.definition != desired.definition or now.number != desired.version:
            raise Conflict(
                f"plan {plan_id} is stale: {desired.selector} now names version {now.number}, "
                f"the plan was made for version {desired.version}; make a new plan"
            )
        return await self._apply(project, name, plan, "deploy", by, reason)

    async def rollback(
        self, project: str, name: str, *, to: int | None, by: str, reason: str | None
    ) -> dict[str, Any]:
        """Plan and deploy an earlier desired state: the previous deploy's, or (``to``) the
        latest deploy of that version, or that version with the current choices."""
        base, current = await self._current(project, name)
        if current is None:
            raise InvalidRequest(f"deployment '{name}' has nothing deployed to roll back")
        history = await self._db.call(lambda s: store.revisions(s, project, name))
        now = current.desired
        earlier: Desired | None = None
        if to is None:
            if len(history) < 2:
                raise Conflict(
                    f"deployment '{name}' has no earlier deploy to roll back to; "
                    "name a version with --to"
                )
            earlier = Desired.from_json(history[1]["desired"])
        else:
            found = [h for h in history if h["desired"]["version"] == to]
            if found:
                earlier = Desired.from_json(found[0]["desired"])
        number = earlier.version if earlier else to
        # pinned to the number: a later tag move must not make the rollback stale
        got = await self._versions.resolve(project, f"{now.definition}@{number}")
        spec = _pipeline(got)
        if earlier is None:
            placement, replicas, notes = carry_over(now, spec, {}, {})
            earlier = Desired(
                now.definition,
                got.number,
                got.selector,
                _digest(got),
                placement,
                replicas,
                _kept(now, spec),
            )
        else:
            notes = []
            earlier = Desired.from_json({**earlier.to_json(), "selector": got.selector})
        plan = await self._make(project, name, base, current, earlier, spec, False, notes)
        shown = plan.to_json()
        await self._db.call(lambda s: store.save_plan(s, project, shown, by, reason))
        applied = await self._apply(project, name, shown, "rollback", by, reason)
        return {**applied, "plan": _shown(plan)}

    async def _apply(
        self, project: str, name: str, plan: dict[str, Any], action: str, by: str, why: str | None
    ) -> dict[str, Any]:
        if not plan["changed"]:
            row = await self._db.call(lambda s: store.find(s, project, name))
            return {
                "deployed": False,
                "generation": row.generation if row else 0,
                "message": f"plan {plan['id']} changes nothing; nothing deployed",
            }
        try:
            generation = await self._db.call(
                lambda s: store.apply(s, project, plan, action=action, by=by, reason=why)
            )
        except IntegrityError:  # another deploy of the same generation won the race
            raise Conflict(
                f"plan {plan['id']} is stale: another deploy of '{name}' happened at the same "
                "time; make a new plan"
            ) from None
        await self._changed(project, name)
        return {
            "deployed": True,
            "generation": generation,
            "message": f"deployment {name}: generation {generation}, version "
            f"{plan['desired']['version']} ({plan['id']})",
        }

    async def secrets_used(self, project: str, replica_id: str) -> list[str]:
        """The secrets the deployed version of the deployment ``replica_id`` is a replica of
        uses (``deployment/PROJECT/NAME/...``); refused for a deployment deleted or not there."""
        parts = replica_id.split("/")
        if len(parts) < 3 or parts[0] != "deployment" or parts[1] != project:
            raise PermissionDenied(f"'{replica_id[:200]}' is no replica of project {project}")
        row = await self._db.call(lambda s: store.find(s, project, parts[2]))
        _, current = await self._current(project, parts[2])
        if row is None or row.deleted_at is not None or current is None:
            raise PermissionDenied(f"deployment '{parts[2]}' is not deployed")
        return sorted({name for node in current.spec.nodes.values() for name in node.secrets})

    async def _current(self, project: str, name: str) -> tuple[int, State | None]:
        """The generation plans start from and the deployed state (None: nothing deployed)."""
        from lockstep.deployments.plan import State

        row = await self._db.call(lambda s: store.find(s, project, name))
        if row is None:
            return 0, None
        if row.desired_json is None:
            return row.generation, None
        desired = Desired.from_json(store.out(row)["desired"])
        got = await self._versions.resolve(project, f"{desired.definition}@{desired.version}")
        return row.generation, State(desired, _pipeline(got))

    async def _make(
        self,
        project: str,
        name: str,
        base: int,
        current: State | None,
        target: Desired,
        spec: PipelineSpec,
        recompute: bool,
        notes: list[str],
    ) -> Plan:
        from lockstep.deployments.plan import State, compute_plan

        known = await self._db.call(worker_store.known_pools) | {DEFAULT_POOL}
        for group, where in sorted({(p.group, p.pool) for p in placed(spec, target).values()}):
            if where not in known:
                raise InvalidRequest(
                    f"pool '{where}' (placement of '{group}') does not exist: no worker has "
                    f"joined it; known pools: {', '.join(sorted(known))}"
                )
        return compute_plan(
            name, base, current, State(target, spec), recompute=recompute, notes=tuple(notes)
        )

    # -- reads and operations -------------------------------------------------------------------

    async def list_all(self, project: str) -> list[dict[str, Any]]:
        return await self._db.call(lambda s: store.list_deployments(s, project))

    async def workloads(self, project: str, name: str | None = None) -> list[dict[str, Any]]:
        """Every replica of the project's deployments (or of ``name``), as last observed."""
        from lockstep.deployments.status import workloads

        rows = await self._db.call(lambda s: store.list_deployments(s, project))
        if name is not None:
            rows = [r for r in rows if r["name"] == name]
        return workloads(rows)

    async def show(self, project: str, name: str) -> dict[str, Any]:
        """The deployment, where each node runs (desired), and every deploy."""
        row = await self._db.call(lambda s: store.out(store.live(s, project, name)))
        history = await self._db.call(lambda s: store.revisions(s, project, name))
        _, current = await self._current(project, name)
        nodes = {}
        if current is not None:
            nodes = {
                nid: {"group": p.group, "pool": p.pool, "replicas": p.replicas}
                for nid, p in placed(current.spec, current.desired).items()
            }
        return {**row, "nodes": nodes, "revisions": history}

    async def get_plan(self, project: str, name: str, plan_id: str) -> dict[str, Any]:
        return await self._db.call(lambda s: store.get_plan(s, project, name, plan_id))

    async def events(self, project: str, name: str, *, limit: int) -> list[dict[str, Any]]:
        await self._db.call(lambda s: store.live(s, project, name))
        return await self._db.call(
            lambda s: store.events(s, project, name, limit=min(limit, MAX_EVENTS))
        )

    async def set_paused(
        self, project: str, name: str, paused: bool, *, by: str, reason: str | None
    ) -> dict[str, Any]:
        shown = await self._db.call(
            lambda s: store.set_paused(s, project, name, paused, by, reason)
        )
        await self._changed(project, name)
        return shown

    async def set_drift_policy(
        self, project: str, name: str, policy: str, *, by: str, reason: str | None
    ) -> dict[str, Any]:
        if policy not in store.DRIFT_POLICIES:
            raise InvalidRequest(
                f"drift policy must be {' or '.join(store.DRIFT_POLICIES)}, got {policy!r}"
            )
        shown = await self._db.call(
            lambda s: store.set_drift_policy(s, project, name, policy, by, reason)
        )
        await self._changed(project, name)
        return shown

    async def delete(self, project: str, name: str, *, by: str, reason: str | None) -> None:
        await self._db.call(lambda s: store.delete(s, project, name, by, reason))
        await self._changed(project, name)

    # -- the reconciler's side --------------------------------------------------------------------

    async def observe(self, project: str, name: str, replicas: ReplicaControl | None) -> bool:
        """Converge the replicas (``replicas``: the server's hands; None: only record) and
        record desired against actual per node (and why they differ); False once the
        deployment is deleted, its replicas then stopped."""
        from lockstep.deployments.status import node_status

        row = await self._db.call(lambda s: store.find(s, project, name))
        before = json.loads(row.status_json) if row is not None and row.status_json else {}
        known = _replicas(before)
        if row is None or row.deleted_at is not None:
            if replicas is not None:
                await replicas.stop_all(known)
            return False
        _, current = await self._current(project, name)
        if current is None:
            return False
        capacity = await self._db.call(worker_store.pool_capacity)
        where = placed(current.spec, current.desired)
        paused = bool(row.paused)
        actual: dict[str, dict[str, Any]] = {}
        listed: list[dict[str, Any]] = []
        done: list[tuple[str, str, dict[str, Any]]] = []
        drift: dict[str, Any] = before.get("drift") or {}
        if replicas is not None:
            seen = await replicas.converge(
                project,
                name,
                current.spec,
                current.desired,
                paused=paused,
                known=known,
                policy=row.drift_policy,
                drift_before=drift,
            )
            actual, listed, done, drift = seen.nodes, seen.replicas, seen.events, seen.drift
        status = {
            **node_status(where, capacity, actual, paused=paused),
            "replicas": listed,
            "drift": drift,
        }

        def record(s: Session) -> bool:
            for kind, reason, detail in done:
                store.add_event(s, project, name, kind, "reconciler", reason, detail)
                # what the reconciler did on its own is audited too (no person, no address)
                identity.append_audit(
                    s,
                    project=project,
                    principal=None,
                    action=f"RECONCILE /deployments/{name} {kind}",
                    address=None,
                    status=200,
                    detail={"reason": reason, **detail},
                )
            return store.record_status(s, project, name, status)

        return await self._db.call(record)

    async def live_names(self) -> list[tuple[str, str]]:
        return await self._db.call(store.live_names)


def _replicas(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The replicas the reconciler started, as its last round recorded them."""
    listed = status.get("replicas", [])
    return [r for r in listed if isinstance(r, dict) and "id" in r]


def _pipeline(got: Resolved) -> PipelineSpec:
    from lockstep.spec.documents import load_workflow
    from lockstep.spec.pipeline_checks import LoadedPipeline

    loaded = load_workflow(got.text, got.file)
    if not isinstance(loaded, LoadedPipeline):
        raise InvalidRequest(
            f"{got.selector} is a workflow, not a pipeline (kind: pipeline); "
            f"run it with `lockstep run {got.selector}`"
        )
    if loaded.spec.params is not None or loaded.spec.inputs:
        raise InvalidRequest(
            f"{got.selector} is a pipeline blueprint (it has params or open inputs): use it "
            "from a pipeline's node (`uses: ./path.yaml`) and deploy that pipeline"
        )
    return loaded.spec


def _digest(got: Resolved) -> str:
    return hashlib.sha256(got.text.encode()).hexdigest()


def _kept(prior: Desired | None, spec: PipelineSpec) -> dict[str, dict[str, str]]:
    """The deployed env overrides of nodes the version still has."""
    if prior is None:
        return {}
    return {k: v for k, v in prior.overrides.items() if k in spec.nodes}


def _shown(plan: Plan) -> dict[str, Any]:
    from lockstep.deployments.plan import render

    return {**plan.to_json(), "lines": render(plan)}
