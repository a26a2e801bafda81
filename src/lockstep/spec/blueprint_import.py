"""How a blueprint's steps enter the caller: its params checked against the alias's ``with:``
and its steps renamed under the alias (``spec.blueprints`` decides what is used where)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from lockstep.spec.blueprint_files import SEPARATOR
from lockstep.spec.blueprint_rewrite import Rewriter
from lockstep.spec.expressions import OPEN
from lockstep.spec.hints import did_you_mean, one_line


def mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def check_params(ref: str, given: Any, schema: Any, fail: Any) -> dict[str, Any]:
    """The blueprint's params as the alias gives them (defaults filled in); problems reported
    at the alias's ``with:``."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        fail("'with' of a step that uses a blueprint must be a mapping of param: value", "with")
        return {}
    schema = schema if isinstance(schema, dict) else {}
    props = schema.get("properties") if isinstance(schema.get("properties"), dict) else {}
    open_ended = schema.get("additionalProperties") not in (None, False) and bool(props)
    for name, value in given.items():
        prop = props.get(name)
        if prop is None and not open_ended:
            declared = f"; it declares: {', '.join(props)}" if props else "; it declares no params"
            fail(f"blueprint '{ref}' has no param '{name}'{did_you_mean(name, props) or declared}",
                 "with", name)  # fmt: skip
        elif isinstance(prop, dict) and not _has_template(value):
            error = best_match(Draft202012Validator(prop).iter_errors(value))
            if error is not None:
                fail(
                    f"param '{name}' of blueprint '{ref}': {one_line(error.message)}", "with", name
                )
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    for name in required:
        prop = props.get(name)
        if name not in given and not (isinstance(prop, dict) and "default" in prop):
            fail(f"blueprint '{ref}' needs param '{name}'; give it under 'with'")
    values = {n: p.get("default") for n, p in props.items() if isinstance(p, dict)}
    return values | given


def _has_template(value: Any) -> bool:
    if isinstance(value, str):
        return OPEN in value
    if isinstance(value, list):
        return any(_has_template(v) for v in value)
    if isinstance(value, dict):
        return any(_has_template(v) for v in value.values())
    return False


def import_steps(
    alias: str, step: dict[str, Any], data: dict[str, Any], values: dict[str, Any]
) -> dict[str, Any]:
    """The blueprint's steps renamed under ``alias``, then the alias itself (a noop)."""
    bp_steps: dict[str, Any] = data["steps"]
    rename = {sid: alias + SEPARATOR + sid for sid in bp_steps}
    rewrite = Rewriter(values, rename)
    needed = {d for s in bp_steps.values() for d in s.get("needs") or []}
    alias_needs = list(step.get("needs") or [])
    defaults = mapping(data.get("defaults"))
    # the blueprint's own workflow env and defaults keep applying to its steps
    env = {**(data.get("env") or {}), **(defaults.get("env") or {})}
    out: dict[str, Any] = {}
    for sid, original in bp_steps.items():
        new = rewrite.step(original)
        if env:
            new["env"] = rewrite.data(env) | (new.get("env") or {})
        for key in ("timeout", "retry", "runs_on", "schedule_timeout"):
            if defaults.get(key) is not None and key not in new:
                new[key] = defaults[key]
        if not original.get("needs") and alias_needs:
            new["needs"] = list(alias_needs)
        out[rename[sid]] = new
    joined: dict[str, Any] = {"uses": "noop"}
    if step.get("description"):
        joined["description"] = step["description"]
    joined["needs"] = [rename[s] for s in bp_steps if s not in needed]
    if data.get("outputs"):
        joined["with"] = rewrite.data(data["outputs"])
    if data.get("outputs_schema"):
        joined["outputs"] = data["outputs_schema"]
    out[alias] = joined
    return out
