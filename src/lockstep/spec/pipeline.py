"""Typed models of a ``kind: pipeline`` workflow: long-running nodes joined by channels.

A pipeline is published and versioned like any workflow, but never run as one: a deployment
places its nodes on pools (``docs/deployments.md``). The graph rules live in
``spec.pipeline_checks``; this module is the format and the one normalisation of its edges
(``from:`` on a node and top-level ``edges:`` are two spellings of the same thing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import Field, StringConstraints

from lockstep.spec.durations import Duration
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


class _ChannelSettings(_Model):
    """What a ``stream`` channel may tune (refused on other classes by ``pipeline_checks``)."""

    ack_wait: Duration | None = Field(
        None,
        description="stream: a record not acked this long after delivery (its replica died) "
        "goes to another replica (default 30s)",
    )
    max_backlog: Annotated[int, Field(ge=1, le=10_000_000)] | None = Field(
        None,
        description="stream: records held at most; a full channel holds its publisher back "
        "(default 10000)",
    )

    def options(self) -> dict[str, float]:
        """The channel's settings as the data plane reads them."""
        out: dict[str, float] = {}
        if self.ack_wait is not None:
            out["ack_wait_s"] = float(self.ack_wait)
        if self.max_backlog is not None:
            out["max_messages"] = self.max_backlog
        return out


class FromSpec(_ChannelSettings):
    """One input of a node, written on the node: where it comes from and by which class."""

    node: PortRef = Field(description="the upstream node, or node.output")
    input: PortName | None = Field(None, description="this node's input (default: its only one)")
    class_: DeliveryClass = Field("stream", alias="class", description="the channel's class")


class EdgeSpec(_ChannelSettings):
    """A channel written apart from the nodes: ``{from: a.out, to: b.in, class: stream}``."""

    from_: PortRef = Field(alias="from")
    to: PortRef
    class_: DeliveryClass = Field("stream", alias="class")


class RestartSpec(_Model):
    """How a node's program is started again after it exits, and when it is given up on."""

    backoff: Duration = Field(1.0, gt=0, description="wait before the first restart; doubles")
    max_backoff: Duration = Field(60.0, gt=0, description="cap on the wait between restarts")
    healthy_after: Duration = Field(
        30.0, gt=0, description="a run this long is healthy: the count and wait start anew"
    )
    crash_loop_after: Annotated[int, Field(ge=1, le=100)] = Field(
        5, description="exits in a row, each sooner than healthy_after, that make a crash loop"
    )

    def policy(self) -> dict[str, float]:
        """As the data plane's ``RestartPolicy`` takes it."""
        return {
            "first_delay_s": self.backoff,
            "max_delay_s": max(self.max_backoff, self.backoff),
            "healthy_after_s": self.healthy_after,
            "max_quick_exits": self.crash_loop_after,
        }


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
    restart: RestartSpec = Field(
        default_factory=RestartSpec,
        description="restarts after an exit, and when repeated quick exits are a crash loop",
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
    # a pipeline with these is a blueprint: another pipeline imports it with ``uses:``
    # (``spec.pipeline_blueprints``); it is not deployed by itself
    params: JsonSchema | None = Field(
        None, description="blueprint: what `with:` gives, read as ${{ params.NAME }}"
    )
    inputs: dict[PortName, PortRef] = Field(
        default_factory=dict, description="blueprint: open input name -> node.input it feeds"
    )
    outputs: dict[PortName, PortRef] = Field(
        default_factory=dict, description="blueprint: open output name -> node.output it reads"
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


def open_ends(spec: PipelineSpec, key: Literal["inputs", "outputs"]) -> dict[str, tuple[str, str]]:
    """A blueprint's open inputs or outputs: name -> (node, port), a bare node meaning its only
    port (an unresolvable one keeps an empty port; ``pipeline_checks`` reports it)."""
    found: dict[str, tuple[str, str]] = {}
    for name, ref in getattr(spec, key).items():
        nid, port = split_ref(ref)
        node = spec.nodes.get(nid)
        if port is None and node is not None:
            ports = node.input_ports() if key == "inputs" else node.output_ports()
            port = only_port(ports)
        found[name] = (nid, port or "")
    return found


@dataclass(frozen=True)
class Edge:
    """One channel, whichever way it was written; ``where``: the JSON pointer it came from."""

    source: str
    output: str
    target: str
    input: str
    klass: str
    where: str
    options: dict[str, float] = field(default_factory=dict, compare=False)

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
                    given.options(),
                )
            )
    for i, edge in enumerate(spec.edges):
        source, port = split_ref(edge.from_)
        target, in_port = split_ref(edge.to)
        downstream = spec.nodes.get(target)
        if in_port is None and downstream is not None:
            in_port = only_port(downstream.input_ports())
        found.append(
            Edge(
                source,
                out_port(source, port),
                target,
                in_port or "",
                edge.class_,
                f"/edges/{i}",
                edge.options(),
            )
        )
    return found
