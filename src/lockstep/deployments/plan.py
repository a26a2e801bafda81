"""The plan: what a deploy would change, node by node, computed from two desired states.

Pure: ``compute_plan`` compares what is deployed (``None``: nothing yet) with what is asked
for and says, per node, create / update (each field old → new) / delete, placement moves and
replica changes, channel changes, and which changes are disruptive. Its id is a digest over
both states, so the plan a person previewed is exactly the one a deploy applies.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lockstep.deployments.model import Desired, Placed, node_env, placed
from lockstep.spec.durations import format_duration
from lockstep.spec.pipeline import Edge, PipelineSpec, edges

#: node fields compared by a plan (``from`` shows as channel changes)
FIELDS = (
    "kind",
    "run",
    "image",
    "env",
    "secrets",
    "resources",
    "group",
    "inputs",
    "outputs",
    "stateful",
    "restart",
)
#: a change of one of these means the node runs another program
PROGRAM = frozenset({"run", "image", "env", "secrets", "resources"})


@dataclass(frozen=True)
class State:
    """A desired state with the pipeline its version holds."""

    desired: Desired
    spec: PipelineSpec


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: Any
    new: Any


@dataclass(frozen=True)
class NodeChange:
    node: str
    #: create, update, delete or unchanged
    action: str
    fields: tuple[FieldChange, ...] = ()
    pool: tuple[str | None, str | None] = (None, None)
    replicas: tuple[int | None, int | None] = (None, None)
    disruptive: tuple[str, ...] = ()
    recompute: bool = False

    @property
    def moved(self) -> bool:
        return self.action == "update" and self.pool[0] != self.pool[1]

    @property
    def scaled(self) -> bool:
        return self.action == "update" and self.replicas[0] != self.replicas[1]


@dataclass(frozen=True)
class ChannelChange:
    channel: str
    #: create, delete or update (class)
    action: str
    old_class: str | None
    new_class: str | None
    disruptive: str | None = None
    #: a stream channel's settings changed: "ack_wait 30s -> 3s" (its nodes roll to apply it)
    settings: str | None = None


@dataclass(frozen=True)
class Plan:
    id: str
    deployment: str
    base_generation: int
    desired: Desired
    previous: Desired | None
    nodes: tuple[NodeChange, ...]
    channels: tuple[ChannelChange, ...]
    #: nodes in the order a deploy rolls them: sinks first, deleted nodes last
    order: tuple[str, ...]
    recompute: bool
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def changed(self) -> bool:
        """Whether deploying it changes the desired state (a new version whose nodes are all
        the same still counts: the deployment then names it)."""
        same = self.previous is not None and self.previous.to_json() == self.desired.to_json()
        return not same or bool(self.channels) or any(n.action != "unchanged" for n in self.nodes)

    @property
    def disruptive(self) -> bool:
        return any(n.disruptive for n in self.nodes) or any(c.disruptive for c in self.channels)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deployment": self.deployment,
            "base_generation": self.base_generation,
            "desired": self.desired.to_json(),
            "previous": self.previous.to_json() if self.previous else None,
            "nodes": [
                {
                    "node": n.node,
                    "action": n.action,
                    "fields": [{"field": f.field, "old": f.old, "new": f.new} for f in n.fields],
                    "pool": list(n.pool),
                    "replicas": list(n.replicas),
                    "disruptive": list(n.disruptive),
                    "recompute": n.recompute,
                }
                for n in self.nodes
            ],
            "channels": [
                {
                    "channel": c.channel,
                    "action": c.action,
                    "old_class": c.old_class,
                    "new_class": c.new_class,
                    "disruptive": c.disruptive,
                    "settings": c.settings,
                }
                for c in self.channels
            ],
            "order": list(self.order),
            "recompute": self.recompute,
            "notes": list(self.notes),
            "changed": self.changed,
            "disruptive": self.disruptive,
        }


def plan_id(
    deployment: str, base_generation: int, current: Desired | None, target: Desired, recompute: bool
) -> str:
    """The digest that names a plan: the deployed state it starts from and the state it asks
    for (the same request against the same deployment gets the same id)."""
    material = {
        "deployment": deployment,
        "base": base_generation,
        "current": current.to_json() if current else None,
        "target": target.to_json(),
        "recompute": recompute,
    }
    text = json.dumps(material, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compute_plan(
    deployment: str,
    base_generation: int,
    current: State | None,
    target: State,
    *,
    recompute: bool = False,
    notes: tuple[str, ...] = (),
) -> Plan:
    new_at = placed(target.spec, target.desired)
    old_at = placed(current.spec, current.desired) if current else {}
    changes: list[NodeChange] = []
    for nid in target.spec.nodes:
        if current is None or nid not in current.spec.nodes:
            where = new_at[nid]
            changes.append(
                NodeChange(nid, "create", pool=(None, where.pool), replicas=(None, where.replicas))
            )
        else:
            changes.append(_update(nid, current, target, old_at[nid], new_at[nid], recompute))
    for nid in current.spec.nodes if current else {}:
        if nid not in target.spec.nodes:
            assert current is not None
            where = old_at[nid]
            lost = (
                ("records queued for it are dropped",)
                if current.spec.nodes[nid].input_ports()
                else ()
            )
            changes.append(
                NodeChange(
                    nid,
                    "delete",
                    pool=(where.pool, None),
                    replicas=(where.replicas, None),
                    disruptive=lost,
                )
            )
    channels = _channels(current, target)
    extra = list(notes)
    if recompute and not any(c.recompute for c in changes):
        extra.append("--recompute: no stateful node changes, nothing to recompute")
    return Plan(
        id=plan_id(
            deployment,
            base_generation,
            current.desired if current else None,
            target.desired,
            recompute,
        ),
        deployment=deployment,
        base_generation=base_generation,
        desired=target.desired,
        previous=current.desired if current else None,
        nodes=tuple(changes),
        channels=tuple(channels),
        order=_roll_order(changes, current, target),
        recompute=recompute,
        notes=tuple(extra),
    )


def _node_data(state: State, nid: str) -> dict[str, Any]:
    node = state.spec.nodes[nid]
    data = node.model_dump(by_alias=True, mode="json")
    data["env"] = node_env(state.spec, state.desired, nid)
    data["inputs"] = node.input_ports()
    data["outputs"] = node.output_ports()
    return {k: data.get(k) for k in FIELDS}


def _channel_settings(state: State, nid: str) -> dict[str, dict[str, float]]:
    """The settings of the channels a node reads or writes, by channel."""
    mine = (e for e in edges(state.spec) if nid in (e.source, e.target))
    return {e.key: e.options for e in mine if e.options}


def _contracts(state: State, nid: str) -> dict[str, Any]:
    """Each input port's contract as its schema (a changed schema is a changed contract)."""
    ports = state.spec.nodes[nid].input_ports()
    return {p: (c, state.spec.contracts.get(c) if c else None) for p, c in ports.items()}


def _update(
    nid: str, current: State, target: State, old: Placed, new: Placed, recompute: bool
) -> NodeChange:
    before, after = _node_data(current, nid), _node_data(target, nid)
    fields = tuple(FieldChange(k, before[k], after[k]) for k in FIELDS if before[k] != after[k])
    tuned = _channel_settings(current, nid), _channel_settings(target, nid)
    if tuned[0] != tuned[1]:  # its replicas restart to take a channel's new settings
        fields += (FieldChange("channel settings", *tuned),)
    disruptive: list[str] = []
    old_in, new_in = _contracts(current, nid), _contracts(target, nid)
    contract_changed = any(p in old_in and old_in[p] != new_in[p] for p in new_in)
    if contract_changed:
        disruptive.append("input contract changed: records queued were written for the old one")
    stateful = current.spec.nodes[nid].stateful and target.spec.nodes[nid].stateful
    program_changed = any(f.field in PROGRAM or f.field == "inputs" for f in fields)
    needs_state = stateful and (program_changed or contract_changed)
    if needs_state and recompute:
        disruptive.append("state is recomputed from its input (--recompute)")
    elif needs_state:
        disruptive.append("state built by the old program is kept; pass --recompute to rebuild it")
    moved_or_scaled = old.pool != new.pool or old.replicas != new.replicas
    action = "update" if fields or moved_or_scaled else "unchanged"
    return NodeChange(
        nid,
        action,
        fields=fields,
        pool=(old.pool, new.pool),
        replicas=(old.replicas, new.replicas),
        disruptive=tuple(disruptive),
        recompute=needs_state and recompute,
    )


def _channels(current: State | None, target: State) -> list[ChannelChange]:
    old = {e.key: e for e in edges(current.spec)} if current else {}
    new = {e.key: e for e in edges(target.spec)}
    out: list[ChannelChange] = []
    for key, edge in new.items():
        was = old.get(key)
        if was is None:
            out.append(ChannelChange(key, "create", None, edge.klass))
        elif was.klass != edge.klass:
            why = f"records queued on the old {was.klass} channel are not moved to the new one"
            out.append(ChannelChange(key, "update", was.klass, edge.klass, why))
        elif was.options != edge.options:
            out.append(
                ChannelChange(key, "update", was.klass, edge.klass, None, _settings(was, edge))
            )
    for key, edge in old.items():
        if key not in new:
            out.append(ChannelChange(key, "delete", edge.klass, None))
    return out


#: the data plane's option -> the workflow.yaml key it is written as, and how it reads
_SETTINGS: dict[str, tuple[str, Callable[[float], str]]] = {
    "ack_wait_s": ("ack_wait", format_duration),
    "max_messages": ("max_backlog", lambda n: str(int(n))),
}


def _settings(was: Edge, now: Edge) -> str:
    """What changed in a channel's settings, as written in workflow.yaml."""
    said = []
    for option, (key, shown) in _SETTINGS.items():
        a, b = was.options.get(option), now.options.get(option)
        if a != b:
            old = "default" if a is None else shown(a)
            new = "default" if b is None else shown(b)
            said.append(f"{key} {old} -> {new}")
    return ", ".join(said)


def downstream_first(spec: PipelineSpec, channels: list[Edge]) -> list[str]:
    """Nodes with every consumer before its producer (file order among equals)."""
    consumers: dict[str, set[str]] = {nid: set() for nid in spec.nodes}
    for e in channels:
        if e.source in consumers and e.target in consumers:
            consumers[e.source].add(e.target)
    done: list[str] = []
    placed_: set[str] = set()
    while len(done) < len(consumers):
        ready = [n for n in consumers if n not in placed_ and consumers[n] <= placed_]
        if not ready:  # a cycle (validation refuses them): keep file order
            ready = [n for n in consumers if n not in placed_]
        done.append(ready[0])
        placed_.add(ready[0])
    return done


def _roll_order(changes: list[NodeChange], current: State | None, target: State) -> tuple[str, ...]:
    actions = {c.node: c.action for c in changes}
    live = [
        n
        for n in downstream_first(target.spec, edges(target.spec))
        if actions.get(n) in ("create", "update")
    ]
    gone: list[str] = []
    if current is not None:
        order = downstream_first(current.spec, edges(current.spec))
        gone = [n for n in reversed(order) if actions.get(n) == "delete"]
    return tuple(live + gone)


def render(plan: Plan) -> list[str]:
    """The plan as a person reads it: one line per change, disruptive ones marked ``!``."""
    old = f"version {plan.previous.version}" if plan.previous else "nothing deployed"
    lines = [
        f"plan {plan.id} for deployment {plan.deployment}: {old} -> version "
        f"{plan.desired.version} ({plan.desired.selector})"
    ]
    marks = {"create": "+", "update": "~", "delete": "-"}
    for n in plan.nodes:
        if n.action == "unchanged":
            continue
        if n.action == "create":
            lines.append(f"  + {n.node}: create on pool {n.pool[1]}, {n.replicas[1]} replicas")
        elif n.action == "delete":
            lines.append(f"  - {n.node}: delete (pool {n.pool[0]}, {n.replicas[0]} replicas)")
        else:
            lines.append(f"  {marks[n.action]} {n.node}: update")
        for f in n.fields:
            lines.append(f"      {f.field}: {_short(f.old)} -> {_short(f.new)}")
        if n.moved:
            lines.append(f"      pool: {n.pool[0]} -> {n.pool[1]}")
        if n.scaled:
            lines.append(f"      replicas: {n.replicas[0]} -> {n.replicas[1]}")
        lines.extend(f"    ! {n.node}: {why}" for why in n.disruptive)
    for c in plan.channels:
        if c.action == "create":
            lines.append(f"  + channel {c.channel} ({c.new_class})")
        elif c.action == "delete":
            lines.append(f"  - channel {c.channel} ({c.old_class})")
        elif c.settings:
            lines.append(f"  ~ channel {c.channel}: {c.settings}")
        else:
            lines.append(f"  ~ channel {c.channel}: class {c.old_class} -> {c.new_class}")
        if c.disruptive:
            lines.append(f"    ! channel {c.channel}: {c.disruptive}")
    if not plan.changed:
        lines.append("  no changes: the deployment already runs this")
    elif not plan.channels and all(n.action == "unchanged" for n in plan.nodes):
        lines.append("  no node or channel changes")
    lines.extend(f"  note: {note}" for note in plan.notes)
    if plan.order:
        lines.append(f"  roll order: {', '.join(plan.order)}")
    return lines


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
