"""A deployed pipeline mapped onto the data plane's nodes and edges (pipelines.wiring)."""

from __future__ import annotations

import pytest

from lockstep.deployments.model import Desired
from lockstep.pipelines.model import NodeKind
from lockstep.pipelines.wiring import needs_broker, node_runs, unsupported
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
    assert all(unsupported(spec, n) is None for n in spec.nodes)


def test_channels_are_per_deployment_and_digests_follow_changes() -> None:
    spec = PipelineSpec.model_validate(SPEC)
    prod = node_runs("p", "prod", spec, _desired())
    test = node_runs("p", "test", spec, _desired())
    assert prod["read"].edges[0].name != test["read"].edges[0].name
    assert prod["read"].digest == node_runs("p", "prod", spec, _desired())["read"].digest
    changed = node_runs("p", "prod", spec, _desired(read={"PAGE": "1"}))
    assert changed["read"].digest != prod["read"].digest
    assert changed["write"].digest == prod["write"].digest


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"image": "alpine:3", "run": ["true"]}, "runs an image"),
        ({"secrets": ["TOKEN"]}, "uses secrets"),
    ],
)
def test_nodes_this_build_cannot_run_say_why(change: dict[str, object], says: str) -> None:
    doc = {**SPEC, "nodes": {**SPEC["nodes"], "read": {**SPEC["nodes"]["read"], **change}}}  # type: ignore[dict-item]
    assert says in (unsupported(PipelineSpec.model_validate(doc), "read") or "")


def test_a_local_channel_is_refused_with_what_to_use() -> None:
    doc = {
        **SPEC,
        "nodes": {
            **SPEC["nodes"],  # type: ignore[dict-item]
            "write": {"kind": "sink", "run": "w", "from": [{"node": "fix", "class": "local"}]},
        },
    }
    assert "use class: stream" in (unsupported(PipelineSpec.model_validate(doc), "write") or "")
