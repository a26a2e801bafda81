"""Load a ``workflow.yaml``: safe YAML, then the models, then the semantic checks.

Every phase that can run does, and all their diagnostics are raised together, sorted by
position, so a user fixes a file in one round trip instead of one error at a time.
"""

from __future__ import annotations

import hashlib
import os
import stat
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from lockstep.errors import Diagnostic, SpecError
from lockstep.spec.blueprint_files import (
    BlueprintFiles,
    BlueprintUse,
    PublishedBlueprints,
    uses_blueprints,
    working_copy,
)
from lockstep.spec.hints import did_you_mean
from lockstep.spec.models import WorkflowSpec
from lockstep.spec.validate import validate_data
from lockstep.spec.yamlsafe import (
    MAX_BYTES,
    Position,
    YamlDocument,
    decode,
    nearest_position,
    parse_text,
    pointer,
)

DEFAULT_FILENAME = "workflow.yaml"

_NOUNS = {
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "a boolean",
    "bool_parsing": "a boolean",
}
# what a whole field should be, where the generic "a list" would not help
_EXPECTED = {
    "needs": "a list of step ids",
    "run": "a string (a bash script) or a list of strings (an argv)",
    "steps": "a mapping of step id to step",
    "finally": "a mapping of step id to step",
    "env": "a mapping of NAME: value",
    "params": "a mapping (a JSON Schema)",
    "if": "an expression string or true/false",
    "retry": "a mapping such as {attempts: 3, backoff: 2s}",
    "defaults": "a mapping",
    "http": "a mapping such as {url: 'https://example.org/x', method: POST}",
}
_BOUNDS = {
    "greater_than": ("gt", ">"),
    "greater_than_equal": ("ge", ">="),
    "less_than": ("lt", "<"),
    "less_than_equal": ("le", "<="),
}
_ID_RULE = "use letters, digits, '_' and '-', starting with a letter or '_'"
_NAME_RULE = "use letters, digits and '_', not starting with a digit"


@dataclass(frozen=True)
class LoadedSpec:
    """A valid workflow with what it was loaded from and where each part was written."""

    spec: WorkflowSpec
    text: str
    file: str
    digest: str  # sha256 hex of the exact bytes
    positions: dict[str, Position]
    value_positions: dict[str, Position] = field(default_factory=dict)
    #: the blueprint files expanded into it (none: ``text`` is the file as written)
    blueprints: tuple[BlueprintUse, ...] = ()

    def position(self, ptr: str) -> Position:
        """``(line, col)`` of a JSON pointer, or of its nearest parent that was written."""
        return nearest_position(self.positions, ptr)


def parse_mapping(
    data: str | bytes, file: str, max_bytes: int, expected: str
) -> tuple[str, bytes, YamlDocument]:
    """Decode and safely parse a document whose top level must be a mapping; returns its text,
    its exact bytes (for the digest) and the parsed document with positions."""
    text = decode(data, file, max_bytes=max_bytes)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    doc = parse_text(text, file)
    if not isinstance(doc.data, dict):
        line, col = doc.value_positions.get("", (1, 1))
        raise SpecError([Diagnostic(f"the top level of {expected}", file, line, col)])
    return text, raw, doc


WORKFLOW_SHAPE = "a workflow must be a mapping with keys such as 'name' and 'steps'"


def load_spec(
    data: str | bytes,
    file: str = "<input>",
    *,
    max_bytes: int = MAX_BYTES,
    files: BlueprintFiles | None = None,
    path: str | None = None,
    published: PublishedBlueprints | None = None,
    owner: str | None = None,
    published_later: bool = False,
) -> LoadedSpec:
    """Parse and validate a workflow; raise ``SpecError`` listing every problem found.

    With ``files`` (its repository) and ``path`` (its place there), the blueprints it uses are
    expanded first (``spec.blueprints``): the result's ``text`` is then the expanded workflow.
    ``published`` resolves ``uses: DEF@SELECTOR`` (in the server; ``owner``: the definition
    being loaded, which may not use itself); ``published_later`` leaves them as written, for
    the server to expand (the CLI)."""
    text, raw, doc = parse_mapping(data, file, max_bytes, WORKFLOW_SHAPE)
    sources = files is not None or published is not None
    if sources and uses_blueprints(doc.data):
        from lockstep.spec.blueprints import load_expanded  # only files that use blueprints

        return load_expanded(
            doc,
            file,
            path or file,
            files,
            max_bytes,
            published=published,
            owner=owner,
            published_later=published_later,
        )
    spec, diagnostics = check_data(doc.data, doc.positions, file, published_later=published_later)
    if diagnostics or spec is None:
        raise SpecError(sort_diagnostics(diagnostics))
    return LoadedSpec(
        spec=spec,
        text=text,
        file=file,
        digest=hashlib.sha256(raw).hexdigest(),
        positions=doc.positions,
        value_positions=doc.value_positions,
    )


def check_data(
    data: Any, positions: dict[str, Position], file: str, *, published_later: bool = False
) -> tuple[WorkflowSpec | None, list[Diagnostic]]:
    """The model of parsed workflow data and every problem found in it (models, then the
    semantic checks; ``published_later``: a ``uses: DEF@SELECTOR`` left for the server)."""
    spec: WorkflowSpec | None = None
    model_diagnostics: list[Diagnostic] = []
    try:
        spec = WorkflowSpec.model_validate(data)
    except ValidationError as err:
        model_diagnostics = translate_errors(err, data, positions, file)
    seen = {d.path for d in model_diagnostics}
    return spec, model_diagnostics + [
        d
        for d in validate_data(data, positions, file, published_later=published_later)
        if d.path not in seen
    ]


def sort_diagnostics(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diagnostics, key=lambda d: (d.line == 0, d.file, d.line, d.col))


#: what a directory given for a workflow file is searched for, in order
DIRECTORY_FILES = (DEFAULT_FILENAME, "workflow.yml", "workflow.json")


def load_spec_file(path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES) -> LoadedSpec:
    """Load a workflow file, or ``workflow.yaml`` inside a directory, expanding the blueprints
    it uses from its repository (the working copy around it)."""
    raw, name = read_workflow_file(path, max_bytes=max_bytes)
    files, where = working_copy(name, max_bytes=max_bytes)
    return load_spec(raw, name, max_bytes=max_bytes, files=files, path=where)


def read_workflow_file(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_BYTES
) -> tuple[bytes, str]:
    """The bytes of a workflow file (or of the first of ``DIRECTORY_FILES`` in a directory)
    and the name to report it by; reads at most ``max_bytes``."""
    target = Path(path)
    if target.is_dir():
        found = [target / n for n in DIRECTORY_FILES if (target / n).is_file()]
        target = found[0] if found else target / DEFAULT_FILENAME
    name = str(target)
    try:
        with target.open("rb") as handle:
            info = os.fstat(handle.fileno())
            if stat.S_ISREG(info.st_mode) and info.st_size > max_bytes:
                size = f"{info.st_size} bytes"
            else:
                raw = handle.read(max_bytes + 1)  # bounded: the file may be a pipe or /dev/zero
                size = "" if len(raw) <= max_bytes else f"more than {max_bytes} bytes"
    except OSError as err:
        raise SpecError([Diagnostic(f"cannot read {name}: {err.strerror or err}", name)]) from None
    if size:
        raise SpecError(
            [Diagnostic(f"file is too large ({size}; the limit is {max_bytes} bytes)", name)]
        )
    return raw, name


# --------------------------------------------------------------------------- model errors


def _walk(data: Any, loc: Sequence[int | str], kind: str) -> tuple[list[str | int], bool]:
    """The real keys in a pydantic ``loc`` (union member tags dropped), and whether the
    error is about a mapping key rather than a value."""
    parts: list[str | int] = []
    current = data
    key_error = False
    for i, element in enumerate(loc):
        if element == "[key]":
            key_error = True
            continue
        if isinstance(current, dict) and isinstance(element, str):
            found = element in current
        else:
            found = (
                isinstance(current, list) and isinstance(element, int) and element < len(current)
            )
        if found:
            parts.append(element)
            current = current[element]
        elif kind == "missing" and i == len(loc) - 1:
            parts.append(element)
    return parts, key_error


def translate_errors(
    err: ValidationError,
    data: Any,
    positions: dict[str, Position],
    file: str,
    *,
    root: type[BaseModel] = WorkflowSpec,
) -> list[Diagnostic]:
    """A model's validation errors as diagnostics at their positions (``root``: the model
    validated, for key suggestions)."""
    groups: dict[tuple[str, bool], list[tuple[list[str | int], dict[str, Any]]]] = {}
    for error in err.errors(include_url=False):
        parts, key_error = _walk(data, error["loc"], error["type"])
        groups.setdefault((pointer(*parts), key_error), []).append((parts, dict(error)))
    diagnostics: list[Diagnostic] = []
    for (ptr, key_error), entries in groups.items():
        # a union reports every member; a deeper error says more than "not a string"
        deeper = any(p.startswith(ptr + "/") for p, _ in groups)
        kept = [e for _, e in entries if not (deeper and e["type"] in _NOUNS)]
        if not kept:
            continue
        message = _message(entries[0][0], kept, key_error, root)
        line, col = nearest_position(positions, ptr)
        diagnostics.append(Diagnostic(message, file, line, col, ptr))
    return diagnostics


_RESOURCE_RULE = "lowercase letters, digits and '-', starting with a letter or digit"


def _message(
    parts: list[str | int], errors: list[dict[str, Any]], key_error: bool, root: type[BaseModel]
) -> str:
    first = errors[0]
    kind = first["type"]
    name = str(parts[-1]) if parts else ""
    parent = str(parts[-2]) if len(parts) > 1 else ""
    what = _label(parts)
    if kind == "missing":
        return f"missing required key '{name}' {_where(parts[:-1])}"
    if kind == "extra_forbidden":
        model = _model_at(parts[:-1], root)
        aliases = [f.alias or n for n, f in model.model_fields.items()] if model else []
        return f"unknown key '{name}'{did_you_mean(name, aliases)}"
    if all(e["type"] in _NOUNS for e in errors):
        is_field = bool(parts) and _model_at(parts[:-1], root) is not None
        expected = _EXPECTED.get(name) if is_field else None
        if is_field and name == "outputs":
            expected = "a mapping (a JSON Schema)" if len(parts) > 1 else "a mapping of name: value"
        if not is_field and parent == "env":
            what = f"env value '{name}'"
        nouns = list(dict.fromkeys(_NOUNS[e["type"]] for e in errors))
        if "a number" in nouns and "an integer" in nouns:
            nouns.remove("an integer")
        expected = (
            expected or ", ".join(nouns[:-1]) + (" or " if len(nouns) > 1 else "") + nouns[-1]
        )
        return f"{what} must be {expected}, got {_type_name(first.get('input'))}"
    if kind == "string_pattern_mismatch":
        value = first.get("input")
        if key_error and len(parts) == 2 and parent in ("steps", "finally"):
            return f"invalid step id '{value}'; {_ID_RULE}"
        if key_error and parent == "writes":
            return f"invalid resource name '{value}' in 'writes'; {_RESOURCE_RULE}"
        if len(parts) == 2 and parent == "resources" and not key_error:
            return (
                f"resources.{name}: {value!r} is not a resource reference; write NAME or "
                f"NAME@N (a version number); names: {_RESOURCE_RULE}"
            )
        if key_error:
            noun = {"env": "env name", "outputs": "output name"}.get(parent, "name")
            return f"invalid {noun} '{value}'; {_NAME_RULE}"
        if parts == ["name"]:
            return (
                f"invalid workflow name '{value}'; use lowercase letters, digits and '-', "
                "starting with a letter or digit"
            )
        if parent == "needs":
            return f"'{value}' in 'needs' is not a valid step id; {_ID_RULE}"
        if name == "workflow":
            return (
                f"'workflow' {value!r} must name a definition of this project, e.g. etl or "
                "etl@$LIVE (then @version, @$TAG, @branch, @tag or @commit; no expressions), "
                "or a workflow file of the same repository, e.g. ./etl.yaml"
            )
        return f"{what} {value!r} does not match {first.get('ctx', {}).get('pattern')}"
    ctx = first.get("ctx") or {}
    if kind == "string_too_long":
        return f"{what} is too long (at most {ctx.get('max_length')} characters)"
    if kind == "too_short":
        if parts == ["steps"]:
            return "'steps' must contain at least one step"
        return f"{what} must not be empty"
    if kind in _BOUNDS:
        key, op = _BOUNDS[kind]
        return f"{what} must be {op} {ctx.get(key)}, got {first.get('input')!r}"
    if kind == "value_error":
        detail = str(first["msg"]).removeprefix("Value error, ")
        return f"invalid {what}: {detail}"
    msg = str(first["msg"])
    return f"{what}: {msg[:1].lower()}{msg[1:]}"


def _label(parts: list[str | int]) -> str:
    if not parts:
        return "the workflow"
    if isinstance(parts[-1], int):
        return f"item {parts[-1]} of '{parts[-2]}'" if len(parts) > 1 else f"item {parts[-1]}"
    return f"'{parts[-1]}'"


def _where(parts: list[str | int]) -> str:
    if not parts:
        return "at the top level"
    if len(parts) >= 2 and parts[0] in ("steps", "finally"):
        step = f"{'finally ' if parts[0] == 'finally' else ''}step '{parts[1]}'"
        rest = ".".join(str(p) for p in parts[2:])
        return f"in '{rest}' of {step}" if rest else f"in {step}"
    return f"in '{'.'.join(str(p) for p in parts)}'"


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _model_at(parts: Sequence[str | int], root: type[BaseModel]) -> type[BaseModel] | None:
    """The model that describes the mapping at ``parts``, for key suggestions."""
    current: Any = root
    for part in parts:
        if isinstance(current, type) and issubclass(current, BaseModel):
            fields = {f.alias or n: f for n, f in current.model_fields.items()}
            found = fields.get(str(part))
            if found is None:
                return None
            current = _unwrap(found.annotation)
        elif typing.get_origin(current) in (dict, list):
            current = _unwrap(typing.get_args(current)[-1])
        else:
            return None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``X | None`` down to the part that can hold keys."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        options = [_unwrap(a) for a in typing.get_args(annotation) if a is not type(None)]
        for option in options:
            if (isinstance(option, type) and issubclass(option, BaseModel)) or typing.get_origin(
                option
            ) in (dict, list):
                return option
        return options[0] if options else None
    return annotation
