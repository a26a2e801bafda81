"""Blueprints in pipelines: a node ``uses: ./blueprints/etl.yaml`` imports another pipeline's
nodes under its id, the alias (``etl__read``, ``etl__write``: the id scheme of workflow
blueprints, ``spec.blueprints``, whose file reading, cycle and size limits this reuses).

A pipeline blueprint is a ``kind: pipeline`` file that may declare ``params`` (what the alias's
``with:`` gives; ``${{ params.NAME }}`` in its values is replaced at expansion, as text) and its
open ends: ``inputs``/``outputs``, name -> ``node.port``. The caller wires an alias like a node:
``from: [etl]`` (its only open output) or ``from: [etl.rows]`` reads an open output, and the
alias's own ``from:`` (or an edge ``to: etl.orders``) feeds an open input. After expansion no
alias is left: the caller's references name the inner ports, the blueprint's edges keep their
classes, its groups become ``etl__<group>``, and ``placement``/``replicas`` naming the alias
apply to every group it imported. A problem inside a blueprint is reported at the blueprint
file's line, followed by the ``uses:`` line(s) that brought it in.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, replace
from typing import Any

from lockstep.errors import Diagnostic, SpecError
from lockstep.spec.blueprint_files import (
    SEPARATOR,
    BlueprintFiles,
    BlueprintUse,
    is_blueprint,
    is_published,
)
from lockstep.spec.blueprint_import import check_params, mapping
from lockstep.spec.blueprints import Expander, Expansion, Keep, Origin, expanded_text, use_site
from lockstep.spec.expressions import OPEN
from lockstep.spec.hints import did_you_mean
from lockstep.spec.load import parse_mapping, sort_diagnostics
from lockstep.spec.names import STEP_ID_PATTERN
from lockstep.spec.pipeline import PipelineSpec, open_ends
from lockstep.spec.pipeline_checks import LoadedPipeline, check_document, load_pipeline
from lockstep.spec.pipeline_wiring import End, Import, Wiring
from lockstep.spec.yamlsafe import YamlDocument, nearest_position, pointer

#: the keys a node that uses a blueprint may have; the rest belongs in the blueprint
ALIAS_KEYS = ("uses", "with", "from", "description")
_SHAPE = "a pipeline blueprint must be a mapping with keys such as 'kind', 'name' and 'nodes'"
_PARAM = re.compile(r"\$\{\{\s*params\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
#: top-level keys whose values are never substituted
_AS_WRITTEN = ("kind", "name", "description", "params")
_MAX_ID = 63
#: an alias prefixes node ids and group names (``NodeId``)
_ALIAS_ID = re.compile(STEP_ID_PATTERN)
_ALIAS_RULE = "use letters, digits, '_' and '-', starting with a letter or '_'"


def needs_expanding(data: Any) -> bool:
    """Whether parsed pipeline data has a node that uses a blueprint, or params."""
    if not isinstance(data, dict):
        return False
    nodes = data.get("nodes")
    used = isinstance(nodes, dict) and any(_is_alias(n) for n in nodes.values())
    return used or data.get("params") is not None


def load_expanded(
    doc: YamlDocument,
    file: str,
    path: str,
    files: BlueprintFiles | None,
    max_bytes: int,
    *,
    text: str,
    raw: bytes,
) -> LoadedPipeline:
    """The pipeline ``doc`` (``text``, exactly ``raw``) with every blueprint expanded, checked
    as a whole; its text is then the expanded pipeline headed by the blueprint files it read
    (path and sha256). A blueprint alone is checked with its params' defaults."""
    schema = doc.data.get("params")
    if isinstance(schema, dict):  # a blueprint on its own: checked with its params' defaults
        problems: list[Diagnostic] = []
        at = Origin(file, doc.positions, "", ())
        props = mapping(schema.get("properties"))
        given = {
            n: p["default"] for n, p in props.items() if isinstance(p, dict) and "default" in p
        }
        doc = _with_params(doc, given, set(props), at, problems, max_bytes, [0])
        if problems:
            raise SpecError(sort_diagnostics(problems))
    out = _PipelineExpander(files, max_bytes).expand_pipeline(doc, file, (path,))
    if not out.uses:
        assert out.spec is not None
        return LoadedPipeline(out.spec, text, file, hashlib.sha256(raw).hexdigest(), doc.positions)
    text = expanded_text(out.data, out.uses, path, unit="nodes")
    size = len(text.encode())
    if size > max_bytes:
        raise SpecError([Diagnostic(
            f"with its blueprints expanded the pipeline is {size} bytes, over the limit of "
            f"{max_bytes}; use fewer or smaller blueprints", file)])  # fmt: skip
    return replace(load_pipeline(text, file, max_bytes=max_bytes), blueprints=tuple(out.uses))


@dataclass
class _Expanded(Expansion):
    """A pipeline expanded; ``origins`` maps a pointer (``/nodes/etl__read``, ``/edges/3``,
    ``/placement/etl__work``) to where that part was written."""

    spec: PipelineSpec | None = None

    def origin_at(self, ptr: str, used_at: str) -> Origin:
        inner = self.origins.get(ptr)
        if inner is None:
            return Origin(self.file, self.positions, ptr, (used_at,))
        return replace(inner, used_at=(*inner.used_at, used_at))

    def locate(self, diag: Diagnostic) -> Diagnostic:
        key = "/".join(diag.path.split("/")[:3])
        origin = self.origins.get(key)
        return diag if origin is None else origin.locate(diag.path[len(key) :], diag.message)


class _PipelineExpander(Expander):
    #: bytes of param values written into blueprints so far (``_with_params``)
    spent: list[int]

    def __init__(self, files: BlueprintFiles | None, max_bytes: int) -> None:
        super().__init__(files, max_bytes)
        self.spent = [0]

    def expand_pipeline(self, doc: YamlDocument, file: str, chain: tuple[str, ...]) -> _Expanded:
        """``doc`` with its blueprints imported and checked; ``SpecError`` lists every problem."""
        data: dict[str, Any] = dict(doc.data)
        out = _Expanded(file, doc.positions, data)
        problems: list[Diagnostic] = []

        def fail(message: str, ptr: str) -> None:
            line, col = nearest_position(doc.positions, ptr)
            problems.append(Diagnostic(message, file, line, col, ptr))

        nodes = mapping(data.get("nodes"))
        owners: dict[str, str | None] = {n: None for n, v in nodes.items() if not _is_alias(v)}
        imports: dict[str, Import] = {}
        kept: dict[str, Any] = {}
        for nid, node in nodes.items():
            if not _is_alias(node):
                kept[nid] = node
                continue
            got = self._import(nid, node, out, chain, owners, problems)
            if got is not None:
                imports[nid] = got
                kept.update(got.nodes)
        if problems:
            raise SpecError(sort_diagnostics(problems))
        if imports:
            Wiring(data, nodes, imports, out, fail).apply(kept)
        if problems:
            raise SpecError(sort_diagnostics(problems))
        try:
            out.spec = check_document(replace(doc, data=data), file)
        except SpecError as err:
            raise SpecError(sort_diagnostics([out.locate(d) for d in err.diagnostics])) from None
        return out

    def _import(
        self,
        alias: str,
        node: dict[str, Any],
        out: _Expanded,
        chain: tuple[str, ...],
        owners: dict[str, str | None],
        problems: list[Diagnostic],
    ) -> Import | None:
        ref, before = node["uses"], len(problems)

        def fail(message: str, *at: str | int) -> None:
            ptr = pointer("nodes", alias, *(at or ("uses",)))
            line, col = nearest_position(out.positions, ptr)
            problems.append(Diagnostic(message, out.file, line, col, ptr))

        if not _ALIAS_ID.fullmatch(alias):
            fail(f"node id '{alias}' cannot be a blueprint alias: {_ALIAS_RULE}", "uses")
            return None
        for key in node:
            if key not in ALIAS_KEYS:
                fail(f"a node that uses a blueprint takes only {', '.join(ALIAS_KEYS)}; "
                     f"move '{key}' into the blueprint", key)  # fmt: skip
        if not is_blueprint(ref):
            fail("a pipeline node uses blueprint files only ('./blueprints/etl.yaml'); "
                 "published blueprints (DEF@SELECTOR) are for workflow steps" if is_published(ref)
                 else f"'uses' of a pipeline node names a blueprint file, e.g. "
                 f"'./blueprints/etl.yaml'; got {str(ref)[:80]!r}")  # fmt: skip
            return None
        source = self._file(ref, chain, out, fail)
        if isinstance(source, Keep):
            fail(f"node '{alias}' uses a blueprint file, which is expanded only where the "
                 "pipeline is read from its repository; validate or publish the file itself "
                 "(`lockstep publish FILE`)")  # fmt: skip
            return None
        if source is None or len(problems) > before:
            return None
        target, raw, shown, _ = source
        self.read_bytes += len(raw)
        if self.read_bytes > 2 * self.max_bytes:
            fail(f"the blueprints used add up to more than {2 * self.max_bytes} bytes; "
                 "use fewer or smaller blueprints")  # fmt: skip
            return None
        line, col = nearest_position(out.positions, pointer("nodes", alias, "uses"))
        used_at = f"{out.file}:{line}:{col}"
        try:
            _, _, doc = parse_mapping(raw, shown, self.max_bytes, _SHAPE)
            if doc.data.get("kind") != "pipeline":
                fail(f"blueprint '{ref}' is not a pipeline (kind: pipeline); a pipeline node "
                     "imports only a pipeline's nodes")  # fmt: skip
                return None
            values = check_params(ref, node.get("with"), doc.data.get("params"), fail)
            for name, value in mapping(node.get("with")).items():
                if isinstance(value, str) and OPEN in value:
                    fail(f"param '{name}' of a pipeline blueprint is a plain value, "
                         "not an expression", "with", name)  # fmt: skip
            if len(problems) > before:
                return None
            at = Origin(shown, doc.positions, "", (used_at,))
            doc = _with_params(doc, values, set(values), at, problems, self.max_bytes, self.spent)
            if len(problems) > before:
                return None
            sub = self.expand_pipeline(doc, shown, (*chain, target))
        except SpecError as err:
            problems += [
                replace(d, message=use_site(d.message, (used_at,))) for d in err.diagnostics
            ]
            return None
        got = _rename(alias, sub, used_at)
        for nid in got.nodes:
            if len(nid) > _MAX_ID:
                fail(f"imported node id '{nid}' is longer than {_MAX_ID} characters; "
                     "use a shorter alias")  # fmt: skip
            elif nid in owners:
                other = owners[nid]
                by = f"a node imported by alias '{other}'" if other else "a node of this file"
                fail(f"blueprint alias '{alias}' imports node id '{nid}', which is already "
                     f"{by}; rename the alias or that node")  # fmt: skip
        if len(problems) > before:
            return None
        for nid in got.nodes:
            owners[nid] = alias
        out.uses.append(BlueprintUse(alias, target, hashlib.sha256(raw).hexdigest()))
        out.uses += [replace(u, alias=alias + SEPARATOR + u.alias) for u in sub.uses]
        for nid in got.nodes:
            out.origins[pointer("nodes", nid)] = sub.origin_at(
                pointer("nodes", nid[len(alias) + len(SEPARATOR) :]), used_at
            )
        return got


def _is_alias(node: Any) -> bool:
    return isinstance(node, dict) and "uses" in node


def _with_params(
    doc: YamlDocument,
    values: dict[str, Any],
    declared: set[str],
    at: Origin,
    problems: list[Diagnostic],
    budget: int,
    spent: list[int],
) -> YamlDocument:
    """``doc`` with each ``${{ params.NAME }}`` replaced by its value: a whole-value template by
    the value itself (a number stays a number), one inside text by the value as text. A param
    declared without a value stays as written; an undeclared one is a problem (at ``at``).
    The values written in may add up to ``budget`` bytes (a long value used many times would
    otherwise grow without bound before the expansion's size is checked); ``spent`` counts
    them across every blueprint of one expansion."""

    def unknown(name: str, ptr: str) -> None:
        hint = did_you_mean(name, declared) or (
            f" (params: {', '.join(sorted(declared))})"
            if declared
            else "; declare it under 'params'"
        )
        problems.append(at.locate(ptr, f"unknown param '{name}'{hint}"))

    def value_of(name: str, ptr: str) -> tuple[bool, Any]:
        if name not in declared:
            unknown(name, ptr)
        if name not in values or spent[0] > budget:
            return False, None
        spent[0] += len(json.dumps(values[name]))
        if spent[0] > budget:
            too_long = f"params written into the blueprint pass {budget} bytes; shorten them"
            problems.append(at.locate(ptr, too_long))
            return False, None
        return True, values[name]

    def substitute(value: Any, ptr: str) -> Any:
        if isinstance(value, str):
            whole = _PARAM.fullmatch(value.strip())
            if whole:
                found, given = value_of(whole[1], ptr)
                return given if found else value

            def one(match: re.Match[str]) -> str:
                found, given = value_of(match[1], ptr)
                if not found:
                    return match[0]
                return given if isinstance(given, str) else json.dumps(given)

            return _PARAM.sub(one, value)
        if isinstance(value, list):
            return [substitute(v, f"{ptr}/{i}") for i, v in enumerate(value)]
        if isinstance(value, dict):
            return {k: substitute(v, ptr + pointer(k)) for k, v in value.items()}
        return value

    data = {k: v if k in _AS_WRITTEN else substitute(v, pointer(k)) for k, v in doc.data.items()}
    return replace(doc, data=data)


def _rename_ref(ref: str, prefix: str) -> str:
    nid, dot, port = ref.partition(".")
    return prefix + nid + dot + port


def _rename(alias: str, sub: _Expanded, used_at: str) -> Import:
    """A checked blueprint's nodes, edges, defaults and open ends under ``alias__``."""
    assert sub.spec is not None
    spec, prefix = sub.spec, alias + SEPARATOR
    nodes: dict[str, Any] = {}
    for nid, raw in mapping(sub.data.get("nodes")).items():
        node = dict(raw)
        if node.get("group"):
            node["group"] = prefix + node["group"]
        node["from"] = [
            _rename_ref(item, prefix)
            if isinstance(item, str)
            else {**item, "node": _rename_ref(item["node"], prefix)}
            for item in node.get("from") or []
        ]
        if not node["from"]:
            del node["from"]
        nodes[prefix + nid] = node
    edges = [
        (
            {**e, "from": _rename_ref(e["from"], prefix), "to": _rename_ref(e["to"], prefix)},
            sub.origin_at(pointer("edges", i), used_at),
        )
        for i, e in enumerate(sub.data.get("edges") or [])
    ]
    defaults = {
        key: {
            prefix + name: (value, sub.origin_at(pointer(key, name), used_at))
            for name, value in mapping(sub.data.get(key)).items()
        }
        for key in ("placement", "replicas")
    }
    ends: dict[End, dict[str, str]] = {
        key: {n: f"{prefix}{nid}.{port}" for n, (nid, port) in open_ends(spec, key).items()}
        for key in ("inputs", "outputs")
    }
    groups = [prefix + g for g in spec.groups()]
    return Import(nodes, edges, defaults, ends, groups, dict(spec.contracts))
