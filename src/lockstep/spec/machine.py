"""The JSON state-machine dialect: a second way to write a workflow, run on the same engine.

A document in this dialect is a mapping with ``workflowName`` and a list of ``steps``::

    {"workflowName": "orders", "description": "optional", "startAt": "optional step name",
     "steps": [{"name": "fetch",
                "integrationDetails": {"type": "/vendor/http", "config": {"url": "https://x"},
                                       "inputDefinition": {"$ref": "#/definitions/in"},
                                       "outputDefinition": {"type": "object"}},
                "transitionToStep": null,
                "maxVisits": 10}],
     "definitions": {"in": {"type": "object"}}}

Semantics:

* Execution starts at ``startAt`` or, without it, at the first step. The run's input (its
  params) is the first step's input; each step's output is the next step's input.
* ``integrationDetails.type`` chooses the executor by its last path segment, so
  ``/justworkflowit/noop``, ``noop`` and ``/lockstep/noop`` are the same:

  - ``noop``: the output is the input; it takes no config.
  - ``shell``: config ``{"run": str | [argv...], "env": {NAME: str}?, "timeout": t?}``.
  - ``http``: config ``{"url": "http(s)://...", "method": "POST" (default) | "GET" | "PUT" |
    "PATCH" | "DELETE", "headers": {name: str}?, "timeout": t?}``.

  A timeout is seconds (a number) or a duration string such as ``"30s"``; it must be > 0.
  Every other type (e.g. ``/justworkflowit/aws/lambda``) is rejected.
* ``inputDefinition`` / ``outputDefinition`` (optional) are Draft 2020-12 JSON Schemas,
  inline or ``{"$ref": "#/definitions/<name>"}``. The only references allowed, anywhere,
  are ``#/definitions/<name>`` into the top-level ``definitions``; ``$id`` is not allowed,
  and neither is a ``definitions`` key at the root of a step schema or a definition.
  At load time each step schema becomes self-contained: a schema that is only a ``$ref`` is
  replaced by a copy of the definition, and every definition the result reaches (through
  nested ``$ref``, recursively, cycles included) is attached under ``definitions``, where
  the ``#/definitions/...`` references resolve unchanged. No ``$ref`` left: nothing attached.
* ``transitionToStep`` (required) is a step name, ``null`` (the run ends successfully and
  this step's output is the run's output), or ``{"conditions": [{"if": <CEL>, "next": <step
  name or null>}, ...], "default": <step name or null>}``. Conditions are plain CEL (no
  ``${{ }}``) over ``output`` (this step's output), ``input`` (this step's input),
  ``params`` (the run's input) and ``visits`` (step name -> times it has run so far, this
  visit included); they are tried in order, the first true one wins, and when none is true
  ``default`` (required) is taken.
* Loops are allowed, but a step runs at most ``maxVisits`` times (1..1000, default 10); the
  engine fails a run that would exceed it. Every step must be reachable from the start, and
  from every step some chain of transitions must reach ``null``.
* Step names are unique and match ``^[A-Za-z_][A-Za-z0-9_-]{0,62}$``. ``workflowName`` is
  any non-empty string up to 63 characters; ``name`` is its lockstep form: lowercased, every
  character other than ``a-z``, ``0-9`` and ``-`` replaced by ``-``, leading and trailing
  ``-`` stripped (``MyWorkflow_2`` -> ``myworkflow-2``).
* Unknown keys are errors everywhere except inside JSON Schemas. The file is parsed by the
  safe YAML loader (JSON is YAML, so YAML syntax is accepted too), with its size, depth and
  node caps; every problem is reported at once, located as ``file:line:col``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, cast

from lockstep.errors import SpecError
from lockstep.spec.durations import parse_duration
from lockstep.spec.load import parse_mapping
from lockstep.spec.machine_validate import (
    DEFAULT_MAX_VISITS,
    EXECUTORS,
    executor_of,
    normalise_name,
    validate_machine,
)
from lockstep.spec.schema_refs import resolve_schema
from lockstep.spec.step_kinds import NOOP, SHELL
from lockstep.spec.yamlsafe import MAX_BYTES, Position, nearest_position

__all__ = [
    "DEFAULT_MAX_VISITS",
    "EXECUTORS",
    "MAX_BYTES",
    "Executor",
    "LoadedMachine",
    "MachineStep",
    "Transition",
    "is_machine",
    "load_machine",
    "normalise_name",
]

#: one of ``EXECUTORS``, the dialect's step kinds (``spec.step_kinds``)
Executor = str


@dataclass(frozen=True)
class Transition:
    """Where a step goes next: ``next`` when plain, else ``conditions`` then ``default``.

    ``None`` as a target ends the run successfully."""

    next: str | None = None
    conditions: list[tuple[str, str | None]] = field(default_factory=list)  # (CEL, target)
    default: str | None = None

    @property
    def conditional(self) -> bool:
        return bool(self.conditions)

    def targets(self) -> list[str | None]:
        """Every target this transition can choose, in order, without duplicates."""
        if not self.conditions:
            return [self.next]
        return list(dict.fromkeys([*(t for _, t in self.conditions), self.default]))


@dataclass(frozen=True)
class MachineStep:
    """One step. ``config`` is normalised per executor (see ``load_machine``)."""

    name: str
    executor: Executor
    type: str  # as written, e.g. "/justworkflowit/noop"
    config: dict[str, Any]
    input_schema: dict[str, Any] | None
    output_schema: dict[str, Any] | None
    transition: Transition
    max_visits: int = DEFAULT_MAX_VISITS


@dataclass(frozen=True)
class LoadedMachine:
    """A valid state-machine workflow with what it was loaded from."""

    name: str  # normalised, matches lockstep's workflow name pattern
    workflow_name: str  # as written
    description: str | None
    start: str
    steps: dict[str, MachineStep]  # in file order
    text: str
    file: str
    digest: str  # sha256 hex of the exact bytes
    data: dict[str, Any]  # the parsed document
    positions: dict[str, Position] = field(default_factory=dict)

    def position(self, ptr: str) -> Position:
        """``(line, col)`` of a JSON pointer, or of its nearest parent that was written."""
        return nearest_position(self.positions, ptr)


def is_machine(data: object) -> bool:
    """Whether a parsed document is in this dialect (a ``workflowName`` and a list of steps)."""
    return isinstance(data, dict) and "workflowName" in data and isinstance(data.get("steps"), list)


def load_machine(
    data: str | bytes, file: str = "workflow.json", *, max_bytes: int = MAX_BYTES
) -> LoadedMachine:
    """Parse and validate a state-machine workflow; raise ``SpecError`` listing every problem.

    The step configs are normalised: ``noop`` -> ``{}``; ``shell`` -> ``{"run", "env",
    "timeout"}``; ``http`` -> ``{"url", "method" (upper case), "headers", "timeout"}``, with
    ``env``/``headers`` defaulting to ``{}`` and ``timeout`` to ``None`` (else seconds).
    """
    text, raw, doc = parse_mapping(
        data, file, max_bytes, "a state-machine workflow must be a mapping with "
        "'workflowName' and 'steps'",
    )  # fmt: skip
    diagnostics = validate_machine(doc.data, doc.positions, file)
    if diagnostics:
        diagnostics.sort(key=lambda d: (d.line == 0, d.line, d.col))
        raise SpecError(diagnostics)
    document: dict[str, Any] = doc.data
    definitions: dict[str, Any] = document.get("definitions") or {}
    steps = {
        step["name"]: _build_step(step, definitions) for step in cast(list[Any], document["steps"])
    }
    start = document.get("startAt") or next(iter(steps))
    return LoadedMachine(
        name=normalise_name(document["workflowName"]),
        workflow_name=document["workflowName"],
        description=document.get("description"),
        start=start,
        steps=steps,
        text=text,
        file=file,
        digest=hashlib.sha256(raw).hexdigest(),
        data=document,
        positions=doc.positions,
    )


def _build_step(step: dict[str, Any], definitions: dict[str, Any]) -> MachineStep:
    details: dict[str, Any] = step["integrationDetails"]
    executor = executor_of(details["type"])
    schemas = [
        None if details.get(key) is None else resolve_schema(details[key], definitions)
        for key in ("inputDefinition", "outputDefinition")
    ]
    return MachineStep(
        name=step["name"],
        executor=executor,
        type=details["type"],
        config=_config(executor, details.get("config") or {}),
        input_schema=schemas[0],
        output_schema=schemas[1],
        transition=_transition(step["transitionToStep"]),
        max_visits=step.get("maxVisits", DEFAULT_MAX_VISITS),
    )


def _config(executor: Executor, config: dict[str, Any]) -> dict[str, Any]:
    if executor == NOOP.name:
        return {}
    timeout = None if config.get("timeout") is None else parse_duration(config["timeout"])
    if executor == SHELL.name:
        run = config["run"]
        return {
            "run": list(run) if isinstance(run, list) else run,
            "env": dict(config.get("env") or {}),
            "timeout": timeout,
        }
    return {
        "url": config["url"],
        "method": str(config.get("method") or "POST").upper(),
        "headers": dict(config.get("headers") or {}),
        "timeout": timeout,
    }


def _transition(value: Any) -> Transition:
    if not isinstance(value, dict):
        return Transition(next=value)
    return Transition(
        conditions=[(c["if"], c["next"]) for c in value["conditions"]],
        default=value["default"],
    )
