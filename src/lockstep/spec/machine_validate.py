"""Checks of the JSON state-machine dialect (the format is described in ``spec.machine``).

Like ``spec.validate`` they read the plain parsed data defensively and report every problem
at once, each at the position of the offending key (``spec.checker``); the transitions and
the graph they make are checked in ``spec.machine_transitions``. The helpers that both the
checks and the loader need (executor names, name normalisation) live here too.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from lockstep.errors import Diagnostic
from lockstep.spec.checker import type_name
from lockstep.spec.durations import parse_duration
from lockstep.spec.hints import did_you_mean
from lockstep.spec.machine_transitions import TransitionChecker
from lockstep.spec.names import ENV_NAME_PATTERN
from lockstep.spec.schema_refs import REF_PREFIX, ref_target, schema_refs
from lockstep.spec.step_kinds import DIALECT_EXECUTORS, HTTP, HTTP_METHODS, KINDS, NOOP, SHELL
from lockstep.spec.yamlsafe import Position, escape_pointer, pointer

EXECUTORS = DIALECT_EXECUTORS
STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,62}")
DEFAULT_MAX_VISITS = 10
MAX_VISITS_LIMIT = 1000

TOP_KEYS = ("workflowName", "description", "startAt", "steps", "definitions")
STEP_KEYS = ("name", "integrationDetails", "transitionToStep", "maxVisits")
DETAIL_KEYS = ("type", "config", "inputDefinition", "outputDefinition")
CONFIG_KEYS: dict[str, tuple[str, ...]] = {
    name: kind.config_keys for name, kind in KINDS.items() if kind.config_keys is not None
}
_ENV_NAME = re.compile(ENV_NAME_PATTERN)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def executor_of(type_: str) -> str:
    """The executor a ``type`` names: its last path segment (``/x/y/http`` -> ``http``)."""
    return type_.rsplit("/", 1)[-1]


def normalise_name(name: str) -> str:
    """A lockstep workflow name for a dialect ``workflowName``: ``MyFlow_2`` -> ``myflow-2``."""
    return re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")


def validate_machine(
    data: dict[str, Any], positions: dict[str, Position], file: str = "<input>"
) -> list[Diagnostic]:
    """Every problem of a state-machine document, in the order found."""
    return _Checker(data, positions, file).run()


class _Checker(TransitionChecker):
    def __init__(self, data: dict[str, Any], positions: dict[str, Position], file: str):
        super().__init__(positions, file)
        self.data = data
        raw_steps = data.get("steps")
        self.steps: list[Any] = raw_steps if isinstance(raw_steps, list) else []
        defs = data.get("definitions")
        self.definitions: dict[str, Any] = defs if isinstance(defs, dict) else {}

    def run(self) -> list[Diagnostic]:
        data = self.data
        self.keys(data, TOP_KEYS, "", "at the top level")
        self._check_name()
        self.expect(data, "description", str, "a string", "", "at the top level")
        self._check_definitions()
        if "steps" not in data:
            self.add("missing required key 'steps' at the top level", "/steps")
        elif not isinstance(data["steps"], list):
            self.add(f"'steps' must be a list of steps, got {type_name(data['steps'])}", "/steps")
        elif not data["steps"]:
            self.add("'steps' must contain at least one step", "/steps")
        self._collect_names()
        for i, step in enumerate(self.steps):
            if isinstance(step, dict):
                self._check_step(i, step)
        start = self._check_start()
        if start is not None:
            self.check_graph(start)
        return self.diagnostics

    # -- top level

    def _check_name(self) -> None:
        name = self.data.get("workflowName")
        if "workflowName" not in self.data:
            self.add("missing required key 'workflowName' at the top level", "/workflowName")
        elif not isinstance(name, str):
            self.add(f"'workflowName' must be a string, got {type_name(name)}", "/workflowName")
        elif not 0 < len(name) <= 63:
            self.add("'workflowName' must be 1 to 63 characters long", "/workflowName")
        elif not normalise_name(name):
            self.add(f"'workflowName' {name!r} needs at least one letter or digit", "/workflowName")

    def _check_definitions(self) -> None:
        defs = self.data.get("definitions")
        if defs is None:
            return
        if not isinstance(defs, dict):
            self.add(f"'definitions' must be a mapping, got {type_name(defs)}", "/definitions")
            return
        for name, schema in defs.items():
            self._check_schema(schema, pointer("definitions", name), f"definition '{name}'")

    def _check_start(self) -> str | None:
        start = self.expect(self.data, "startAt", str, "a step name", "", "at the top level")
        if start is None:
            first = self.steps[0] if self.steps else None
            name = first.get("name") if isinstance(first, dict) else None
            return name if isinstance(name, str) and name in self.index else None
        if start not in self.index:
            self.add(
                f"'startAt' names unknown step '{start}'{did_you_mean(start, self.index)}",
                "/startAt",
            )
            return None
        return str(start)

    # -- steps

    def _collect_names(self) -> None:
        for i, step in enumerate(self.steps):
            ptr = pointer("steps", i)
            if not isinstance(step, dict):
                self.add(f"step {i + 1} must be a mapping, got {type_name(step)}", ptr)
                continue
            name = step.get("name")
            if "name" not in step:
                self.add(f"missing required key 'name' in step {i + 1}", f"{ptr}/name")
            elif not isinstance(name, str):
                self.add(
                    f"'name' of step {i + 1} must be a string, got {type_name(name)}",
                    f"{ptr}/name",
                )
            elif name in self.index:
                self.add(
                    f"duplicate step name '{name}'; step {self.index[name] + 1} has it already",
                    f"{ptr}/name",
                )
            else:
                if not STEP_NAME.fullmatch(name):
                    self.add(
                        f"invalid step name {name!r}; use up to 63 letters, digits, '_' and "
                        "'-', starting with a letter or '_'",
                        f"{ptr}/name",
                    )
                self.index[name] = i  # even when invalid: transitions to it are not unknown

    def _check_step(self, i: int, step: dict[str, Any]) -> None:
        ptr = pointer("steps", i)
        name = step.get("name")
        owner = name if isinstance(name, str) and self.index.get(name) == i else None
        where = f"in step '{owner}'" if owner is not None else f"in step {i + 1}"
        self.keys(step, STEP_KEYS, ptr, where)
        visits = self.expect(step, "maxVisits", int, "an integer", ptr, where)
        if visits is not None and not 1 <= visits <= MAX_VISITS_LIMIT:
            self.add(
                f"'maxVisits' {where} must be between 1 and {MAX_VISITS_LIMIT}, got {visits}",
                f"{ptr}/maxVisits",
            )
        details = step.get("integrationDetails")
        if "integrationDetails" not in step:
            self.add(
                f"missing required key 'integrationDetails' {where}", f"{ptr}/integrationDetails"
            )
        elif not isinstance(details, dict):
            self.add(
                f"'integrationDetails' {where} must be a mapping, got {type_name(details)}",
                f"{ptr}/integrationDetails",
            )
        else:
            self._check_details(details, f"{ptr}/integrationDetails", where)
        self.check_transition(step, ptr, where, owner)

    def _check_details(self, details: dict[str, Any], ptr: str, where: str) -> None:
        self.keys(details, DETAIL_KEYS, ptr, where)
        for key in ("inputDefinition", "outputDefinition"):
            if key in details:
                self._check_step_schema(details[key], f"{ptr}/{key}", f"'{key}' {where}")
        type_ = self.expect(details, "type", str, "a string", ptr, where)
        if "type" not in details:
            self.add(f"missing required key 'type' in 'integrationDetails' {where}", f"{ptr}/type")
        if type_ is None:
            return
        executor = executor_of(type_)
        if executor not in EXECUTORS:
            known = ", ".join(f"'{e}'" for e in EXECUTORS)
            self.add(
                f"unknown executor type '{type_}' {where}; known executors: {known} (chosen by "
                f"the last path segment, e.g. '/lockstep/http'){did_you_mean(executor, EXECUTORS)}",
                f"{ptr}/type",
            )
            return
        config = self.expect(details, "config", dict, "a mapping", ptr, where, nullable=True)
        needed = KINDS[executor].required
        if needed is not None and details.get("config") is None:
            self.add(
                f"missing required key 'config' {where}: the {executor} executor needs {needed}",
                f"{ptr}/config",
            )
        if config is not None:
            self._check_config(executor, config, f"{ptr}/config", f"in 'config' {where}")

    def _check_config(self, executor: str, config: dict[str, Any], ptr: str, where: str) -> None:
        allowed = CONFIG_KEYS[executor]
        if executor == NOOP.name and config:
            where += " (the noop executor takes no config)"
        self.keys(config, allowed, ptr, where)
        if "timeout" in config and "timeout" in allowed:
            try:
                if parse_duration(config["timeout"]) <= 0:
                    raise ValueError("a timeout must be more than 0 seconds")
            except ValueError as err:
                self.add(f"invalid 'timeout' {where}: {err}", f"{ptr}/timeout")
        if executor == SHELL.name:
            run = config.get("run")
            if "run" not in config:
                self.add(f"missing required key 'run' {where}", f"{ptr}/run")
            elif isinstance(run, str) and not run.strip():
                self.add(f"'run' {where} must not be empty", f"{ptr}/run")
            elif not isinstance(run, str) and not (
                isinstance(run, list) and run and all(isinstance(a, str) for a in run)
            ):
                self.add(
                    f"'run' {where} must be a string (a bash script) or a non-empty list "
                    f"of strings (an argv), got {type_name(run)}",
                    f"{ptr}/run",
                )
            env = self.expect(config, "env", dict, "a mapping of NAME: value", ptr, where)
            for key, value in (env or {}).items():
                if not _ENV_NAME.fullmatch(key):
                    self.add(
                        f"invalid env name '{key}' {where}; use letters, digits and '_', "
                        "not starting with a digit",
                        f"{ptr}/env/{escape_pointer(key)}",
                    )
                elif not isinstance(value, str):
                    self.add(
                        f"env value '{key}' {where} must be a string, got {type_name(value)}",
                        f"{ptr}/env/{escape_pointer(key)}",
                    )
        elif executor == HTTP.name:
            self._check_http(config, ptr, where)

    def _check_http(self, config: dict[str, Any], ptr: str, where: str) -> None:
        url = self.expect(config, "url", str, "a string", ptr, where)
        if "url" not in config:
            self.add(f"missing required key 'url' {where}", f"{ptr}/url")
        elif url is not None:
            try:
                parts = urlsplit(url)
                ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            except ValueError:
                ok = False
            if not ok:
                self.add(
                    f"'url' {where} must be an http:// or https:// URL with a host, got {url!r}",
                    f"{ptr}/url",
                )
        method = self.expect(config, "method", str, "a string", ptr, where)
        if method is not None and method.upper() not in HTTP_METHODS:
            self.add(
                f"unsupported HTTP method {method!r} {where}; use one of {', '.join(HTTP_METHODS)}",
                f"{ptr}/method",
            )
        headers = self.expect(config, "headers", dict, "a mapping of name: value", ptr, where)
        for key, value in (headers or {}).items():
            at = f"{ptr}/headers/{escape_pointer(key)}"
            if not _HEADER_NAME.fullmatch(key):
                self.add(f"invalid header name {key!r} {where}", at)
            elif not isinstance(value, str):
                self.add(f"header '{key}' {where} must be a string, got {type_name(value)}", at)
            elif "\r" in value or "\n" in value:
                self.add(f"header '{key}' {where} must not contain line breaks", at)

    # -- schemas

    def _check_step_schema(self, schema: Any, ptr: str, what: str) -> None:
        if schema is None:
            return
        if isinstance(schema, dict) and set(schema) == {"$ref"}:
            self._check_refs(schema, ptr)  # the definition itself is checked once, on its own
        else:
            self._check_schema(schema, ptr, what)

    def _check_schema(self, schema: Any, ptr: str, what: str) -> None:
        if not isinstance(schema, dict):
            self.add(f"{what} must be a mapping (a JSON Schema), got {type_name(schema)}", ptr)
            return
        if "definitions" in schema:
            self.add(
                f"{what} cannot hold its own 'definitions'; move them to the top-level "
                "'definitions'",
                f"{ptr}/definitions",
            )
        self.schema_compiles(schema, ptr, what)
        self._check_refs(schema, ptr)

    def _check_refs(self, schema: dict[str, Any], ptr: str) -> None:
        for at, keyword, value in schema_refs(schema, ptr):
            if keyword == "$id":
                self.add(
                    f"'$id' is not supported here; refer to schemas with '{REF_PREFIX}<name>'", at
                )
                continue
            name = ref_target(value)
            if name is None:
                self.add(
                    f"unsupported $ref {value!r}; only local references of the form "
                    f"'{REF_PREFIX}<name>' are allowed",
                    at,
                )
            elif name not in self.definitions:
                hint = did_you_mean(name, self.definitions) or (
                    f"; defined: {', '.join(self.definitions)}"
                    if self.definitions
                    else "; there is no top-level 'definitions'"
                )
                self.add(f"$ref {value!r} names an unknown definition '{name}'{hint}", at)
