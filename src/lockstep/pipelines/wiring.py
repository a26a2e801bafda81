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
    (a replica started for another digest is of an older deploy and is rolled)."""

    node: Node
    edges: tuple[Edge, ...]
    #: ``pipelines.restarts.RestartPolicy``'s fields
    restart: dict[str, float]

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:12]

    def to_json(self) -> dict[str, Any]:
        """The ``node`` and ``edges`` of a ``pipelines.replica`` spec."""
        n = self.node
        return {
            "node": {
                "name": n.name,
                "argv": list(n.argv),
                "kind": str(n.kind),
                "outputs": list(n.outputs),
                "env": dict(n.env),
            },
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
            "restart": dict(self.restart),
        }


def edge_name(project: str, deployment: str, source: str, output: str, target: str) -> str:
    key = f"{project}/{deployment}/{source}.{output}->{target}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"e{digest}-{source[:30]}-{target[:30]}"


def node_runs(
    project: str, deployment: str, spec: PipelineSpec, desired: Desired
) -> dict[str, NodeRun]:
    """Every node of the deployed version, as its replicas run it."""
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
    for nid in spec.nodes:
        mine = tuple(c for c in channels if nid in (c.source, c.target))
        out[nid] = NodeRun(_node(nid, spec, desired), mine, spec.nodes[nid].restart.policy())
    return out


def needs_broker(runs: dict[str, NodeRun]) -> bool:
    return any(e.klass == "stream" for r in runs.values() for e in r.edges)


def unsupported(spec: PipelineSpec, nid: str) -> str | None:
    """Why this build cannot run the node's replicas (None: it can)."""
    node = spec.nodes[nid]
    if node.image is not None:
        return f"node {nid} runs an image; container nodes are not run by this build"
    if node.secrets:
        return f"node {nid} uses secrets; this build does not pass secrets to replicas"
    for e in edges(spec):
        if e.klass == "local" and nid in (e.source, e.target):
            return (
                f"node {nid} has a local channel; co-placed nodes in one replica process "
                "are not run by this build (use class: stream)"
            )
    return None


def _node(nid: str, spec: PipelineSpec, desired: Desired) -> Node:
    given = spec.nodes[nid]
    if given.run is None:
        raise InvalidRequest(f"node {nid} has no run command")
    # a string is a shell line, as a step's `run`; a list is an argv
    argv = ("bash", "-c", given.run) if isinstance(given.run, str) else tuple(given.run)
    return Node(
        name=nid,
        argv=argv,
        kind=NodeKind(given.kind),
        outputs=tuple(given.output_ports()),
        env=node_env(spec, desired, nid),
    )
