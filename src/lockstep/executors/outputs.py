"""Step outputs: what a step wrote to ``$LOCKSTEP_OUTPUTS``, parsed and checked.

The file holds either one JSON object (its values keep their JSON types) or ``key=value``
lines. In the line form a value is the string as written (``version=1.10`` stays ``"1.10"``)
unless the step's ``outputs`` schema declares another type for that key: then it is converted
like a ``-p`` param (a union that allows a string keeps the string), and a value that does not
convert is an error naming the key. A key set twice keeps its last value (so a step can simply
append).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from lockstep.executors import confined
from lockstep.outputs_by_reference import REF, reserved_key
from lockstep.spec.contracts import OutputError, check_contract
from lockstep.spec.schema_refs import ref_target
from lockstep.spec.typed_text import STRICT_ORDER, as_type, declared_types, loads_json

DEFAULT_MAX_BYTES = 1024 * 1024
#: '-' too, as in GitHub's outputs: such a key reads as steps.<id>.outputs['a-b'] in CEL
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")
_NAME = "$LOCKSTEP_OUTPUTS"


def human_size(n: int) -> str:
    return f"{n // 1024} KiB" if n < 1024 * 1024 else f"{n / (1024 * 1024):g} MiB"


def read_outputs(
    path: Path, schema: dict[str, Any] | None = None, *, max_bytes: int = DEFAULT_MAX_BYTES
) -> dict[str, Any]:
    """Parse the outputs file, typing ``key=value`` lines by ``schema`` (the step's
    ``outputs`` contract); a missing or blank file means no outputs."""
    try:
        # a hard link could be another name of a file outside (the step's user may link one)
        data = confined.read_file(path.parent, path.name, max_bytes, sole=True)
    except FileNotFoundError:
        return {}
    except confined.ConfinedError:
        raise OutputError(
            f"{_NAME} must be a regular file in its directory (not a link leading elsewhere, "
            "a hard link, a FIFO or a device); write the outputs into the file itself"
        ) from None
    if len(data) > max_bytes:
        raise OutputError(
            f"{_NAME} is larger than {human_size(max_bytes)}; "
            "write large results to a file and declare it as an artifact"
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OutputError(f"{_NAME} is not UTF-8 (byte {exc.start}); write text only") from None
    text = text.removeprefix("\ufeff")
    if not text.strip():
        return {}
    if text.lstrip().startswith("{"):
        return _read_json(text)
    return _read_lines(text, schema or {})


def _read_json(text: str) -> dict[str, Any]:
    try:
        value = loads_json(text)
    except json.JSONDecodeError as exc:
        raise OutputError(
            f"{_NAME} line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    except ValueError:
        raise OutputError(
            f"{_NAME}: invalid JSON: NaN, Infinity, a number out of range, or nested too deeply"
        ) from None
    if not isinstance(value, dict):  # pragma: no cover - text starts with '{'
        raise OutputError(f"{_NAME} must hold a JSON object")
    return value


def _read_lines(text: str, schema: dict[str, Any]) -> dict[str, Any]:
    outputs: dict[str, Any] = {}
    # split("\n") rather than splitlines(): a value may legitimately contain \f or \u2028.
    for number, line in enumerate(text.split("\n"), start=1):
        line = line.removesuffix("\r")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise OutputError(f"{_NAME} line {number}: expected key=value")
        if not _KEY.fullmatch(key):
            raise OutputError(
                f"{_NAME} line {number}: invalid key; use letters, digits, "
                "'_' and '-', starting with a letter or '_'"
            )
        try:
            outputs[key] = _typed(value, declared_types(_property(schema, key)))
        except ValueError as exc:
            raise OutputError(
                f"{_NAME} line {number}: output '{key}' {exc} (its type in the step's outputs "
                "schema)"
            ) from None
    return outputs


def _property(schema: dict[str, Any], key: str) -> Any:
    """The subschema ``key`` is checked against: its property, else additionalProperties,
    with a ``#/definitions/NAME`` reference followed (the plan attaches them)."""
    properties = schema.get("properties")
    found = properties.get(key) if isinstance(properties, dict) else None
    if found is None:
        found = schema.get("additionalProperties")
    definitions = schema.get("definitions")
    for _ in range(8):  # a chain of references, not a cycle
        name = ref_target(found.get("$ref")) if isinstance(found, dict) else None
        if name is None or not isinstance(definitions, dict):
            break
        found = definitions.get(name)
    return found


def _typed(text: str, kinds: list[str]) -> Any:
    """The string as written, unless the schema allows only other types: then the first of
    them (in ``STRICT_ORDER``) it converts to; ``ValueError`` saying what it must be."""
    ordered = [k for k in STRICT_ORDER if k in kinds]
    if "string" in kinds or not ordered:
        return text
    problems: list[str] = []
    for kind in ordered:
        try:
            return as_type(kind, text)
        except ValueError as exc:
            problems.append(str(exc))
    raise ValueError(problems[0] if len(problems) == 1 else f"must be one of: {', '.join(ordered)}")


def check_outputs(
    outputs: dict[str, Any], schema: dict[str, Any] | None, *, step: str, handed_on: bool = False
) -> None:
    """Raise ``OutputError`` naming the step and the JSON pointer of the first violation
    (never quoting the value). A key reserved for lockstep's own markers is refused anywhere
    in the outputs, schema or not: a step cannot forge an output stored by reference.
    ``handed_on``: the outputs are the step's input as the engine gave it (a ``noop``), whose
    markers are the engine's own."""
    if not handed_on and (where := reserved_key(outputs)) is not None:
        raise OutputError(
            f"step {step!r} output {where or '/'}: the key '{REF}' is reserved for lockstep's "
            "outputs stored by reference; rename it",
            step=step,
        )
    check_contract(outputs, schema, step=step, what="output", quote=False)


def check_input(value: Any, schema: dict[str, Any] | None, *, step: str) -> None:
    """The same check for what a step is given, before it starts."""
    check_contract(value, schema, step=step, what="input")
