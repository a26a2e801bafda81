"""Step outputs: what a step wrote to ``$LOCKSTEP_OUTPUTS``, parsed and checked.

The file holds either one JSON object or ``key=value`` lines. In the line form a value that is
valid JSON keeps its JSON type (``n=3`` is the integer 3), anything else is the verbatim string,
and a key set twice keeps its last value (so a step can simply append).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError

from lockstep.errors import ExecutionError

DEFAULT_MAX_BYTES = 1024 * 1024
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NAME = "$LOCKSTEP_OUTPUTS"
_MAX_MESSAGE = 300


class OutputError(ExecutionError):
    """A step's outputs are unreadable or do not match its ``outputs`` schema."""


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is out of range")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not valid JSON")


def _loads(text: str) -> Any:
    # NaN, Infinity and 1e999 are not JSON; letting them through would break every consumer
    # that serialises outputs again (Temporal payloads, the API).
    return json.loads(text, parse_float=_finite_float, parse_constant=_no_constant)


def _human(n: int) -> str:
    return f"{n // 1024} KiB" if n < 1024 * 1024 else f"{n / (1024 * 1024):g} MiB"


def read_outputs(path: Path, *, max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Parse the outputs file; a missing or blank file means no outputs."""
    try:
        with path.open("rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        return {}
    if len(data) > max_bytes:
        raise OutputError(
            f"{_NAME} is larger than {_human(max_bytes)}; "
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
    return _read_lines(text)


def _read_json(text: str) -> dict[str, Any]:
    try:
        value = _loads(text)
    except json.JSONDecodeError as exc:
        raise OutputError(
            f"{_NAME} line {exc.lineno} column {exc.colno}: invalid JSON: {exc.msg}"
        ) from None
    except ValueError as exc:
        raise OutputError(f"{_NAME}: invalid JSON: {exc}") from None
    except RecursionError:
        raise OutputError(f"{_NAME}: JSON is nested too deeply") from None
    if not isinstance(value, dict):  # pragma: no cover - text starts with '{'
        raise OutputError(f"{_NAME} must hold a JSON object")
    return value


def _read_lines(text: str) -> dict[str, Any]:
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
                f"{_NAME} line {number}: invalid key {key[:80]!r}; use letters, digits and "
                "'_', not starting with a digit"
            )
        outputs[key] = _typed(value)
    return outputs


def _typed(value: str) -> Any:
    try:
        return _loads(value)
    except (ValueError, RecursionError):
        return value


def _pointer(error: ValidationError) -> str:
    return "".join(
        "/" + str(part).replace("~", "~0").replace("/", "~1") for part in error.absolute_path
    )


def _one_line(message: str) -> str:
    message = " ".join(message.split())
    return message if len(message) <= _MAX_MESSAGE else message[: _MAX_MESSAGE - 3] + "..."


def check_outputs(outputs: dict[str, Any], schema: dict[str, Any] | None, *, step: str) -> None:
    """Raise ``OutputError`` naming the step and the JSON pointer of the first violation."""
    check_contract(outputs, schema, step=step, what="output")


def check_input(value: Any, schema: dict[str, Any] | None, *, step: str) -> None:
    """The same check for what a step is given, before it starts."""
    check_contract(value, schema, step=step, what="input")


def check_contract(
    value: Any, schema: dict[str, Any] | None, *, step: str, what: str, subject: str = ""
) -> None:
    """``subject`` names what is checked in messages (default: the step)."""
    subject = subject or f"step {step!r}"
    if schema is None:
        return
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise OutputError(
            f"{subject} has an invalid {what}{'s' if what == 'output' else ''} schema: "
            f"{_one_line(exc.message)}",
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
    raise OutputError(f"{subject} {where}: {_one_line(first.message)}{more}", step=step)
