"""``kind: pipeline`` workflows: parsed, validated with positions, and refused as runs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lockstep.errors import InvalidRequest, SpecError
from lockstep.spec.documents import load_workflow, runnable, step_count
from lockstep.spec.pipeline import edges
from lockstep.spec.pipeline_checks import LoadedPipeline

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pipeline" / "orders.yaml"

GOOD = """\
kind: pipeline
name: orders
contracts:
  order: {type: object}
nodes:
  read:
    kind: source
    run: python3 read.py
    outputs: {orders: order}
  enrich:
    kind: transform
    group: work
    run: [enrich, --fast]
    inputs: {orders: order}
    from: [read.orders]
  write:
    kind: sink
    group: work
    image: registry.example.org/writer:1
    from: [{node: enrich, class: local}]
  audit:
    kind: sink
    run: cat
edges:
  - {from: read, to: audit, class: landing}
placement: {read: ingest, work: heavy}
replicas: {work: 3}
"""


def _errors(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        load_workflow(text, "p.yaml")
    return [str(d) for d in caught.value.diagnostics]


def test_a_pipeline_loads_with_its_channels_normalised() -> None:
    loaded = load_workflow(GOOD, "p.yaml")
    assert isinstance(loaded, LoadedPipeline) and step_count(loaded) == 4
    found = {(e.key, e.klass) for e in edges(loaded.spec)}
    assert found == {
        ("read.orders -> enrich.orders", "stream"),
        ("enrich.out -> write.in", "local"),
        ("read.orders -> audit.in", "landing"),
    }
    assert loaded.spec.groups() == {
        "read": ["read"],
        "work": ["enrich", "write"],
        "audit": ["audit"],
    }


def test_a_stream_channel_takes_its_ack_wait_and_backlog_bound() -> None:
    text = _with(
        "from: [read.orders]", "from: [{node: read.orders, ack_wait: 1m30s, max_backlog: 500}]"
    )
    (tuned,) = [e for e in edges(load_workflow(text, "p.yaml").spec) if e.target == "enrich"]
    assert tuned.options == {"ack_wait_s": 90.0, "max_messages": 500}
    assert all(not e.options for e in edges(load_workflow(GOOD, "p.yaml").spec))


def test_the_bundled_example_is_valid() -> None:
    loaded = load_workflow(EXAMPLE.read_text(), str(EXAMPLE))
    assert isinstance(loaded, LoadedPipeline) and loaded.name == "orders"


def test_a_run_of_a_pipeline_is_refused_pointing_at_plan_and_deploy() -> None:
    with pytest.raises(InvalidRequest) as caught:
        runnable(load_workflow(GOOD, "p.yaml"))
    assert "lockstep plan" in str(caught.value) and "\n" not in str(caught.value)


def _with(old: str, new: str) -> str:
    assert old in GOOD
    return GOOD.replace(old, new)


BAD = [
    # unknown node in an edge, with a suggestion
    (
        _with("from: [read.orders]", "from: [reed.orders]"),
        "p.yaml:15:12: unknown node 'reed'; did you mean 'read'?",
    ),
    # an edge out of a sink
    (
        _with("    from: [read.orders]\n", "    from: [read.orders, write]\n"),
        "sink node 'write' has no outputs to read",
    ),
    # a cycle
    (
        GOOD.replace("kind: sink\n    group: work", "kind: transform\n    group: work").replace(
            "    from: [read.orders]\n", "    from: [read.orders, {node: write, input: orders}]\n"
        ),
        "p.yaml:15:25: cycle: enrich <- write <- enrich",
    ),
    # a source with inputs, a sink with outputs
    (
        _with(
            "    outputs: {orders: order}\n",
            "    outputs: {orders: order}\n    inputs: {x: order}\n",
        ),
        "p.yaml:10:5: source node 'read' cannot have inputs; make it a transform",
    ),
    (
        _with("    run: cat\n", "    run: cat\n    outputs: {x: order}\n"),
        "p.yaml:24:5: sink node 'audit' cannot have outputs; make it a transform",
    ),
    # an edge into a source
    (_with("from: read, to: audit", "from: enrich, to: read"), "source node 'read' takes no input"),
    # incompatible contracts
    (
        _with(
            "  order: {type: object}\n", "  order: {type: object}\n  row: {type: object}\n"
        ).replace("inputs: {orders: order}", "inputs: {orders: row}"),
        "channel read.orders -> enrich.orders joins contract 'order' to 'row'",
    ),
    # a local channel between nodes of different groups
    (
        _with("    group: work\n    image:", "    image:"),
        "local channel enrich.out -> write.in joins nodes that cannot be co-placed",
    ),
    # placement refs
    (
        _with("placement: {read: ingest, work: heavy}", "placement: {read: ingest, enrich: heavy}"),
        "node 'enrich' is placed with its group 'work'; name 'work' in 'placement'",
    ),
    (
        _with("replicas: {work: 3}", "replicas: {wrok: 3}"),
        "unknown node or group 'wrok'; did you mean 'work'?",
    ),
    # replicas out of bounds
    (_with("replicas: {work: 3}", "replicas: {work: 1000}"), "'work' must be <= 100, got 1000"),
    (_with("replicas: {work: 3}", "replicas: {work: -1}"), "'work' must be >= 0, got -1"),
    # unknown contract, ambiguous port, no program
    (
        _with("inputs: {orders: order}", "inputs: {orders: ordr}"),
        "unknown contract 'ordr'; did you mean 'order'?",
    ),
    (
        _with("    outputs: {orders: order}\n", "    outputs: {orders: order, more: order}\n"),
        "node 'read' has outputs orders, more; name one, e.g. read.orders",
    ),
    (_with("    run: cat\n", ""), "node 'audit' needs 'run' or 'image'"),
    # channel settings: only a stream has them, and they are checked
    (
        _with("class: landing}", "class: landing, ack_wait: 5s}"),
        "p.yaml:25:5: ack_wait and max_backlog tune stream channels; channel read.orders -> "
        "audit.in is landing: remove them or use class stream",
    ),
    (
        _with("from: [read.orders]", "from: [{node: read.orders, max_backlog: 0}]"),
        "'max_backlog' must be >= 1, got 0",
    ),
    (_with("from: [read.orders]", "from: [{node: read.orders, ack_wait: soon}]"), "ack_wait"),
    (_with("kind: pipeline", "kind: pipline"), "'kind'"),
]


@pytest.mark.parametrize(("text", "expected"), BAD)
def test_a_bad_pipeline_is_refused_with_one_located_line(text: str, expected: str) -> None:
    found = _errors(text)
    assert any(expected in line for line in found), found
    assert all(line.startswith("p.yaml:") and "\n" not in line for line in found), found


ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = [
    block
    for doc in (ROOT / "README.md", ROOT / "docs" / "deployments.md")
    for block in re.findall(r"```yaml\n(.*?)```", doc.read_text(), re.S)
    if block.lstrip().startswith("kind: pipeline")
]


def test_the_docs_have_pipeline_snippets() -> None:
    assert len(SNIPPETS) >= 2  # the README's and the design's


@pytest.mark.parametrize("snippet", SNIPPETS)
def test_a_pipeline_snippet_of_the_docs_is_valid(snippet: str) -> None:
    assert isinstance(load_workflow(snippet, "snippet.yaml"), LoadedPipeline)


def test_two_pipeline_versions_diff_by_node_field() -> None:
    from lockstep.spec.diff import diff_specs
    from lockstep.spec.documents import plain_data

    old = load_workflow(GOOD, "p.yaml")
    new = load_workflow(GOOD.replace("run: [enrich, --fast]", "run: [enrich, --slow]"), "p.yaml")
    lines = diff_specs(plain_data(old), plain_data(new)).render()
    assert any("nodes.enrich.run" in line and "--slow" in line for line in lines), lines
