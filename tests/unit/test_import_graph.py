"""The package graph keeps the shape ARCHITECTURE.md draws: data flows one way.

Every ``import`` in ``src/lockstep`` counts, including those inside functions and
``TYPE_CHECKING`` blocks: a lazy import is still a dependency a reader has to know about.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import lockstep

ROOT = Path(lockstep.__file__).parent

#: what each role may use; anything else is a layering mistake
ALLOWED: dict[str, set[str]] = {
    # the deterministic side: what crosses Temporal, the plan, the workflows
    "engine": {"errors", "settings", "spec", "outputs_by_reference", "clock"},
    # the contract a user writes
    "spec": {"errors", "settings", "clock"},
    # a deployment's desired state and plans: pure data over the spec
    "deployments": {"errors", "settings", "spec", "clock"},
    # the guarded outbound client: layer 0-1, below everything that calls out
    "net": {"errors", "settings"},
}
#: packages that reach storage only through services
NO_STORAGE = ("api", "cli", "triggers")


def _unit(path: Path) -> str:
    """The package (or top-level module) a file belongs to."""
    parts = path.relative_to(ROOT).parts
    return parts[0] if len(parts) > 1 else parts[0].removesuffix(".py")


def _is_unit(name: str) -> bool:
    """A package or top-level module of lockstep (not a name imported from ``__init__``)."""
    return bool(name) and ((ROOT / name).is_dir() or (ROOT / f"{name}.py").is_file())


def _targets(path: Path) -> set[tuple[str, str]]:
    """(imported lockstep unit, third-party top package) pairs, one side empty each."""
    found: set[tuple[str, str]] = set()
    package = list(path.relative_to(ROOT).parts[:-1])
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(["lockstep", *base, *([node.module] if node.module else [])])
                names = [module]
                if node.module is None:  # from . import x
                    names = [f"{module}.{alias.name}" for alias in node.names]
            elif node.module:
                names = [node.module]
                if node.module == "lockstep":
                    names = [f"lockstep.{alias.name}" for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "lockstep" and len(parts) > 1:
                found.add((parts[1], ""))
            elif parts[0] != "lockstep":
                found.add(("", parts[0]))
    return found


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    edges: dict[str, set[str]] = defaultdict(set)
    third: dict[str, set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        unit = _unit(path)
        for target, outside in _targets(path):
            if _is_unit(target) and target != unit:
                edges[unit].add(target)
            if outside:
                third[unit].add(outside)
    return edges, third


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_two_packages_depend_on_each_other() -> None:
    edges, _ = _graph()
    both_ways = sorted(f"{a} <-> {b}" for a in edges for b in edges[a] if a in edges.get(b, ()))
    assert both_ways == []
    assert _cycle(edges) is None


def test_the_engine_and_the_spec_use_only_their_layers() -> None:
    edges, _ = _graph()
    for unit, allowed in ALLOWED.items():
        assert edges[unit] - allowed == set(), unit


def test_routers_and_the_cli_reach_storage_only_through_services() -> None:
    edges, _ = _graph()
    for unit in NO_STORAGE:
        assert "storage" not in edges[unit], unit


def test_executors_do_not_know_temporal() -> None:
    # the worker package adapts executors to Temporal; an executor runs an attempt anywhere
    _, third = _graph()
    assert "temporalio" not in third["executors"]
    assert "temporalio" not in third["spec"]


def test_the_graph_sees_every_kind_of_import() -> None:
    # guards the test itself: relative, lazy and `from lockstep import x` forms are all parsed
    edges, _ = _graph()
    assert {"engine", "spec"} <= edges["services"]
    assert "storage" in edges["services"]
