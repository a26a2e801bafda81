"""The kinds of step a user can write: the contract of each executor, declared once.

Each kind has one name, the executor's (``executors.registry`` registers an implementation
under every name here, and a test keeps the two sets equal), the ``workflow.yaml`` key that
selects it, and the ``config`` keys the JSON state-machine dialect accepts for it. The YAML
models, the YAML checks, the JSON dialect and plan compilation all learn the set from here.

A container step is written ``run`` + ``image`` and runs on the ``container`` executor. Its plan
names it ``shell`` with a ``ContainerSpec`` (plans and histories stored before the executor seam
say so, and a step's cache key includes that name): ``task_kind`` is the one place that reads it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

HTTP_METHODS = ("POST", "GET", "PUT", "PATCH", "DELETE")
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class StepKind:
    name: str  # the executor that runs it
    yaml_key: str  # the workflow.yaml step key that selects it
    #: the JSON dialect's ``config`` keys; None: the dialect has no such type
    config_keys: tuple[str, ...] | None
    summary: str
    required: str | None = None  # the config key it cannot do without


SHELL = StepKind("shell", "run", ("run", "env", "timeout"), "a command on the worker", "run")
CONTAINER = StepKind("container", "image", None, "a command in a container of an image")
HTTP = StepKind(
    "http", "http", ("url", "method", "headers", "timeout"), "a call to a service", "url"
)
NOOP = StepKind("noop", "uses", (), "hands its input on as its outputs")
#: decided by the engine while the run waits (no executor, no worker): people, or a timer
APPROVAL = StepKind("approval", "approval", None, "waits for people to approve")
WAIT = StepKind("wait", "wait", None, "waits for a time (a durable timer)")
#: started and followed by the control plane (a run of its own, through the run service)
CHILD = StepKind("workflow", "workflow", None, "runs another workflow as a child run")

KINDS: dict[str, StepKind] = {k.name: k for k in (NOOP, SHELL, HTTP, CONTAINER)}
#: the kinds the engine decides itself: no executor registers them
ENGINE_KINDS: dict[str, StepKind] = {k.name: k for k in (APPROVAL, WAIT)}
#: the kinds the control plane runs (no worker, no workspace): no executor registers them
CONTROL_KINDS: dict[str, StepKind] = {CHILD.name: CHILD}
#: the executors a JSON dialect ``integrationDetails.type`` may name
DIALECT_EXECUTORS = tuple(name for name, k in KINDS.items() if k.config_keys is not None)
#: the workflow.yaml keys that say how a step runs; a step has exactly one (``image`` goes
#: with ``run``, not instead of it)
YAML_SELECTORS = (
    "run",
    HTTP.yaml_key,
    NOOP.yaml_key,
    APPROVAL.yaml_key,
    WAIT.yaml_key,
    CHILD.yaml_key,
)
#: workflow.yaml step keys that only mean something for a command in a working copy
WORKSPACE_KEYS = ("image", "resources", "pull", "network", "user", "artifacts", "inputs")


def yaml_kind(step: Mapping[str, Any]) -> str:
    """The kind a (valid) workflow.yaml step selects, as parsed data or model fields."""
    if step.get(HTTP.yaml_key) is not None:
        return HTTP.name
    for kind in (*ENGINE_KINDS.values(), *CONTROL_KINDS.values()):
        if step.get(kind.yaml_key) is not None:
            return kind.name
    if step.get(NOOP.yaml_key) is not None:
        return str(step[NOOP.yaml_key])
    return CONTAINER.name if step.get(CONTAINER.yaml_key) else SHELL.name


def plan_name(kind: str) -> str:
    """The executor name a plan carries for ``kind`` (see the module's note on containers)."""
    return SHELL.name if kind == CONTAINER.name else kind


def task_kind(executor: str, has_container: bool) -> str:
    """The kind that runs a task a plan named ``executor``: a container, when it has one."""
    return CONTAINER.name if has_container else executor


def _http_url(url: str) -> str:
    try:
        parts = urlsplit(url)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"must be an http:// or https:// URL with a host, got {url[:100]!r}")
    return _literal(url)


def _upper(value: Any) -> Any:
    return value.upper() if isinstance(value, str) else value


def _header_value(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError("a header value must not contain line breaks")
    return _literal(value)


def _literal(value: str) -> str:
    # the call is made as written: values the run computes travel in the body (``with:``)
    if "${{" in value:
        raise ValueError("expressions are not evaluated here; pass run values in 'with:'")
    return value


def _headers(headers: dict[str, str]) -> dict[str, str]:
    for name in headers:
        if len(name) > 256 or not _HEADER_NAME.fullmatch(name):
            shown = "".join(c if c.isprintable() else "?" for c in name)[:100]
            raise ValueError(
                f"invalid header name {shown!r}; use letters, digits and -!#$%&'*+.^_`|~"
            )
    return headers


class HttpCall(BaseModel):
    """An ``http:`` step: the call to make. Its ``with:`` input is the JSON body (query
    parameters for GET and DELETE); the JSON object answered is its outputs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: Annotated[str, AfterValidator(_http_url)] = Field(
        description="http:// or https:// URL of the service"
    )
    method: Annotated[Literal["POST", "GET", "PUT", "PATCH", "DELETE"], BeforeValidator(_upper)] = (
        "POST"
    )
    headers: Annotated[
        dict[str, Annotated[str, AfterValidator(_header_value)]], AfterValidator(_headers)
    ] = Field(default_factory=dict, description="request headers (name: value)")

    def config(self) -> dict[str, Any]:
        """The executor's config, as the JSON dialect's http steps carry it."""
        return {"url": self.url, "method": self.method, "headers": dict(self.headers)}
