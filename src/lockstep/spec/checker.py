"""What both dialects' semantic checks share: diagnostics at the position of the offending key,
unknown keys with a hint, values of the wrong type, and JSON Schemas that do not compile.

The checks read the plain parsed data defensively and report every problem at once.
"""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from lockstep.errors import Diagnostic
from lockstep.spec.hints import did_you_mean, one_line
from lockstep.spec.yamlsafe import Position, escape_pointer, nearest_position, pointer


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "a mapping"


class Checker:
    """Collects diagnostics for one file; a dialect's checker adds its own checks."""

    def __init__(self, positions: dict[str, Position], file: str) -> None:
        self.positions = positions
        self.file = file
        self.diagnostics: list[Diagnostic] = []

    def add(self, message: str, ptr: str) -> None:
        line, col = nearest_position(self.positions, ptr)
        self.diagnostics.append(Diagnostic(message, self.file, line, col, ptr))

    def keys(self, node: dict[str, Any], allowed: tuple[str, ...], ptr: str, where: str) -> None:
        for key in node:
            if key not in allowed:
                hint = did_you_mean(key, allowed) or (
                    f"; allowed: {', '.join(allowed)}" if allowed else ""
                )
                self.add(f"unknown key '{key}' {where}{hint}", f"{ptr}/{escape_pointer(key)}")

    def expect(
        self,
        node: dict[str, Any],
        key: str,
        kind: type,
        what: str,
        ptr: str,
        where: str,
        *,
        nullable: bool = False,
    ) -> Any:
        """``node[key]`` when present with the right type; report a wrong type (null
        included unless ``nullable``) and return None."""
        if key not in node or (nullable and node[key] is None):
            return None
        value = node[key]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            self.add(f"'{key}' {where} must be {what}, got {type_name(value)}", f"{ptr}/{key}")
            return None
        return value

    def schema_compiles(self, schema: dict[str, Any], ptr: str, what: str) -> bool:
        """Whether ``schema`` is a valid JSON Schema; else report where it is not."""
        try:
            Draft202012Validator.check_schema(schema)
        except SchemaError as err:
            self.add(
                f"{what} is not a valid JSON Schema: {one_line(err.message)}",
                ptr + pointer(*err.path),
            )
            return False
        return True
