"""The expression half of a workflow's semantic checks (``spec/validate``): every ``${{ }}``
in env values, ``run``, ``with``, ``if``, gates and outputs, checked against the names its
place may read — params, steps it needs and their declared outputs, item and index, env,
secrets. A mixin of the checker: it reads the groups and the graph the checker keeps."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from lockstep.spec.blueprint_files import is_blueprint, is_published
from lockstep.spec.checker import Checker
from lockstep.spec.conditions import is_boolean
from lockstep.spec.contracts import template_strings
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
from lockstep.spec.hints import did_you_mean
from lockstep.spec.names import SECRET_NAME_PATTERN
from lockstep.spec.resources import FIELDS as RESOURCE_FIELDS
from lockstep.spec.shell import compile_shell
from lockstep.spec.yamlsafe import pointer

IF_EXAMPLE = "${{ params.deploy == true }}"
SECRET_NAME = re.compile(SECRET_NAME_PATTERN)


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
    own: bool = False  # may it read its own step's outputs (its `writes:`)?


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


class ExpressionChecks(Checker):
    """Checks of expressions; the checker that mixes it in sets these."""

    data: Mapping[str, Any]
    params: Any
    groups: dict[str, dict[str, dict[str, Any]]]
    main: dict[str, dict[str, Any]]
    fin: dict[str, dict[str, Any]]
    published_later: bool

    def needs_transitively(self, sid: str, ref: str) -> bool:
        raise NotImplementedError

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
        self._check_writes(group, sid, step, scope)
        child = step.get("workflow")
        if isinstance(child, str) and child.split("@", 1)[0] == self.data.get("name"):
            self.add(
                f"step '{sid}' runs '{child}', the workflow it is in: each run would start "
                "another, without end; run a different definition",
                pointer(group, sid, "workflow"),
            )

    def _check_writes(self, group: str, sid: str, step: dict[str, Any], scope: _Scope) -> None:
        """``writes:``: what the step records as resources' next versions when it succeeds;
        its templates may read the step's own outputs."""
        writes = _dict(step.get("writes"))
        if not writes:
            return
        ptr = pointer(group, sid, "writes")
        if step.get("for_each") is not None:
            self.add(
                f"{scope.where} has for_each and writes: its items would each write a version; "
                "write from a step that needs it (e.g. with ${{ steps.ID.outputs[0] }})",
                ptr,
            )
            return
        for kind in ("approval", "wait"):
            if step.get(kind) is not None:
                article = "an" if kind == "approval" else "a"
                self.add(f"{scope.where} is {article} '{kind}' step: it writes no resource", ptr)
                return
        own = replace(scope, own=True)
        for name, value in writes.items():
            at = pointer(group, sid, "writes", name)
            if (isinstance(value, str) and OPEN not in value) or not isinstance(value, str | dict):
                self.add(
                    f"writes.{name} of {scope.where} must be a mapping (the resource's data) or "
                    "a ${{ }} expression that gives one",
                    at,
                )
                continue
            for text, where in template_strings(value, at):
                self._check_text(text, where, own)

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
        if root == "resources" and len(chain) > 1:
            return self._check_resource(chain)
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

    def _check_resource(self, chain: tuple[str, ...]) -> str | None:
        declared = _dict(self.data.get("resources"))
        alias = chain[1]
        if alias not in declared:
            if not declared:
                return "this workflow reads no resources; add 'resources: {ALIAS: NAME}'"
            hint = did_you_mean(alias, declared) or f"; declared: {', '.join(declared)}"
            return f"unknown resource '{alias}'{hint}"
        if len(chain) > 2 and chain[2] not in RESOURCE_FIELDS:
            return (
                f"unknown field 'resources.{alias}.{chain[2]}'; "
                "use .data.<field>, .version or .name"
            )
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
            if ref == scope.step and scope.own:
                return (
                    None
                    if len(chain) < 3 or chain[2] == "outputs"
                    else (f"writes of {scope.where} can read its own outputs, not its status")
                )
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
