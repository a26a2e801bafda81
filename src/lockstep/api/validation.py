"""Pydantic's validation errors as one line a user can act on: the field, what was wrong and
what is allowed, never a regular expression or pydantic's own wording about "strings"."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lockstep.api.deps import PROJECT_PATTERN
from lockstep.api.routers.runs import RUN_ID
from lockstep.registry.selectors import DEFINITION_PATTERN, TAG_PATTERN
from lockstep.spec.names import (
    ENV_NAME_PATTERN,
    NAME_PATTERN,
    RECORDED_STEP_PATTERN,
    SECRET_NAME_PATTERN,
    STEP_ID_PATTERN,
)

_LOWER_NAME = "lowercase letters, digits, '.', '_' and '-', starting with a letter or digit"

#: what a pattern allows, in words; a pattern not listed here is described generically
ALLOWED: Mapping[str, str] = {
    TAG_PATTERN: "a tag is $ then capital letters or _, like $LIVE; in a shell write it in "
    "single quotes ('$LIVE'), or the shell replaces $LIVE with a variable",
    DEFINITION_PATTERN: _LOWER_NAME,
    PROJECT_PATTERN: "lowercase letters, digits and '-', starting with a letter or digit",
    NAME_PATTERN: "lowercase letters, digits and '-', starting with a letter or digit",
    SECRET_NAME_PATTERN: "capital letters, digits and _, e.g. GITHUB_TOKEN",
    ENV_NAME_PATTERN: "letters, digits and _, not starting with a digit",
    STEP_ID_PATTERN: "letters, digits, '_' and '-', starting with a letter or _",
    RECORDED_STEP_PATTERN: "a step id, or a fan-out item like sim[3]",
    RUN_ID: "letters, digits, '_' and '-' (a run id, or its first characters)",
}

_WHERE = {"query": "option", "path": "", "body": "", "header": "header"}


def explain(error: Mapping[str, Any]) -> str:
    """One line for one pydantic error of a request: ``<field>: <what is wrong>``."""
    loc = [str(p) for p in error.get("loc", ())]
    where = _WHERE.get(loc[0], "") if loc else ""
    field = ".".join(p for p in loc[1:] if p) if loc and loc[0] in _WHERE else ".".join(loc)
    name = f"{where} {field}".strip() if field else "the request body"
    ctx: Mapping[str, Any] = error.get("ctx") or {}
    value = error.get("input")
    shown = repr(value)[:80] if isinstance(value, str | int | float) else ""
    kind = error.get("type", "")
    if kind == "missing":
        return f"{name} is required"
    if kind == "string_too_short":
        if ctx.get("min_length") == 1:
            return f"{name} is empty"
        return f"{name} needs at least {ctx.get('min_length')} characters"
    if kind in ("string_too_long", "too_long"):
        limit = ctx.get("max_length")
        unit = "characters" if kind == "string_too_long" else "entries"
        return f"{name} is too long: at most {limit} {unit}"
    if kind == "string_pattern_mismatch":
        allowed = ALLOWED.get(str(ctx.get("pattern", "")), "it has characters that are not allowed")
        return f"{name} {shown} is not valid: {allowed}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), "")
        words = {
            "greater_than_equal": "at least",
            "greater_than": "more than",
            "less_than_equal": "at most",
            "less_than": "less than",
        }[kind]
        return f"{name} {shown} is out of range: it must be {words} {bound}"
    if kind == "extra_forbidden":
        return f"{name} is not a known field; remove it"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"{name} {shown} is not a whole number"
    if kind in ("bool_parsing", "bool_type"):
        return f"{name} {shown} is not true or false"
    if kind == "json_invalid":
        return f"the request body is not valid JSON: {ctx.get('error', '')}".rstrip(": ")
    if kind in ("literal_error", "enum"):
        return f"{name} {shown} is not one of: {ctx.get('expected', '')}"
    # pydantic's other messages ("Input should be a valid dictionary") read well enough
    return f"{name}: {str(error.get('msg', 'invalid')).removeprefix('Value error, ')}"
