"""Typed models of a ``kind: pipeline`` workflow: long-running nodes joined by channels.

A pipeline is published and versioned like any workflow, but never run as one: a deployment
places its nodes on pools (``docs/deployments.md``). The graph rules live in
``spec.pipeline_checks``; this module is the format and the one normalisation of its edges
(``from:`` on a node and top-level ``edges:`` are two spellings of the same thing).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from lockstep.spec.models import EnvName, EnvValue, JsonSchema, PoolName, Resources, _Model
from lockstep.spec.names import MAX_REPLICAS, NAME_PATTERN, SECRET_NAME_PATTERN, STEP_ID_PATTERN
from lockstep.spec.quantities import Image

#: the port a node has when it declares none (untyped: it joins any contract)
DEFAULT_INPUT = "in"
DEFAULT_OUTPUT = "out"

NodeId = Annotated[str, StringConstraints(pattern=STEP_ID_PATTERN, max_length=63)]
PortName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
ContractName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.-]{0,62}$")]
SecretName = Annotated[str, StringConstraints(pattern=SECRET_NAME_PATTERN, max_length=128)]
#: a port reference: ``node`` (its only port) or ``node.port``
PortRef = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,62}(\.[A-Za-z_][A-Za-z0-9_]*)?$")
]
DeliveryClass = Literal["local", "stream", "landing"]
NodeKind = Literal["source", "transform", "sink"]
Replicas = Annotated[int, Field(ge=0, le=MAX_REPLICAS)]


class FromSpec(_Model):
    """One input of a node, written on the node: where it comes from and by which class."""

    node: PortRef = Field(description="the upstream node, or node.output")
    input: PortName | None = Field(None, description="this node's input (default: its only one)")
    class_: DeliveryClass = Field("stream", alias="class", description="the channel's class")


class EdgeSpec(_Model):
    """A channel written apart from the nodes: ``{from: a.out, to: b.in, class: stream}``."""

    from_: PortRef = Field(alias="from")
    to: PortRef
    class_: DeliveryClass = Field("stream", alias="class")


class NodeSpec(_Model):
    """One long-running job of the pipeline. Its key in ``nodes`` is its stable id."""

    kind: NodeKind = Field(description="source (no inputs), transform, or sink (no outputs)")
    description: str | None = None
    run: str | list[str] | None = Field(
        None, description="a string runs with `bash -c`; a list is an argv (with image: too)"
    )
    image: Image | None = Field(None, description="run in a container of this image")
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    secrets: list[SecretName] = Field(
        default_factory=list, max_length=50, description="project secrets given as env vars"
    )
    resources: Resources | None = None
    group: NodeId | None = Field(
        None, description="placement group: nodes of a group are placed and scaled together"
    )
    inputs: dict[PortName, ContractName] | None = Field(
        None, description="input port -> contract name (default: one untyped port 'in')"
    )
    outputs: dict[PortName, ContractName] | None = Field(
        None, description="output port -> contract name (default: one untyped port 'out')"
    )
    from_: list[PortRef | FromSpec] = Field(
        default_factory=list, alias="from", max_length=100, description="where inputs come from"
    )
    stateful: bool = Field(
        False, description="keeps state built from its input; a change may need --recompute"
    )

    def input_ports(self) -> dict[str, str | None]:
        """Port -> contract (None: untyped)."""
        if self.kind == "source":
            return dict(self.inputs or {})
        return dict(self.inputs) if self.inputs else {DEFAULT_INPUT: None}

    def output_ports(self) -> dict[str, str | None]:
        if self.kind == "sink":
            return dict(self.outputs or {})
        return dict(self.outputs) if self.outputs else {DEFAULT_OUTPUT: None}


class PipelineSpec(_Model):
    """The whole ``kind: pipeline`` document."""

    kind: Literal["pipeline"]
    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=63)]
    description: str | None = None
    contracts: dict[ContractName, JsonSchema] = Field(
        default_factory=dict, description="name -> JSON Schema of the records on a port"
    )
    nodes: dict[NodeId, NodeSpec] = Field(min_length=1, max_length=500)
    edges: list[EdgeSpec] = Field(default_factory=list, max_length=2000)
    placement: dict[NodeId, PoolName] = Field(
        default_factory=dict, description="default pool per node or group"
    )
    replicas: dict[NodeId, Replicas] = Field(
        default_factory=dict, description="default replicas per node or group (0..100)"
    )

    def group_of(self, node: str) -> str:
        """The placement group of a node: its ``group``, or the node itself."""
        return self.nodes[node].group or node

    def groups(self) -> dict[str, list[str]]:
        """Placement group -> its nodes, in file order."""
        out: dict[str, list[str]] = {}
        for nid in self.nodes:
            out.setdefault(self.group_of(nid), []).append(nid)
        return out


@dataclass(frozen=True)
class Edge:
    """One channel, whichever way it was written; ``where``: the JSON pointer it came from."""

    source: str
    output: str
    target: str
    input: str
    klass: str
    where: str

    @property
    def key(self) -> str:
        return f"{self.source}.{self.output} -> {self.target}.{self.input}"


def split_ref(ref: str) -> tuple[str, str | None]:
    node, _, port = ref.partition(".")
    return node, port or None


def only_port(ports: dict[str, Any]) -> str | None:
    """The port a bare node reference means: the node's only one (None: ambiguous or none)."""
    return next(iter(ports)) if len(ports) == 1 else None


def edges(spec: PipelineSpec) -> list[Edge]:
    """Every channel of the pipeline, ports resolved where they can be (an unresolvable
    reference keeps an empty port name; ``pipeline_checks`` reports it)."""
    found: list[Edge] = []

    def out_port(node: str, port: str | None) -> str:
        if port is not None:
            return port
        upstream = spec.nodes.get(node)
        return (only_port(upstream.output_ports()) or "") if upstream else ""

    for nid, node in spec.nodes.items():
        for i, item in enumerate(node.from_):
            given = FromSpec(node=item) if isinstance(item, str) else item
            source, port = split_ref(given.node)
            target_port = given.input or only_port(node.input_ports()) or ""
            found.append(
                Edge(
                    source,
                    out_port(source, port),
                    nid,
                    target_port,
                    given.class_,
                    f"/nodes/{nid}/from/{i}",
                )
            )
    for i, edge in enumerate(spec.edges):
        source, port = split_ref(edge.from_)
        target, in_port = split_ref(edge.to)
        downstream = spec.nodes.get(target)
        if in_port is None and downstream is not None:
            in_port = only_port(downstream.input_ports())
        found.append(
            Edge(source, out_port(source, port), target, in_port or "", edge.class_, f"/edges/{i}")
        )
    return found
