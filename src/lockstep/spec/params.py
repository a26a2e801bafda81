"""Run parameters: from ``-p key=value`` pairs, and checked against the params schema."""

from __future__ import annotations

import copy
import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from lockstep.errors import ParamError
from lockstep.spec.hints import did_you_mean, one_line
from lockstep.spec.typed_text import as_type, loads_json
from lockstep.spec.yamlsafe import pointer

MAX_PARAMS_BYTES = 256 * 1024

_NO_PARAMS = "this workflow declares no params"


def _properties(schema: dict[str, Any]) -> dict[str, Any]:
    props = schema.get("properties")
    return props if isinstance(props, dict) else {}


def parse_cli_params(pairs: list[str], schema: dict[str, Any] | None) -> dict[str, Any]:
    """``["n=3", "tags=[\\"a\\"]"]`` -> ``{"n": 3, "tags": ["a"]}``, typed by the schema."""
    result: dict[str, Any] = {}
    if pairs and schema is None:
        raise ParamError(f"{_NO_PARAMS}; remove the -p options")
    props = _properties(schema or {})
    closed = bool(props) or (schema or {}).get("additionalProperties") is False
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ParamError(f"param '{pair}' must be written key=value")
        if key in result:
            raise ParamError(f"param '{key}' is given more than once")
        if closed and key not in props:
            declared = ", ".join(props) or "(none)"
            hint = did_you_mean(key, props)
            listed = f" (declared: {declared})" if hint else f"; declared: {declared}"
            raise ParamError(f"unknown param '{key}'{hint}{listed}")
        prop = props.get(key)
        result[key] = _convert(key, text, prop if isinstance(prop, dict) else {})
    return result


def _convert(key: str, text: str, prop: dict[str, Any]) -> Any:
    declared = prop.get("type")
    kinds = [declared] if isinstance(declared, str) else list(declared or [])
    if not kinds:
        choices = prop.get("enum", [prop["const"]] if "const" in prop else [])
        if text in choices:
            return text
        try:
            return loads_json(text)
        except ValueError:
            return text
    # try the strict types first: "5" for ["integer", "string"] means 5
    ordered = [k for k in kinds if k != "string"] + (["string"] if "string" in kinds else [])
    first_error = ""
    for kind in ordered:
        try:
            return as_type(kind, text)
        except ValueError as err:
            first_error = first_error or str(err)
    raise ParamError(f"param '{key}' {first_error}, got {text!r}")


def resolve_params(
    given: dict[str, Any], schema: dict[str, Any] | None, *, max_bytes: int = MAX_PARAMS_BYTES
) -> dict[str, Any]:
    """``given`` with defaults applied, validated against ``schema``; a new dict."""
    _size(given, max_bytes)
    if schema is None:
        if given:
            raise ParamError(f"{_NO_PARAMS}; got {', '.join(given)}")
        return {}
    result = copy.deepcopy(given)
    for name, prop in _properties(schema).items():
        if name not in result and isinstance(prop, dict) and "default" in prop:
            result[name] = copy.deepcopy(prop["default"])
    _validate(result, schema)
    return result


def check_params(given: dict[str, Any], schema: dict[str, Any] | None) -> None:
    """Check ``given`` as is (no defaults applied) against an optional schema, e.g. the input
    contract of a state machine's first step."""
    _size(given, MAX_PARAMS_BYTES)
    if schema is not None:
        _validate(given, schema)


def _size(given: dict[str, Any], max_bytes: int) -> int:
    try:
        size = len(json.dumps(given, ensure_ascii=False, allow_nan=False).encode("utf-8"))
    except (TypeError, ValueError) as err:
        raise ParamError(f"params must be plain JSON values: {err}") from None
    if size > max_bytes:
        raise ParamError(f"params are too large ({size} bytes; the limit is {max_bytes} bytes)")
    return size


def _validate(result: dict[str, Any], schema: dict[str, Any]) -> None:
    try:
        validator = Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(result), key=lambda e: list(map(str, e.path)))
    except SchemaError as err:
        raise ParamError(
            f"the workflow's params schema is invalid: {one_line(err.message)}"
        ) from None
    problems = [_problem(error, schema) for error in errors]
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ParamError(problems[0] + more, problems)


def _problem(error: Any, schema: dict[str, Any]) -> str:
    where = "params" + pointer(*error.path)
    props = _properties(schema)
    if error.validator == "required" and not error.path:
        missing = [name for name in error.validator_value if name not in error.instance]
        return f"{where}: missing required param '{missing[0]}'" if missing else where
    if error.validator == "additionalProperties" and not error.path:
        extra = [name for name in error.instance if name not in props]
        names = ", ".join(f"'{name}'" for name in extra)
        declared = ", ".join(props) or "(none)"
        return f"{where}: unknown param {names}; declared: {declared}"
    return f"{where}: {one_line(error.message)}"
