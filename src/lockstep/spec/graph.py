"""Graph algorithms over step ids (``needs`` edges): cycles and ancestry."""

from __future__ import annotations


def ancestor_bits(graph: dict[str, list[str]]) -> dict[str, int]:
    """Each node's transitive dependencies as a bitset over the graph's key order.

    Tarjan emits components dependencies-first, so one pass suffices; the members of a
    cycle all depend on each other (the cycle itself is reported elsewhere)."""
    order = {node: i for i, node in enumerate(graph)}
    bits: dict[str, int] = {}
    for component in strongly_connected(graph):
        members = set(component)
        acc = 0
        for node in component:
            for dep in graph[node]:
                acc |= 1 << order[dep]
                if dep not in members:
                    acc |= bits[dep]
        if len(component) > 1:
            for node in component:
                acc |= 1 << order[node]
        for node in component:
            bits[node] = acc
    return bits


def strongly_connected(graph: dict[str, list[str]]) -> list[list[str]]:
    """Tarjan's algorithm without recursion (a file may hold thousands of steps)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(graph[root]))]
        while work:
            node, edges = work[-1]
            for dep in edges:
                if dep not in index:
                    index[dep] = low[dep] = len(index)
                    stack.append(dep)
                    on_stack.add(dep)
                    work.append((dep, iter(graph[dep])))
                    break
                if dep in on_stack:
                    low[node] = min(low[node], index[dep])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    component: list[str] = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    components.append(component)
    return components


def cycle_through(start: str, graph: dict[str, list[str]], members: set[str]) -> list[str]:
    """The shortest ``needs`` path from ``start`` back to itself, inside one component."""
    parent: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for dep in graph[node]:
                if dep == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parent[path[-1]])
                    return [*reversed(path), start]
                if dep in members and dep not in parent and dep != start:
                    parent[dep] = node
                    following.append(dep)
        frontier = following
    return [start, start]  # pragma: no cover - a component of two or more has a cycle
