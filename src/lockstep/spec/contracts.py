"""Typed step contracts in ``workflow.yaml``: ``input`` (what ``with:`` must hold) and
``outputs`` JSON Schemas, inline or ``{$ref: '#/definitions/NAME'}`` into the top-level
``definitions`` map, which the state-machine dialect shares."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from lockstep.spec.machine_validate import ref_target, resolve_schema, schema_refs
from lockstep.spec.yamlsafe import pointer

CONTRACTS = ("input", "outputs")


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
