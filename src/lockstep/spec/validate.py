"""Semantic checks of a workflow: schemas, the graph, and every expression.

They run on the plain data (as loaded from YAML, or dumped from a model by alias) and read
defensively, so they can run even when the models rejected part of the file: the user gets
every problem in one pass. Values of the wrong type are the models' to report, not ours.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from lockstep.errors import Diagnostic
from lockstep.spec.artifact_rules import check_artifacts
from lockstep.spec.contracts import CONTRACTS, check_references, resolved
from lockstep.spec.graph import ancestor_bits, cycle_through, strongly_connected
from lockstep.spec.hints import did_you_mean, one_line
from lockstep.spec.models import WorkflowSpec
from lockstep.spec.notify import check_notify
from lockstep.spec.sources import check_sources
from lockstep.spec.triggers import check_triggers
from lockstep.spec.validate_expressions import ExpressionChecks, _dict
from lockstep.spec.yamlsafe import Position, pointer


def validate_spec(
    spec: WorkflowSpec, positions: dict[str, Position] | None = None, file: str = "<input>"
) -> list[Diagnostic]:
    """Semantic diagnostics of a parsed spec (positions are optional)."""
    return validate_data(spec.model_dump(by_alias=True), positions or {}, file)


def validate_data(
    data: Mapping[str, Any],
    positions: dict[str, Position],
    file: str = "<input>",
    *,
    published_later: bool = False,
) -> list[Diagnostic]:
    """Semantic diagnostics of workflow data, in the order found (``published_later``: a
    ``uses: DEF@SELECTOR`` is not a problem here, the server expands it)."""
    checker = _Checker(data, positions, file)
    checker.published_later = published_later
    return checker.run()


class _Checker(ExpressionChecks):
    def __init__(self, data: Mapping[str, Any], positions: dict[str, Position], file: str):
        super().__init__(positions, file)
        self.data = data
        self.published_later = False
        self.params = data.get("params")
        self.groups = {
            "steps": {k: v for k, v in _dict(data.get("steps")).items() if isinstance(v, dict)},
            "finally": {k: v for k, v in _dict(data.get("finally")).items() if isinstance(v, dict)},
        }
        self.main, self.fin = self.groups["steps"], self.groups["finally"]
        # per group: step -> bitset of its transitive needs (by position in the group), so
        # a file with thousands of chained steps is not quadratic in sets
        self._ancestors: dict[str, dict[str, int]] = {}
        self._order: dict[str, dict[str, int]] = {}

    def run(self) -> list[Diagnostic]:
        self._check_params()
        check_sources(self.data.get("sources"), self.add)
        check_triggers(self.data.get("triggers"), self.add)
        check_notify(self.data.get("notify"), self.add)
        check_artifacts(self.groups, self.add, self.needs_transitively)
        definitions = _dict(self.data.get("definitions"))
        run_schema = self.data.get("outputs_schema")
        if isinstance(run_schema, dict) and check_references(
            run_schema, "/outputs_schema", definitions, self.add
        ):
            self._check_outputs_schema(resolved(run_schema, definitions) or {}, "/outputs_schema")
        for name, schema in definitions.items():
            if isinstance(schema, dict):
                self.schema_compiles(schema, pointer("definitions", name), f"definition '{name}'")
        for group, steps in self.groups.items():
            for sid, step in steps.items():
                for key in CONTRACTS:
                    schema = step.get(key)
                    ptr = pointer(group, sid, key)
                    if not isinstance(schema, dict) or not check_references(
                        schema, ptr, definitions, self.add
                    ):
                        continue
                    schema = resolved(schema, definitions) or {}
                    if key == "outputs":
                        self._check_outputs_schema(schema, ptr)
                        self._check_result_allowed(sid, step, schema, ptr)
                    else:
                        self.schema_compiles(schema, ptr, "'input'")
                given = _dict(step.get("approval")).get("input")
                ptr = pointer(group, sid, "approval", "input")
                if isinstance(given, dict) and check_references(given, ptr, definitions, self.add):
                    self._check_outputs_schema(resolved(given, definitions) or {}, ptr)
        for sid in self.fin:
            if sid in self.main:
                self.add(
                    f"step id '{sid}' is used in both 'steps' and 'finally'; rename one",
                    pointer("finally", sid),
                )
        for group in self.groups:
            self._check_needs(group)
            self._check_cycles(group)
        self._check_expressions()
        return self.diagnostics

    # -- schemas

    def _check_params(self) -> None:
        params = self.params
        if not isinstance(params, dict) or not self.schema_compiles(params, "/params", "'params'"):
            return
        if params.get("type") != "object":
            where = "/params/type" if "type" in params else "/params"
            self.add("'params' must be a JSON Schema with 'type: object'", where)
        for name, prop in _dict(params.get("properties")).items():
            if isinstance(prop, dict) and "default" in prop:
                error = best_match(Draft202012Validator(prop).iter_errors(prop["default"]))
                if error is not None:
                    self.add(
                        f"default of param '{name}' is invalid: {one_line(error.message)}",
                        pointer("params", "properties", name, "default"),
                    )

    def _check_outputs_schema(self, schema: dict[str, Any], ptr: str) -> None:
        if self.schema_compiles(schema, ptr, "'outputs'") and schema.get("type", "object") != (
            "object"
        ):
            self.add("'outputs' must be a JSON Schema with 'type: object'", ptr + "/type")

    def _check_result_allowed(
        self, sid: str, step: dict[str, Any], schema: dict[str, Any], ptr: str
    ) -> None:
        """A step printing its result (``result:``) under a schema that forbids it would fail
        every time: say so now."""
        mode = step.get("result")
        closed = schema.get("additionalProperties") is False
        if mode is not None and closed and "result" not in _dict(schema.get("properties")):
            self.add(
                f"step '{sid}' has 'result: {mode}' but its 'outputs' schema allows no output "
                "'result'; declare it under properties",
                ptr,
            )

    # -- graph

    def _needs(self, step: dict[str, Any]) -> list[tuple[int, str]]:
        needs = step.get("needs")
        if not isinstance(needs, list):
            return []
        return [(i, dep) for i, dep in enumerate(needs) if isinstance(dep, str)]

    def _check_needs(self, group: str) -> None:
        own, other = (self.main, self.fin) if group == "steps" else (self.fin, self.main)
        for sid, step in self.groups[group].items():
            for index, dep in self._needs(step):
                ptr = pointer(group, sid, "needs", index)
                if dep == sid:
                    self.add(f"step '{sid}' needs itself; remove it from 'needs'", ptr)
                elif dep in own:
                    continue
                elif dep in other and group == "finally":
                    self.add(
                        f"finally step '{sid}' cannot need main step '{dep}'; "
                        "finally steps run after all main steps anyway",
                        ptr,
                    )
                elif dep in other:
                    self.add(f"step '{sid}' cannot need finally step '{dep}'", ptr)
                else:
                    self.add(
                        f"step '{sid}' needs unknown step '{dep}'{did_you_mean(dep, own)}", ptr
                    )

    def _graph(self, group: str) -> dict[str, list[str]]:
        steps = self.groups[group]
        return {
            sid: [dep for _, dep in self._needs(step) if dep in steps and dep != sid]
            for sid, step in steps.items()
        }

    def _check_cycles(self, group: str) -> None:
        graph = self._graph(group)
        order = {sid: i for i, sid in enumerate(graph)}
        for component in strongly_connected(graph):
            if len(component) < 2:
                continue
            members = set(component)
            start = min(component, key=order.__getitem__)
            path = cycle_through(start, graph, members)
            index = next(i for i, dep in self._needs(self.groups[group][start]) if dep == path[1])
            self.add("cycle: " + " -> ".join(path), pointer(group, start, "needs", index))

    def needs_transitively(self, sid: str, ref: str) -> bool:
        """Whether ``sid`` needs ``ref`` directly or through other steps of its group."""
        group = "steps" if sid in self.main else "finally"
        if group not in self._ancestors:
            self._ancestors[group] = ancestor_bits(self._graph(group))
        if group not in self._order:
            self._order[group] = {k: i for i, k in enumerate(self.groups[group])}
        order = self._order[group]
        if ref not in order:
            return False
        return bool(self._ancestors[group].get(sid, 0) >> order[ref] & 1)
