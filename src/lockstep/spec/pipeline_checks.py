"""Load and check a ``kind: pipeline`` workflow: the models, then the graph rules.

Every problem is reported at once as ``file:line:col: message``, like a workflow's: unknown
nodes, ports and contracts, cycles, sources with inputs and sinks with outputs, channels
between incompatible contracts, ``local`` channels between nodes that cannot share a worker,
and placement or replica defaults naming what is not a placement group.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from pydantic import ValidationError

from lockstep.errors import SpecError
from lockstep.spec.blueprint_files import BlueprintFiles, BlueprintUse
from lockstep.spec.checker import Checker
from lockstep.spec.graph import cycle_through, strongly_connected
from lockstep.spec.hints import did_you_mean
from lockstep.spec.pipeline import Edge, PipelineSpec, edges, open_ends
from lockstep.spec.yamlsafe import MAX_BYTES, Position, YamlDocument, pointer

PIPELINE_SHAPE = "a pipeline must be a mapping with keys such as 'kind', 'name' and 'nodes'"


@dataclass(frozen=True)
class LoadedPipeline:
    """A valid pipeline with what it was loaded from (as ``LoadedSpec`` for a workflow)."""

    spec: PipelineSpec
    text: str
    file: str
    digest: str  # sha256 hex of the exact bytes
    positions: dict[str, Position] = field(default_factory=dict)
    #: the blueprint files expanded into it (none: ``text`` is the file as written)
    blueprints: tuple[BlueprintUse, ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name


def is_pipeline(data: object) -> bool:
    """Whether parsed data is meant as a pipeline: a top-level ``kind`` (a workflow has none,
    so a misspelt kind is reported by the pipeline's rules, not as an unknown key)."""
    return isinstance(data, dict) and "kind" in data


def load_pipeline(
    data: str | bytes,
    file: str = "<input>",
    *,
    max_bytes: int = MAX_BYTES,
    files: BlueprintFiles | None = None,
    path: str | None = None,
) -> LoadedPipeline:
    """Parse and check a pipeline; raise ``SpecError`` listing every problem found. With
    ``files`` (its repository) and ``path`` (its place there) the blueprints its nodes use are
    expanded first (``spec.pipeline_blueprints``); its ``text`` is then the expanded pipeline."""
    from lockstep.spec.load import parse_mapping

    text, raw, doc = parse_mapping(data, file, max_bytes, PIPELINE_SHAPE)
    from lockstep.spec import pipeline_blueprints as blueprints  # imports this module

    if blueprints.needs_expanding(doc.data):
        return blueprints.load_expanded(
            doc, file, path or file, files, max_bytes, text=text, raw=raw
        )
    spec = check_document(doc, file)
    return LoadedPipeline(spec, text, file, hashlib.sha256(raw).hexdigest(), doc.positions)


def check_document(doc: YamlDocument, file: str) -> PipelineSpec:
    from lockstep.spec.load import sort_diagnostics, translate_errors

    try:
        spec = PipelineSpec.model_validate(doc.data)
    except ValidationError as err:
        found = translate_errors(err, doc.data, doc.positions, file, root=PipelineSpec)
        raise SpecError(sort_diagnostics(found)) from None
    checker = _PipelineChecker(spec, doc.positions, file)
    checker.run()
    if checker.diagnostics:
        raise SpecError(sort_diagnostics(checker.diagnostics))
    return spec


class _PipelineChecker(Checker):
    def __init__(self, spec: PipelineSpec, positions: dict[str, Position], file: str) -> None:
        super().__init__(positions, file)
        self.spec = spec

    def run(self) -> None:
        for name, schema in self.spec.contracts.items():
            self.schema_compiles(schema, pointer("contracts", name), f"contract '{name}'")
        self._check_nodes()
        channels = edges(self.spec)
        good = [e for e in channels if self._check_edge(e)]
        self._check_duplicates(good)
        self._check_connected(good)
        self._check_cycles(good)
        self._check_open_ends()
        for key in ("placement", "replicas"):
            for name in getattr(self.spec, key):
                self._check_placement_ref(key, name)

    def _check_nodes(self) -> None:
        contracts = self.spec.contracts
        for nid, node in self.spec.nodes.items():
            if node.run is None and node.image is None:
                self.add(f"node '{nid}' needs 'run' or 'image'", pointer("nodes", nid))
            if node.kind == "source" and node.inputs:
                self.add(
                    f"source node '{nid}' cannot have inputs; make it a transform",
                    pointer("nodes", nid, "inputs"),
                )
            if node.kind == "sink" and node.outputs:
                self.add(
                    f"sink node '{nid}' cannot have outputs; make it a transform",
                    pointer("nodes", nid, "outputs"),
                )
            for key in ("inputs", "outputs"):
                for port, contract in (getattr(node, key) or {}).items():
                    if contract not in contracts:
                        hint = did_you_mean(contract, contracts) or (
                            "; declare it under 'contracts'"
                        )
                        self.add(
                            f"unknown contract '{contract}'{hint}",
                            pointer("nodes", nid, key, port),
                        )
            if node.group and node.group in self.spec.nodes and node.group != nid:
                other = self.spec.nodes[node.group]
                if (other.group or node.group) != node.group:
                    self.add(
                        f"group '{node.group}' has the name of node '{node.group}', which is not "
                        "in it; rename the group",
                        pointer("nodes", nid, "group"),
                    )

    def _check_edge(self, edge: Edge) -> bool:
        """Report what is wrong with one channel; whether it joins two real ports."""
        nodes = self.spec.nodes
        ok = True
        for nid in (edge.source, edge.target):
            if nid not in nodes:
                self.add(f"unknown node '{nid}'{did_you_mean(nid, nodes)}", edge.where)
                ok = False
        if not ok:
            return False
        source, target = nodes[edge.source], nodes[edge.target]
        if edge.source == edge.target:
            self.add(f"node '{edge.target}' cannot read its own output", edge.where)
            return False
        if source.kind == "sink":
            self.add(f"sink node '{edge.source}' has no outputs to read", edge.where)
            return False
        if target.kind == "source":
            self.add(f"source node '{edge.target}' takes no input; make it a transform", edge.where)
            return False
        outs, ins = source.output_ports(), target.input_ports()
        ok = self._port(edge.source, edge.output, outs, "output", edge.where)
        ok = self._port(edge.target, edge.input, ins, "input", edge.where) and ok
        if not ok:
            return False
        a, b = outs[edge.output], ins[edge.input]
        if a is not None and b is not None and a != b:
            self.add(
                f"channel {edge.key} joins contract '{a}' to '{b}'; the output and the input "
                "must have the same contract",
                edge.where,
            )
        if edge.options and edge.klass != "stream":
            self.add(
                f"ack_wait and max_backlog tune stream channels; channel {edge.key} is "
                f"{edge.klass}: remove them or use class stream",
                edge.where,
            )
        if edge.klass == "local" and self.spec.group_of(edge.source) != self.spec.group_of(
            edge.target
        ):
            self.add(
                f"local channel {edge.key} joins nodes that cannot be co-placed: put "
                f"'{edge.source}' and '{edge.target}' in the same group, or use class stream",
                edge.where,
            )
        return True

    def _port(
        self, nid: str, port: str, ports: dict[str, str | None], what: str, where: str
    ) -> bool:
        if port in ports:
            return True
        listed = ", ".join(ports)
        if port == "":
            self.add(
                f"node '{nid}' has {what}s {listed}; name one, e.g. {nid}.{next(iter(ports))}",
                where,
            )
        else:
            hint = did_you_mean(port, ports) or f" ({what}s: {listed})"
            self.add(f"node '{nid}' has no {what} '{port}'{hint}", where)
        return False

    def _check_duplicates(self, channels: list[Edge]) -> None:
        seen: set[str] = set()
        for edge in channels:
            if edge.key in seen:
                self.add(f"channel {edge.key} is written twice", edge.where)
            seen.add(edge.key)

    def _check_connected(self, channels: list[Edge]) -> None:
        fed = {(e.target, e.input) for e in channels}
        fed |= set(open_ends(self.spec, "inputs").values())  # a blueprint's caller feeds them
        for nid, node in self.spec.nodes.items():
            if node.kind == "source":
                continue  # its inputs are reported as not allowed
            for port in node.input_ports():
                if (nid, port) not in fed:
                    self.add(
                        f"input '{port}' of node '{nid}' is not connected; add a 'from:' "
                        "or an edge",
                        pointer("nodes", nid),
                    )

    def _check_cycles(self, channels: list[Edge]) -> None:
        graph: dict[str, list[str]] = {nid: [] for nid in self.spec.nodes}
        where: dict[tuple[str, str], str] = {}
        for e in channels:
            graph[e.target].append(e.source)
            where.setdefault((e.target, e.source), e.where)
        order = {nid: i for i, nid in enumerate(graph)}
        for component in strongly_connected(graph):
            if len(component) < 2:
                continue
            start = min(component, key=order.__getitem__)
            path = cycle_through(start, graph, set(component))
            self.add("cycle: " + " <- ".join(path), where[(start, path[1])])

    def _check_open_ends(self) -> None:
        """A blueprint's ``inputs``/``outputs`` each name a real port of one of its nodes."""
        for key in ("inputs", "outputs"):
            what = key[:-1]
            for name, (nid, port) in open_ends(self.spec, key).items():
                node = self.spec.nodes.get(nid)
                ptr = pointer(key, name)
                if node is None:
                    self.add(f"unknown node '{nid}'{did_you_mean(nid, self.spec.nodes)}", ptr)
                    continue
                ports = node.input_ports() if key == "inputs" else node.output_ports()
                if not ports:
                    self.add(f"{node.kind} node '{nid}' has no {what}s", ptr)
                else:
                    self._port(nid, port, ports, what, ptr)

    def _check_placement_ref(self, key: str, name: str) -> None:
        groups = self.spec.groups()
        if name in groups:
            return
        ptr = pointer(key, name)
        node = self.spec.nodes.get(name)
        if node is not None and node.group:
            self.add(
                f"node '{name}' is placed with its group '{node.group}'; name '{node.group}' "
                f"in '{key}'",
                ptr,
            )
        else:
            self.add(f"unknown node or group '{name}'{did_you_mean(name, groups)}", ptr)
