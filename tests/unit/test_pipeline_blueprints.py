"""Pipeline blueprints: ``nodes: {etl: {uses: ./bp/etl.yaml}}`` imports a pipeline's nodes under
the alias, wired through its open ends, checked as a whole, errors at the blueprint's lines."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lockstep.spec.blueprint_files import MappingFiles, header_uses
from lockstep.spec.documents import load_workflow, load_workflow_file
from lockstep.spec.pipeline import edges
from lockstep.spec.pipeline_checks import LoadedPipeline

ETL = """\
kind: pipeline
name: etl
params:
  type: object
  properties:
    table: {type: string}
    pool: {type: string, default: ingest}
  required: [table]
contracts:
  row: {type: object}
nodes:
  read:
    kind: transform
    run: python3 read.py --table ${{ params.table }}
    outputs: {rows: row}
  write:
    kind: transform
    group: work
    run: python3 write.py
    inputs: {rows: row}
    from: [read.rows]
inputs: {orders: read}
outputs: {out: write}
placement: {read: "${{ params.pool }}"}
replicas: {work: 2}
"""

CALLER = """\
kind: pipeline
name: main
nodes:
  src:
    kind: source
    run: gen
  etl:
    uses: ./bp/etl.yaml
    with: {table: users}
    from: [src]
  sink:
    kind: sink
    run: cat
    from: [etl]
placement: {etl: heavy}
"""


def _load(caller: str, **files: str) -> LoadedPipeline:
    loaded = load_workflow(
        caller, "main.yaml", files=MappingFiles({"bp/etl.yaml": ETL, **files}), path="main.yaml"
    )
    assert isinstance(loaded, LoadedPipeline)
    return loaded


def _errors(caller: str, **files: str) -> list[str]:
    from lockstep.errors import SpecError

    with pytest.raises(SpecError) as caught:
        _load(caller, **files)
    return [str(d) for d in caught.value.diagnostics]


def _channels(loaded: LoadedPipeline) -> set[tuple[str, str]]:
    return {(e.key, e.klass) for e in edges(loaded.spec)}


def test_nodes_are_imported_under_the_alias_and_wired_through_its_open_ends() -> None:
    loaded = _load(CALLER)
    spec = loaded.spec
    assert list(spec.nodes) == ["src", "etl__read", "etl__write", "sink"]
    assert spec.nodes["etl__read"].run == "python3 read.py --table users"  # with: given
    assert _channels(loaded) == {
        ("src.out -> etl__read.in", "stream"),  # the alias's from: feeds its open input
        ("etl__read.rows -> etl__write.rows", "stream"),  # the blueprint's own channel
        ("etl__write.out -> sink.in", "stream"),  # from: [etl] reads its only open output
    }
    # the blueprint's group is its own; placement naming the alias covers all its groups and
    # wins over the blueprint's default (a param's default); its replicas default stays
    assert spec.groups() == {
        "src": ["src"],
        "etl__read": ["etl__read"],
        "etl__work": ["etl__write"],
        "sink": ["sink"],
    }
    assert spec.placement == {"etl__read": "heavy", "etl__work": "heavy"}
    assert spec.replicas == {"etl__work": 2}
    assert spec.contracts == {"row": {"type": "object"}}


def test_the_stored_text_is_the_expansion_and_names_the_blueprint_file() -> None:
    loaded = _load(CALLER)
    (use,) = loaded.blueprints
    assert (use.alias, use.path) == ("etl", "bp/etl.yaml")
    assert header_uses(loaded.text) == [use]
    # what a version stores loads alone, with no blueprint file: a later edit of the file
    # cannot change the graph of a version made before
    again = load_workflow(loaded.text, "main.yaml")
    assert isinstance(again, LoadedPipeline)
    assert again.spec == loaded.spec


def test_imported_ids_do_not_depend_on_the_rest_of_the_caller() -> None:
    edited = CALLER.replace(
        "  sink:", "  extra:\n    kind: sink\n    run: tee\n    from: [src]\n  sink:"
    )
    before, after = _load(CALLER).spec.nodes, _load(edited).spec.nodes
    assert {n: before[n] for n in before if n.startswith("etl__")} == {
        n: after[n] for n in after if n.startswith("etl__")
    }


def test_named_ends_and_edges_reach_the_inner_ports_and_keep_their_class() -> None:
    caller = """\
kind: pipeline
name: main
nodes:
  src: {kind: source, run: gen}
  etl: {uses: ./bp/etl.yaml, with: {table: t}}
  sink: {kind: sink, run: cat, from: [{node: etl.out, class: landing}]}
edges:
  - {from: src, to: etl.orders, class: stream, max_backlog: 5}
replicas: {etl__work: 4, etl: 1}
"""
    loaded = _load(caller)
    assert _channels(loaded) == {
        ("etl__read.rows -> etl__write.rows", "stream"),
        ("etl__write.out -> sink.in", "landing"),
        ("src.out -> etl__read.in", "stream"),
    }
    (fed,) = [e for e in edges(loaded.spec) if e.source == "src"]
    assert fed.options == {"max_messages": 5}
    # a group named itself beats the alias naming all of them
    assert loaded.spec.replicas == {"etl__read": 1, "etl__work": 4}


def test_a_blueprint_inside_a_blueprint_nests_its_ids_and_its_header() -> None:
    outer = """\
kind: pipeline
name: outer
nodes:
  inner:
    uses: ./etl.yaml
    with: {table: nested}
  tail: {kind: transform, run: tail, from: [inner]}
inputs: {orders: inner.orders}
outputs: {out: tail}
"""
    caller = CALLER.replace("./bp/etl.yaml", "./bp/outer.yaml").replace("{table: users}", "{}")
    loaded = _load(caller, **{"bp/outer.yaml": outer})
    assert list(loaded.spec.nodes) == [
        "src",
        *("etl__inner__read", "etl__inner__write", "etl__tail"),
        "sink",
    ]
    assert [(u.alias, u.path) for u in loaded.blueprints] == [
        ("etl", "bp/outer.yaml"),
        ("etl__inner", "bp/etl.yaml"),
    ]
    assert ("src.out -> etl__inner__read.in", "stream") in _channels(loaded)
    assert ("etl__tail.out -> sink.in", "stream") in _channels(loaded)


def test_a_problem_inside_the_blueprint_is_reported_there_and_at_the_uses_line() -> None:
    broken = ETL.replace("from: [read.rows]", "from: [reed.rows]")
    assert _errors(CALLER, **{"bp/etl.yaml": broken}) == [
        "bp/etl.yaml:16:3: input 'rows' of node 'write' is not connected; add a 'from:' or an "
        "edge (used at main.yaml:8:5)",
        "bp/etl.yaml:21:12: unknown node 'reed'; did you mean 'read'? (used at main.yaml:8:5)",
    ]


def test_an_unknown_open_end_has_a_did_you_mean_at_the_caller() -> None:
    assert _errors(CALLER.replace("from: [etl]", "from: [etl.uot]")) == [
        "main.yaml:14:12: blueprint alias 'etl' has no output 'uot'; did you mean 'out'?"
    ]
    assert _errors(CALLER.replace("from: [src]", "from: [{node: src, input: ordres}]")) == [
        "main.yaml:10:12: blueprint alias 'etl' has no input 'ordres'; did you mean 'orders'?"
    ]
    wrong_end = ETL.replace("outputs: {out: write}", "outputs: {out: write.rows}")
    assert _errors(CALLER, **{"bp/etl.yaml": wrong_end}) == [
        "bp/etl.yaml:23:11: node 'write' has no output 'rows' (outputs: out) "
        "(used at main.yaml:8:5)"
    ]


def test_an_open_input_left_unfed_is_named_on_the_alias() -> None:
    assert _errors(CALLER.replace("    from: [src]\n", "")) == [
        "main.yaml:7:3: input 'orders' of blueprint alias 'etl' is not connected; add a "
        "'from:' on 'etl' or an edge to etl.orders",
    ]


def test_a_cycle_through_a_blueprint_is_named() -> None:
    caller = CALLER.replace("from: [src]", "from: [back]").replace(
        "  sink:", "  back:\n    kind: transform\n    run: back\n    from: [etl]\n  sink:"
    )
    (error,) = _errors(caller)
    assert "cycle: " in error and "etl__read" in error and "back" in error and "etl__write" in error


def test_a_cycle_of_blueprint_files_is_named() -> None:
    a = "kind: pipeline\nname: a\nnodes:\n  b: {uses: ./b.yaml}\n"
    b = "kind: pipeline\nname: b\nnodes:\n  a: {uses: ./a.yaml}\n"
    caller = "kind: pipeline\nname: main\nnodes:\n  x: {uses: ./bp/a.yaml}\n"
    (error,) = _errors(caller, **{"bp/a.yaml": a, "bp/b.yaml": b})
    assert "blueprint cycle: main.yaml -> bp/a.yaml -> bp/b.yaml -> bp/a.yaml" in error


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("{table: users}", "{tabel: users}"), "has no param 'tabel'; did you mean 'table'?"),
        (("{table: users}", "{}"), "blueprint './bp/etl.yaml' needs param 'table'"),
        (("{table: users}", "{table: 3}"), "param 'table' of blueprint './bp/etl.yaml': 3 is not"),
        (("{table: users}", '{table: "${{ params.x }}"}'), "is a plain value, not an expression"),
        (("    from: [src]\n", "    from: [src]\n    run: x\n"), "move 'run' into the blueprint"),
        (("./bp/etl.yaml", "./bp/none.yaml"), "cannot use blueprint './bp/none.yaml'"),
        (("./bp/etl.yaml", "etl@3"), "published blueprints (DEF@SELECTOR) are for workflow"),
    ],
)
def test_what_the_alias_writes_is_checked_at_its_line(
    change: tuple[str, str], message: str
) -> None:
    errors = _errors(CALLER.replace(*change))
    assert any(e.startswith("main.yaml:") and message in e for e in errors), errors


def test_an_unknown_param_inside_the_blueprint_is_at_its_line() -> None:
    broken = ETL.replace("--table ${{ params.table }}", "--table ${{ params.tabel }}")
    assert _errors(CALLER, **{"bp/etl.yaml": broken}) == [
        "bp/etl.yaml:14:5: unknown param 'tabel'; did you mean 'table'? (used at main.yaml:8:5)"
    ]


def test_imported_ids_may_not_take_a_callers_id() -> None:
    caller = CALLER.replace(
        "  sink:", "  etl__read:\n    kind: sink\n    run: x\n    from: [src]\n  sink:"
    )
    (error,) = _errors(caller)
    assert "imports node id 'etl__read', which is already a node of this file" in error


def test_text_sent_without_its_repository_cannot_use_blueprint_files() -> None:
    from lockstep.errors import SpecError

    with pytest.raises(SpecError) as caught:
        load_workflow(CALLER, "main.yaml")
    (error,) = [str(d) for d in caught.value.diagnostics]
    assert error.startswith("main.yaml:8:5: node 'etl' uses a blueprint file, which is expanded")


def test_a_blueprint_alone_validates_with_its_defaults_and_a_caller_reads_it_from_disk(
    tmp_path: Path,
) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / "bp").mkdir()
    (tmp_path / "bp" / "etl.yaml").write_text(ETL)
    alone = load_workflow_file(tmp_path / "bp" / "etl.yaml")
    assert isinstance(alone, LoadedPipeline) and alone.text == ETL  # stored as written
    assert alone.spec.placement == {"read": "ingest"}
    (tmp_path / "main.yaml").write_text(CALLER)
    expanded = load_workflow_file(tmp_path / "main.yaml")  # files read from the working copy
    assert isinstance(expanded, LoadedPipeline)
    assert list(expanded.spec.nodes) == ["src", "etl__read", "etl__write", "sink"]


def test_the_design_docs_blueprint_example_expands() -> None:
    docs = Path(__file__).resolve().parents[2] / "docs" / "deployments.md"
    (block,) = [
        b
        for b in re.findall(r"```yaml\n(.*?)```", docs.read_text(), re.S)
        if b.startswith("# blueprints/etl.yaml")
    ]
    blueprint, caller = block.split("# pipeline.yaml\n")
    loaded = load_workflow(
        caller,
        "pipeline.yaml",
        files=MappingFiles({"blueprints/etl.yaml": blueprint}),
        path="pipeline.yaml",
    )
    assert isinstance(loaded, LoadedPipeline)
    assert list(loaded.spec.nodes) == ["src", "etl__read", "etl__write", "sink"]
    assert loaded.spec.placement == {"etl__read": "heavy", "etl__work": "heavy"}


def test_a_long_param_used_many_times_is_refused_before_it_grows() -> None:
    many = ETL.replace("python3 write.py", "[" + ", ".join(['"${{ params.table }}"'] * 300) + "]")
    caller = CALLER.replace("{table: users}", "{table: " + "x" * 5000 + "}")
    errors = _errors(caller, **{"bp/etl.yaml": many})
    assert any("params written into the blueprint pass" in e for e in errors), errors


def test_an_alias_id_must_make_valid_node_ids() -> None:
    (error,) = _errors(CALLER.replace("  etl:\n", "  9etl:\n").replace("[etl]", "[src]"))
    assert "node id '9etl' cannot be a blueprint alias" in error


def test_an_alias_from_item_takes_what_a_node_from_item_takes() -> None:
    (error,) = _errors(CALLER.replace("from: [src]", "from: [{node: src, to: x}]"))
    assert error == "main.yaml:10:24: unknown key 'to' in a 'from' item"
    (error,) = _errors(CALLER.replace("from: [src]", "from: [{node: src, class: locall}]"))
    assert error == "main.yaml:10:24: 'class': input should be 'local', 'stream' or 'landing'"
