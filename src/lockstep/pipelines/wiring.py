"""The control side's model mapped onto the data plane's: a deployed pipeline node becomes a
``pipelines.model.Node`` with the ``Edge``s it reads and writes (``docs/deployments.md``).

Pure. Edge names are per deployment (they name the broker's streams and the landing folders),
so two deployments of one pipeline never share a channel; the name carries a digest of the
deployment and the edge's ends, and the ends themselves so a person can tell them apart.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from lockstep.deployments.model import Desired, node_env
from lockstep.errors import InvalidRequest
from lockstep.pipelines.model import Edge, Node, NodeKind
from lockstep.spec.pipeline import PipelineSpec, edges


@dataclass(frozen=True)
class NodeRun:
    """What every replica of one node runs: the node, its channels, and a digest of both
    (a replica started for another digest is of an older deploy and is rolled). Nodes joined
    to it by ``local`` channels (``also``) run in the same replica process: one unit, named
    after ``node``, the first of them in the spec."""

    node: Node
    edges: tuple[Edge, ...]
    #: ``pipelines.restarts.RestartPolicy``'s fields, per node of the unit
    restarts: dict[str, dict[str, float]]
    also: tuple[Node, ...] = ()

    @property
    def nodes(self) -> tuple[Node, ...]:
        return (self.node, *self.also)

    @property
    def secrets(self) -> list[str]:
        """The project secrets the unit's programs get (names only: values never travel)."""
        return sorted({name for n in self.nodes for name in n.secrets})

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        """The ``node``, ``also``, ``edges`` and ``restarts`` of a ``pipelines.replica`` spec."""
        return {
            "node": self.node.to_json(),
            "also": [n.to_json() for n in self.also],
            "edges": [
                {
                    "name": e.name,
                    "source": e.source,
                    "output": e.output,
                    "target": e.target,
                    "klass": e.klass,
                    "options": dict(e.options),
                }
                for e in self.edges
            ],
            "restarts": {k: dict(v) for k, v in self.restarts.items()},
        }


def edge_name(project: str, deployment: str, source: str, output: str, target: str) -> str:
    key = f"{project}/{deployment}/{source}.{output}->{target}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"e{digest}-{source[:30]}-{target[:30]}"


def node_runs(
    project: str, deployment: str, spec: PipelineSpec, desired: Desired
) -> dict[str, NodeRun]:
    """Every unit of the deployed version, as its replicas run it, by the name of its first
    node (a node joined to others by ``local`` channels is in their unit: ``carried_by``)."""
    channels = [
        Edge(
            name=edge_name(project, deployment, e.source, e.output, e.target),
            source=e.source,
            output=e.output,
            target=e.target,
            klass=e.klass,
            options=e.options,
        )
        for e in edges(spec)
    ]
    out: dict[str, NodeRun] = {}
    for lead, members in _units(spec).items():
        mine = tuple(c for c in channels if {c.source, c.target} & set(members))
        nodes = [_node(nid, spec, desired) for nid in members]
        restarts = {nid: spec.nodes[nid].restart.policy() for nid in members}
        out[lead] = NodeRun(nodes[0], mine, restarts, tuple(nodes[1:]))
    return out


def carried_by(spec: PipelineSpec) -> dict[str, str]:
    """Node -> the unit it runs in, for the nodes that are not first of their unit."""
    return {m: lead for lead, members in _units(spec).items() for m in members[1:]}


def _units(spec: PipelineSpec) -> dict[str, list[str]]:
    """The nodes joined by ``local`` channels (validation keeps them in one placement group),
    by the first of them in the spec; each other node alone."""
    root = {nid: nid for nid in spec.nodes}

    def find(n: str) -> str:
        while root[n] != n:
            n = root[n]
        return n

    for e in edges(spec):
        if e.klass == "local":
            a, b = find(e.source), find(e.target)
            root[max(a, b, key=list(spec.nodes).index)] = min(a, b, key=list(spec.nodes).index)
    units: dict[str, list[str]] = {}
    for nid in spec.nodes:
        units.setdefault(find(nid), []).append(nid)
    return units


def needs_broker(runs: dict[str, NodeRun]) -> bool:
    return any(e.klass == "stream" for r in runs.values() for e in r.edges)


def _node(nid: str, spec: PipelineSpec, desired: Desired) -> Node:
    given = spec.nodes[nid]
    if given.run is None and given.image is None:
        raise InvalidRequest(f"node {nid} has no run command")
    # a string is a shell line, as a step's `run` (in an image: its `sh`); a list is an argv;
    # an image without `run` runs its own command
    if isinstance(given.run, str):
        argv: tuple[str, ...] = ("sh" if given.image else "bash", "-c", given.run)
    else:
        argv = tuple(given.run or ())
    limits = given.resources
    return Node(
        name=nid,
        argv=argv,
        kind=NodeKind(given.kind),
        outputs=tuple(given.output_ports()),
        env=node_env(spec, desired, nid),
        image=given.image,
        cpu=limits.cpu if limits else None,
        memory_bytes=limits.memory if limits else None,
        secrets=tuple(given.secrets),
    )
