"""Typed step contracts in ``workflow.yaml``: ``input`` (what ``with:`` must hold) and
``outputs`` JSON Schemas, inline or ``{$ref: '#/definitions/NAME'}`` into the top-level
``definitions`` map, which the state-machine dialect shares; and the check of a value against
one (``check_contract``), which the workflow (a ``noop``, the run's outputs) and the executors
(a step's input and outputs) share."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from lockstep.errors import ExecutionError
from lockstep.spec.hints import one_line
from lockstep.spec.schema_refs import ref_target, resolve_schema, schema_refs
from lockstep.spec.yamlsafe import pointer

CONTRACTS = ("input", "outputs")
_MAX_MESSAGE = 300


class OutputError(ExecutionError):
    """A step's outputs are unreadable, or a value does not match its step's contract."""


def resolved(schema: dict[str, Any] | None, definitions: dict[str, Any]) -> dict[str, Any] | None:
    """A self-contained copy of a contract whose references all resolve (validated first)."""
    if schema is None:
        return None
    return resolve_schema(schema, definitions) if definitions else schema


def check_references(
    schema: Any, ptr: str, definitions: dict[str, Any], add: Callable[[str, str], None]
) -> bool:
    """Report every ``$ref`` that is not ``#/definitions/<a defined name>``; True if none."""
    ok = True
    for at, keyword, value in schema_refs(schema, ptr):
        if keyword != "$ref":
            add("'$id' is not allowed in a step contract; use #/definitions/NAME", at)
            ok = False
            continue
        name = ref_target(value)
        if name is None or name not in definitions:
            known = ", ".join(definitions) or "none defined"
            add(f"$ref {str(value)[:80]!r} does not name a definition (#/definitions/NAME; "
                f"known: {known})", at)  # fmt: skip
            ok = False
    return ok


def template_strings(value: Any, ptr: str) -> Iterator[tuple[str, str]]:
    """Every string inside a ``with:`` value (nested lists and mappings too), with its pointer."""
    if isinstance(value, str):
        yield value, ptr
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from template_strings(item, ptr + pointer(str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from template_strings(item, ptr + pointer(index))


def _pointer(error: ValidationError) -> str:
    return pointer(*error.absolute_path)


_BOUNDS = {
    "minimum": ">=",
    "maximum": "<=",
    "exclusiveMinimum": ">",
    "exclusiveMaximum": "<",
    "minLength": "at least {} characters long",
    "maxLength": "at most {} characters long",
    "minItems": "at least {} items",
    "maxItems": "at most {} items",
    "minProperties": "at least {} properties",
    "maxProperties": "at most {} properties",
}


def _violation(error: ValidationError) -> str:
    """What the first violation breaks, in the schema's words only: a step's outputs are
    never quoted back (they could hold whatever the step managed to read); key names are."""
    rule, want = str(error.validator), error.validator_value
    if rule in ("required", "additionalProperties", "propertyNames", "dependentRequired"):
        return error.message  # names keys, not values
    shown = json.dumps(want, ensure_ascii=False)[:120]
    if rule == "type":
        kinds = want if isinstance(want, list) else [want]
        return f"must be of type {' or '.join(map(str, kinds))}"
    if rule in ("enum", "const"):
        return f"must be {'one of ' if rule == 'enum' else ''}{shown}"
    if rule in _BOUNDS:
        bound = _BOUNDS[rule]
        return f"must be {bound.format(want) if '{}' in bound else f'{bound} {want}'}"
    if rule == "pattern":
        return f"must match the pattern {shown}"
    if rule == "format":
        return f"must be a valid {want}"
    return f"does not satisfy the schema's '{rule}'"


def check_contract(
    value: Any,
    schema: dict[str, Any] | None,
    *,
    step: str,
    what: str,
    subject: str = "",
    quote: bool = True,
) -> None:
    """``subject`` names what is checked in messages (default: the step); ``quote=False``
    words violations without the offending value."""
    subject = subject or f"step {step!r}"
    if schema is None:
        return
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise OutputError(
            f"{subject} has an invalid {what}{'s' if what == 'output' else ''} schema: "
            f"{one_line(exc.message, _MAX_MESSAGE)}",
            step=step,
        ) from None
    validator = Draft202012Validator(schema)
    errors = sorted(
        validator.iter_errors(value),
        key=lambda e: (_pointer(e), e.validator or "", e.message),
    )
    if not errors:
        return
    first = errors[0]
    pointer = _pointer(first)
    where = f"{what} {pointer}" if pointer else f"{what}s" if what == "output" else what
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    said = first.message if quote else _violation(first)
    raise OutputError(f"{subject} {where}: {one_line(said, _MAX_MESSAGE)}{more}", step=step)
