"""A deployed pipeline mapped onto the data plane's nodes and edges (pipelines.wiring)."""

from __future__ import annotations

from lockstep.deployments.model import Desired
from lockstep.pipelines.model import NodeKind
from lockstep.pipelines.wiring import carried_by, needs_broker, node_runs
from lockstep.spec.pipeline import PipelineSpec

SPEC = {
    "kind": "pipeline",
    "name": "orders",
    "nodes": {
        "read": {"kind": "source", "run": ["python3", "read.py"], "env": {"PAGE": "9"}},
        "fix": {"kind": "transform", "run": "python3 fix.py | cat", "from": ["read"]},
        "write": {"kind": "sink", "run": ["python3", "w.py"], "from": ["fix"]},
    },
}


def _desired(**overrides: dict[str, str]) -> Desired:
    return Desired("orders", 1, "orders@1", "d1", overrides=overrides)


def test_nodes_become_data_plane_nodes_with_their_channels() -> None:
    spec = PipelineSpec.model_validate(SPEC)
    runs = node_runs("p", "prod", spec, _desired(read={"PAGE": "50"}))
    read, fix, write = runs["read"], runs["fix"], runs["write"]
    assert read.node.argv == ("python3", "read.py") and read.node.kind is NodeKind.SOURCE
    assert read.node.env == {"PAGE": "50"}  # the deployment's override over the version's
    assert fix.node.argv == ("bash", "-c", "python3 fix.py | cat")  # a string is a shell line
    assert read.node.outputs == ("out",) and write.node.outputs == ()
    # both ends of an edge name the same channel; the transform has one in, one out
    assert read.edges == fix.edges[:1] and fix.edges[1:] == write.edges
    (first,) = read.edges
    assert (first.source, first.output, first.target, first.klass) == (
        "read",
        "out",
        "fix",
        "stream",
    )
    assert needs_broker(runs)
    assert carried_by(spec) == {}  # no local channel: each node is a unit of its own


def test_channels_are_per_deployment_and_digests_follow_changes() -> None:
    spec = PipelineSpec.model_validate(SPEC)
    prod = node_runs("p", "prod", spec, _desired())
    test = node_runs("p", "test", spec, _desired())
    assert prod["read"].edges[0].name != test["read"].edges[0].name
    assert prod["read"].digest == node_runs("p", "prod", spec, _desired())["read"].digest
    changed = node_runs("p", "prod", spec, _desired(read={"PAGE": "1"}))
    assert changed["read"].digest != prod["read"].digest
    assert changed["write"].digest == prod["write"].digest


def test_an_image_node_carries_its_image_limits_and_secret_names() -> None:
    read = {
        **SPEC["nodes"]["read"],  # type: ignore[dict-item]
        "image": "localhost/x:1",
        "run": "echo hi",
        "secrets": ["TOKEN"],
        "resources": {"cpu": "500m", "memory": "64Mi"},
    }
    spec = PipelineSpec.model_validate({**SPEC, "nodes": {**SPEC["nodes"], "read": read}})  # type: ignore[dict-item]
    run = node_runs("p", "prod", spec, _desired())["read"]
    node = run.node
    # a string runs with the image's sh; limits as the runtime takes them
    assert (node.image, node.argv) == ("localhost/x:1", ("sh", "-c", "echo hi"))
    assert (node.cpu, node.memory_bytes) == (0.5, 64 << 20)
    assert node.secrets == ("TOKEN",) and run.secrets == ["TOKEN"]
    assert "TOKEN" not in node.env  # only the name travels; the worker resolves its value
    # what a worker is told is plain JSON a replica reads back
    assert run.to_json()["node"]["secrets"] == ["TOKEN"]


def test_nodes_joined_by_local_channels_run_as_one_unit() -> None:
    doc = {
        **SPEC,
        "nodes": {
            **SPEC["nodes"],  # type: ignore[dict-item]
            "fix": {**SPEC["nodes"]["fix"], "group": "work"},  # type: ignore[dict-item]
            "write": {
                "kind": "sink",
                "group": "work",
                "run": "w",
                "secrets": ["TOKEN"],
                "from": [{"node": "fix", "class": "local"}],
            },
        },
    }
    spec = PipelineSpec.model_validate(doc)
    runs = node_runs("p", "prod", spec, _desired())
    assert sorted(runs) == ["fix", "read"]  # write runs in fix's replicas
    assert carried_by(spec) == {"write": "fix"}
    unit = runs["fix"]
    assert [n.name for n in unit.nodes] == ["fix", "write"]
    assert sorted(e.klass for e in unit.edges) == ["local", "stream"]
    assert unit.secrets == ["TOKEN"] and set(unit.restarts) == {"fix", "write"}
