"""Semantic checks of a workflow: schemas, the graph, and every expression.

They run on the plain data (as loaded from YAML, or dumped from a model by alias) and read
defensively, so they can run even when the models rejected part of the file: the user gets
every problem in one pass. Values of the wrong type are the models' to report, not ours.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from lockstep.errors import Diagnostic
from lockstep.spec.artifact_rules import check_artifacts
from lockstep.spec.blueprint_files import is_blueprint, is_published
from lockstep.spec.checker import Checker
from lockstep.spec.conditions import is_boolean
from lockstep.spec.contracts import CONTRACTS, check_references, resolved, template_strings
from lockstep.spec.expressions import (
    OPEN,
    ROOTS,
    ExpressionError,
    compile_expression,
    dashed_output,
    find_templates,
    references,
    secret_reference,
    whole_template,
)
from lockstep.spec.fanout_rules import check_step_shape, for_each_source
from lockstep.spec.graph import ancestor_bits, cycle_through, strongly_connected
from lockstep.spec.hints import did_you_mean, one_line
from lockstep.spec.models import WorkflowSpec
from lockstep.spec.names import SECRET_NAME_PATTERN
from lockstep.spec.notify import check_notify
from lockstep.spec.shell import compile_shell
from lockstep.spec.sources import check_sources
from lockstep.spec.triggers import check_triggers
from lockstep.spec.yamlsafe import Position, pointer

IF_EXAMPLE = "${{ params.deploy == true }}"
SECRET_NAME = re.compile(SECRET_NAME_PATTERN)


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


@dataclass(frozen=True)
class _Scope:
    """Where an expression sits, which decides the names it may use."""

    where: str  # for messages: "step 'b'", "workflow env", ...
    step: str | None = None
    is_finally: bool = False
    steps: bool = True  # may it read steps.*?
    run_status: bool = False
    env: bool = True
    items: bool = False  # may it read item and index (a for_each step)?


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class _Checker(Checker):
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

    # -- expressions

    def _check_expressions(self) -> None:
        data = self.data
        wf_env = _Scope("workflow env", steps=False, env=False)
        for name, value in _dict(data.get("env")).items():
            self._check_env_value(value, pointer("env", name), wf_env)
        defaults_env = _Scope("defaults env", steps=False)
        for name, value in _dict(_dict(data.get("defaults")).get("env")).items():
            self._check_env_value(value, pointer("defaults", "env", name), defaults_env)
        for group, steps in self.groups.items():
            for sid, step in steps.items():
                label = f"finally step '{sid}'" if group == "finally" else f"step '{sid}'"
                scope = _Scope(label, sid, group == "finally", run_status=group == "finally")
                check_step_shape(group, sid, step, self.add)
                if is_blueprint(step.get("uses")):
                    self.add(
                        f"{label} uses a blueprint, which is expanded only where the workflow "
                        "is read from its repository (a file, a scanned commit); run or "
                        "register the file itself",
                        pointer(group, sid, "uses"),
                    )
                elif is_published(step.get("uses")) and not self.published_later:
                    self.add(
                        f"{label} uses the published blueprint '{step['uses']}', which the "
                        "server expands where a workflow arrives (a run, a draft, a scan); "
                        "send it to the server",
                        pointer(group, sid, "uses"),
                    )
                self._check_for_each(group, sid, step, scope)
                if step.get("for_each") is not None:
                    scope = replace(scope, items=True)
                self._check_step(group, sid, step, scope)
        outputs = _Scope("workflow outputs", run_status=True)
        for name, value in _dict(data.get("outputs")).items():
            self._check_text(value, pointer("outputs", name), outputs)

    def _check_step(self, group: str, sid: str, step: dict[str, Any], scope: _Scope) -> None:
        run = step.get("run")
        if isinstance(run, str):
            if self._check_text(run, pointer(group, sid, "run"), scope) and OPEN in run:
                try:
                    compile_shell(run)
                except ValueError as err:
                    self.add(f"in 'run' of {scope.where}: {err}", pointer(group, sid, "run"))
        elif isinstance(run, list):
            for index, item in enumerate(run):
                self._check_text(item, pointer(group, sid, "run", index), scope)
        for name, value in _dict(step.get("env")).items():
            self._check_env_value(value, pointer(group, sid, "env", name), scope)
        for text, ptr in template_strings(step.get("with"), pointer(group, sid, "with")):
            self._check_text(text, ptr, scope)
        if "if" in step:
            self._check_if(step["if"], pointer(group, sid, "if"), scope)
        for name, path in _dict(step.get("artifacts")).items():
            self._check_text(path, pointer(group, sid, "artifacts", name), scope)
        for key, field in (("approval", "message"), ("wait", "until")):
            gated = _dict(step.get(key)).get(field)
            if gated is not None:
                self._check_text(gated, pointer(group, sid, key, field), scope)
        child = step.get("workflow")
        if isinstance(child, str) and child.split("@", 1)[0] == self.data.get("name"):
            self.add(
                f"step '{sid}' runs '{child}', the workflow it is in: each run would start "
                "another, without end; run a different definition",
                pointer(group, sid, "workflow"),
            )

    def _check_for_each(self, group: str, sid: str, step: dict[str, Any], scope: _Scope) -> None:
        """The list expression itself: no item or index yet (they come from it)."""
        try:
            src = for_each_source(step.get("for_each"))
        except ExpressionError as err:
            self.add(err.message, pointer(group, sid, "for_each"))
            return
        if src is not None:
            self._check_expression(src, pointer(group, sid, "for_each"), scope)

    def _check_env_value(self, value: Any, ptr: str, scope: _Scope) -> None:
        name = secret_reference(value)
        if name is None:
            self._check_text(value, ptr, scope)
        elif not SECRET_NAME.fullmatch(name):
            self.add(f"secret names must match {SECRET_NAME.pattern}, got '{name}'", ptr)

    def _check_text(self, text: Any, ptr: str, scope: _Scope) -> bool:
        """Check every template in a string; False when the templates cannot be parsed."""
        if not isinstance(text, str) or OPEN not in text:
            return True
        try:
            templates = find_templates(text)
        except ExpressionError as err:
            self.add(err.message, ptr)
            return False
        for template in templates:
            self._check_expression(template.source, ptr, scope)
        return True

    def _check_expression(self, src: str, ptr: str, scope: _Scope) -> bool:
        if not src:
            self.add("empty expression '${{ }}'; write an expression inside", ptr)
            return False
        try:
            compile_expression(src)
            chains = references(src)
        except ExpressionError as err:
            self.add(err.message, ptr)
            return False
        dashed = dashed_output(src)
        if dashed is not None:
            name, fixed = dashed
            self.add(
                f"expression '{src}': '-' is minus in CEL; read the output '{name}' as {fixed}",
                ptr,
            )
            return False
        problems: list[str] = []
        for chain in chains:
            problem = self._check_reference(chain, scope)
            if problem and problem not in problems:
                problems.append(problem)
        for problem in problems:
            self.add(f"expression '{src}': {problem}", ptr)
        return not problems

    def _check_reference(self, chain: tuple[str, ...], scope: _Scope) -> str | None:
        root = chain[0]
        if root not in ROOTS:
            return f"unknown name '{root}'; expressions start with params, steps, run or env"
        if root in ("item", "index") and not scope.items:
            return f"'{root}' is only available in a step with for_each"
        if root == "secrets":
            return "a secret can only be a whole env value, e.g. TOKEN: ${{ secrets.API_TOKEN }}"
        if root == "env" and not scope.env:
            return f"'env' cannot be used in {scope.where}"
        if root == "params" and len(chain) > 1:
            return self._check_param(chain[1])
        if root == "run" and len(chain) > 1:
            field = chain[1]
            if field not in ("id", "sha", "status"):
                return f"unknown field 'run.{field}'; use run.id, run.sha or run.status"
            if field == "status" and not scope.run_status:
                return "run.status is only available in finally steps and workflow outputs"
        if root == "steps":
            if not scope.steps:
                return f"steps cannot be used in {scope.where}"
            if len(chain) > 1:
                return self._check_step_reference(chain, scope)
        return None

    def _check_param(self, name: str) -> str | None:
        if self.params is None:
            return "this workflow declares no params; add a 'params' schema"
        if not isinstance(self.params, dict):
            return None  # the invalid schema itself is reported
        declared = _dict(self.params.get("properties"))
        extra = self.params.get("additionalProperties")
        if declared and name not in declared and not (extra is True or isinstance(extra, dict)):
            hint = did_you_mean(name, declared) or f"; declared: {', '.join(declared)}"
            return f"unknown param '{name}'{hint}"
        return None

    def _check_step_reference(self, chain: tuple[str, ...], scope: _Scope) -> str | None:
        ref = chain[1]
        if ref not in self.main and ref not in self.fin:
            hyphened = [s for s in (*self.main, *self.fin) if s.startswith(f"{ref}-")]
            if hyphened:  # `steps.go-live` reads as steps.go minus live
                return f"unknown step '{ref}'; write steps['{hyphened[0]}'] for a step id with '-'"
            return f"unknown step '{ref}'{did_you_mean(ref, [*self.main, *self.fin])}"
        if scope.step is None and ref in self.fin:
            return f"{scope.where} can only use main steps, not finally step '{ref}'"
        if scope.step is not None and (not scope.is_finally or ref in self.fin):
            if ref == scope.step:
                return f"{scope.where} cannot use its own outputs or status"
            if ref in self.fin and not scope.is_finally:
                return f"{scope.where} cannot use finally step '{ref}'"
            if not self.needs_transitively(scope.step, ref):
                return f"{scope.where} uses steps.{ref} but does not need it; add '{ref}' to needs"
        if len(chain) > 2:
            field = chain[2]
            if field not in ("outputs", "status"):
                return f"unknown field 'steps.{ref}.{field}'; use outputs.<name> or status"
            producer = self.main.get(ref, self.fin.get(ref, {}))
            if field == "outputs" and len(chain) > 3 and producer.get("for_each") is not None:
                return (
                    f"steps.{ref}.outputs is a list (one entry per for_each item); use e.g. "
                    f"steps.{ref}.outputs[0].{chain[3]} or "
                    f"steps.{ref}.outputs.map(o, o.{chain[3]})"
                )
            if field == "outputs" and len(chain) > 3:
                declared = self._declared_outputs(ref)
                if declared is not None and chain[3] not in declared:
                    name = chain[3]
                    hint = did_you_mean(name, declared) or (
                        f"; declared: {', '.join(declared)}" if declared else ""
                    )
                    return f"step '{ref}' has no output '{name}'{hint}"
        return None

    def _declared_outputs(self, sid: str) -> dict[str, Any] | None:
        """Declared output properties, or None when any name is allowed."""
        step = self.main.get(sid, self.fin.get(sid, {}))
        # an approval's outputs are what its approvers give
        schema = step.get("outputs") or _dict(step.get("approval")).get("input")
        if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict):
            return None
        if schema.get("additionalProperties") is True:
            return None
        declared = dict(schema["properties"])
        if step.get("result") is not None:  # what it prints on stdout (`result: json|text`)
            declared.setdefault("result", {})
        return declared

    # -- if

    def _check_if(self, value: Any, ptr: str, scope: _Scope) -> None:
        if not isinstance(value, str):
            return  # a YAML boolean is a constant; other types are the model's to report
        src = value.strip()
        if OPEN in value:
            try:
                only = whole_template(value)
            except ExpressionError as err:
                self.add(err.message, ptr)
                return
            if only is None:
                self.add(f"'if' must be a single expression, e.g. {IF_EXAMPLE}", ptr)
                return
            src = only.source
        if self._check_expression(src, ptr, scope) and not is_boolean(src, self._declared_boolean):
            self.add(f"'if' must be a boolean expression, e.g. {IF_EXAMPLE}; got '{src}'", ptr)

    def _declared_boolean(self, chain: tuple[str, ...]) -> bool:
        if chain[0] == "params" and len(chain) == 2 and isinstance(self.params, dict):
            prop = _dict(self.params.get("properties")).get(chain[1])
            return isinstance(prop, dict) and prop.get("type") == "boolean"
        if chain[0] == "steps" and len(chain) == 4 and chain[2] == "outputs":
            prop = (self._declared_outputs(chain[1]) or {}).get(chain[3])
            return isinstance(prop, dict) and prop.get("type") == "boolean"
        return False
