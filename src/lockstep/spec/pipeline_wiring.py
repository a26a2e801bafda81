"""How a pipeline's references to blueprint aliases become references to the inner ports
they stand for (``spec.pipeline_blueprints`` imports the nodes; this wires them in)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from lockstep.spec.blueprints import Expansion, Origin
from lockstep.spec.hints import did_you_mean
from lockstep.spec.yamlsafe import pointer

End = Literal["inputs", "outputs"]
#: what an item of an alias's ``from:`` may say (as a node's ``from:`` item, ``FromSpec``)
_FEED_KEYS = ("node", "input", "class", "ack_wait", "max_backlog")


@dataclass
class Import:
    """What one alias brought in."""

    nodes: dict[str, Any]
    edges: list[tuple[dict[str, Any], Origin]]
    defaults: dict[str, dict[str, tuple[Any, Origin]]]  # placement/replicas, renamed
    ends: dict[End, dict[str, str]]  # open end -> the inner ``node.port`` it is
    groups: list[str]
    contracts: dict[str, Any] = field(default_factory=dict)


class Wiring:
    """The caller's references to aliases rewritten to the inner ports they stand for."""

    def __init__(
        self,
        data: dict[str, Any],
        written: dict[str, Any],
        imports: dict[str, Import],
        out: Expansion,
        fail: Callable[[str, str], None],
    ) -> None:
        self.data, self.written, self.imports, self.out = data, written, imports, out
        self.fail = fail
        self.fed: set[tuple[str, str]] = set()
        self.broken: set[str] = set()  # aliases with a wrong reference (reported already)

    def end(self, ref: Any, key: End, ptr: str) -> Any:
        """``ref`` (``alias`` or ``alias.end``) as the inner ``node.port``; other refs as given."""
        if not isinstance(ref, str):
            return ref
        nid, _, name = ref.partition(".")
        got = self.imports.get(nid)
        if got is None:
            return ref
        have, what = got.ends[key], key[:-1]
        if not name and len(have) == 1:
            name = next(iter(have))
        if name in have:
            if key == "inputs":
                self.fed.add((nid, name))
            return have[name]
        self.broken.add(nid)
        if not have:
            self.fail(f"blueprint alias '{nid}' has no open {what}s; declare them under "
                      f"'{key}' in its blueprint", ptr)  # fmt: skip
        elif not name:
            self.fail(f"blueprint alias '{nid}' has {key} {', '.join(have)}; name one, e.g. "
                      f"{nid}.{next(iter(have))}", ptr)  # fmt: skip
        else:
            hint = did_you_mean(name, have) or f" ({key}: {', '.join(have)})"
            self.fail(f"blueprint alias '{nid}' has no {what} '{name}'{hint}", ptr)
        return ref

    def apply(self, kept: dict[str, Any]) -> None:
        data = self.data
        for nid, node in kept.items():
            if (
                nid in self.written
                and isinstance(node, dict)
                and isinstance(node.get("from"), list)
            ):
                kept[nid] = {**node, "from": [
                    self._source(item, pointer("nodes", nid, "from", i))
                    for i, item in enumerate(node["from"])]}  # fmt: skip
        extra: list[tuple[dict[str, Any], Origin]] = []
        for alias, got in self.imports.items():
            extra += got.edges + self._feeds(alias)
        edges = data.get("edges")
        if isinstance(edges, list):
            edges = [self._edge(e, i) if isinstance(e, dict) else e for i, e in enumerate(edges)]
        if edges is None or isinstance(edges, list):
            base = edges or []
            for i, (_, origin) in enumerate(extra):
                self.out.origins[pointer("edges", len(base) + i)] = origin
            if base or extra:
                data["edges"] = [*base, *(e for e, _ in extra)]
        for key in ("inputs", "outputs"):
            ends = data.get(key)
            if isinstance(ends, dict):
                data[key] = {n: self.end(r, key, pointer(key, n)) for n, r in ends.items()}
        for alias, got in self.imports.items():
            for name in got.ends["inputs"]:
                if (alias, name) not in self.fed and alias not in self.broken:
                    self.fail(f"input '{name}' of blueprint alias '{alias}' is not connected; "
                              f"add a 'from:' on '{alias}' or an edge to {alias}.{name}",
                              pointer("nodes", alias))  # fmt: skip
        data["nodes"] = kept
        self._contracts()
        for key in ("placement", "replicas"):
            self._defaults(key)

    def _source(self, item: Any, ptr: str) -> Any:
        if isinstance(item, dict):
            return {**item, "node": self.end(item.get("node"), "outputs", ptr + "/node")}
        return self.end(item, "outputs", ptr)

    def _edge(self, edge: dict[str, Any], i: int) -> dict[str, Any]:
        """A caller's edge with its ends at aliases rewritten (a missing end the model reports)."""
        out = dict(edge)
        for key, end in (("from", "outputs"), ("to", "inputs")):
            if key in out:
                out[key] = self.end(out[key], end, pointer("edges", i, key))  # type: ignore[arg-type]
        return out

    def _feeds(self, alias: str) -> list[tuple[dict[str, Any], Origin]]:
        """The alias's own ``from:`` items as edges into its open inputs."""
        items = self.written[alias].get("from")
        if items is None:
            return []
        if not isinstance(items, list):
            self.fail("'from' of a node that uses a blueprint must be a list",
                      pointer("nodes", alias, "from"))  # fmt: skip
            return []
        out: list[tuple[dict[str, Any], Origin]] = []
        for i, item in enumerate(items):
            ptr = pointer("nodes", alias, "from", i)
            given = dict(item) if isinstance(item, dict) else {"node": item}
            wrong = [k for k in given if k not in _FEED_KEYS]
            if wrong or "node" not in given:
                self.broken.add(alias)
                if wrong:
                    hint = did_you_mean(wrong[0], _FEED_KEYS)
                    self.fail(f"unknown key '{wrong[0]}' in a 'from' item{hint}",
                              ptr + pointer(wrong[0]))  # fmt: skip
                else:
                    self.fail("a 'from' item needs 'node': the node[.output] it reads", ptr)
                continue
            source = self._source(given.pop("node"), ptr)
            name = given.pop("input", None)
            target = self.end(alias if name is None else f"{alias}.{name}", "inputs", ptr)
            where = Origin(self.out.file, self.out.positions, ptr, ())
            out.append(({"from": source, "to": target, **given}, where))
        return out

    def _contracts(self) -> None:
        contracts = self.data.get("contracts")
        if contracts is not None and not isinstance(contracts, dict):
            return  # the model reports its type
        merged = dict(contracts or {})
        for alias, got in self.imports.items():
            for name, schema in got.contracts.items():
                if name in merged and merged[name] != schema:
                    self.fail(f"blueprint alias '{alias}' declares contract '{name}' with "
                              "another schema than this pipeline; give both one schema or "
                              "rename one", pointer("nodes", alias, "uses"))  # fmt: skip
                merged.setdefault(name, schema)
        if merged:
            self.data["contracts"] = merged

    def _defaults(self, key: str) -> None:
        """``placement``/``replicas``: the blueprints' own, then the caller's naming an alias
        (every group it imported), then the caller's naming a node or group."""
        given = self.data.get(key)
        if given is not None and not isinstance(given, dict):
            return
        merged: dict[str, Any] = {}
        for got in self.imports.values():
            for name, (value, origin) in got.defaults[key].items():
                merged[name] = value
                self.out.origins[pointer(key, name)] = origin
        for name, value in (given or {}).items():
            if name in self.imports:
                where = Origin(self.out.file, self.out.positions, pointer(key, name), ())
                for group in self.imports[name].groups:
                    merged[group] = value
                    self.out.origins[pointer(key, group)] = where
        for name, value in (given or {}).items():
            if name not in self.imports:
                merged[name] = value
                self.out.origins.pop(pointer(key, name), None)
        if merged:
            self.data[key] = merged
