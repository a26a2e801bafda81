"""Typed models of ``workflow.yaml``: the single source of the format and its JSON Schema.

Models are frozen and reject unknown keys; cross-field and graph rules live in
``spec.validate`` so that every problem is reported at once with its position.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from lockstep.settings import CONTAINER_USER_PATTERN
from lockstep.spec.blueprint_files import check_uses
from lockstep.spec.durations import Duration
from lockstep.spec.gates import ApprovalSpec, WaitSpec
from lockstep.spec.names import (
    ENV_NAME_PATTERN,
    MAX_ITEMS,
    NAME_PATTERN,
    SECRET_NAME_PATTERN,
    STEP_ID_PATTERN,
)
from lockstep.spec.notify import NotifySpec
from lockstep.spec.quantities import Cpu, Image, Memory
from lockstep.spec.resources import RESOURCE_NAME_PATTERN, RESOURCE_REF_PATTERN
from lockstep.spec.step_kinds import HttpCall
from lockstep.spec.triggers import TriggerId, TriggerSpec

StepId = Annotated[str, StringConstraints(pattern=STEP_ID_PATTERN, max_length=63)]
EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN, max_length=128)]
#: An env value may be a literal scalar or a string holding ``${{ }}`` expressions.
EnvValue = str | int | float | bool
JsonSchema = dict[str, Any]
#: what a ``workflow:`` step runs: a definition of the project, alone or with a selector
#: (``@7``, ``@$LIVE``, ``@main``, ``@v1.2``, ``@3f2a9c1``), written out (no expressions)
#: or a workflow file of the parent run's repository (``./kid.yaml``), run at its commit
CHILD_SELECTOR_PATTERN = (
    r"^([a-z0-9][a-z0-9-]*(@[^\s$]\S{0,254}|@\$[A-Z_]+)?|\.\.?/[^\s$\\]{1,254})$"
)
ChildSelector = Annotated[str, StringConstraints(pattern=CHILD_SELECTOR_PATTERN, max_length=320)]
ResourceName = Annotated[str, StringConstraints(pattern=RESOURCE_NAME_PATTERN)]
ResourceRef = Annotated[str, StringConstraints(pattern=RESOURCE_REF_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class RetrySpec(_Model):
    """How often a failed step is tried again, and how long to wait in between."""

    attempts: int = Field(1, ge=1, le=100, description="total attempts, the first included")
    backoff: Duration = Field(1.0, description="wait before the second attempt; doubles after")
    max_backoff: Duration | None = Field(None, description="cap on the wait between attempts")
    on_exit_codes: list[int] | None = Field(
        None, description="retry only when the step exits with one of these codes"
    )


PoolName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")]


class Defaults(_Model):
    """Values every step inherits unless it sets its own."""

    timeout: Duration | None = None
    retry: RetrySpec | None = None
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    runs_on: PoolName | None = Field(None, description="worker pool of steps that name none")
    schedule_timeout: Duration | None = None


class Resources(_Model):
    """Limits a container step runs under (enforced by the container runtime)."""

    cpu: Cpu | None = None
    memory: Memory | None = None


class SourceSpec(_Model):
    """Another repository cloned into the workspace at run time, locked to a commit at creation."""

    repo: str = Field(description="remote URL (https, ssh, git; http and file when enabled)")
    ref: str = Field(description="branch, tag or commit SHA; resolved when a run is created")
    path: str = Field(description="where it lands, relative to the workspace root")
    credentials: Annotated[str, StringConstraints(pattern=SECRET_NAME_PATTERN)] | None = Field(
        None, description="project secret holding 'user:token' for a private https remote"
    )


ArtifactName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")]


class InputsSpec(_Model):
    """What a step receives from upstream steps besides outputs."""

    artifacts: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="'step.name' of upstream artifacts, placed in the workspace as produced",
    )


class CacheSpec(_Model):
    """Reuse an earlier successful result of this step when nothing it depends on changed."""

    key: str | None = Field(None, description="extra key material, e.g. ${{ params.version }}")
    ttl: Duration | None = Field(None, description="how long a result may be reused")


class StepSpec(_Model):
    """One node of the graph. Its key in ``steps`` is its stable id."""

    description: str | None = None
    run: str | list[str] | None = Field(
        None, description="a string runs with `bash -c` in the checkout; a list is an argv"
    )
    uses: Annotated[str, AfterValidator(check_uses)] | None = Field(
        None,
        description="instead of `run`: 'noop' passes its `with:` on as outputs; a path "
        "'./blueprints/etl.yaml' or a published definition 'etl@$LIVE' imports that "
        "workflow's steps as '<this id>__<step>'",
    )
    http: HttpCall | None = Field(
        None,
        description="call a service instead of `run`: `with:` is the JSON body (query for GET), "
        "the JSON object answered is the step's outputs",
    )
    approval: ApprovalSpec | None = Field(
        None, description="wait for people to approve instead of `run` (no worker held)"
    )
    wait: WaitSpec | None = Field(
        None, description="wait for a time instead of `run`: '10m', or {until: ISO instant}"
    )
    workflow: ChildSelector | None = Field(
        None,
        description="run another definition of the project as a child run instead of `run`: "
        "DEF, DEF@SELECTOR or './file.yaml' of the same repository (at the parent's commit); "
        "`with:` are its params, its run outputs the step's outputs",
    )
    for_each: str | list[Any] | None = Field(
        None,
        description="run the step once per item of this list (${{ expression }} or a YAML "
        "list); ${{ item }} and ${{ index }} inside; outputs become a list in item order",
    )
    max_parallel: int | None = Field(
        None, ge=1, le=MAX_ITEMS, description="for_each: at most this many items at once"
    )
    fail_fast: bool | None = Field(
        None, description="for_each: stop the other items when one fails (default true)"
    )
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    needs: list[StepId] = Field(default_factory=list)
    if_: str | bool | None = Field(None, alias="if", description="CEL condition; false skips")
    retry: RetrySpec | None = None
    timeout: Duration | None = None
    continue_on_error: bool = False
    outputs: JsonSchema | None = Field(
        None,
        description="JSON Schema of what the step writes to $LOCKSTEP_OUTPUTS "
        "(or {$ref: '#/definitions/NAME'})",
    )
    result: Literal["json", "text"] | None = Field(
        None,
        description="what the step prints on stdout is its output 'result': parsed as one "
        "JSON value, or kept as text (one trailing newline removed)",
    )
    with_: dict[EnvName, Any] = Field(
        default_factory=dict,
        alias="with",
        description="the step's input (strings may hold ${{ }}); a JSON file at $LOCKSTEP_INPUT",
    )
    input: JsonSchema | None = Field(
        None, description="JSON Schema the step's `with` input must satisfy before it starts"
    )
    image: Image | None = Field(
        None, description="run in a container of this image (`run` string: sh -c, list: argv)"
    )
    resources: Resources | None = None
    pull: Literal["if-not-present", "always", "never"] = "if-not-present"
    network: Literal["default", "none"] = "default"
    user: Annotated[str, StringConstraints(pattern=CONTAINER_USER_PATTERN)] | None = Field(
        None, description="user (and group) the container runs as, e.g. '1000:1000'"
    )
    runs_on: PoolName | None = Field(None, description="the worker pool that runs this step")
    artifacts: dict[ArtifactName, str] = Field(
        default_factory=dict,
        description="name -> file, directory or glob in the workspace, stored after success",
    )
    inputs: InputsSpec | None = None
    cache: bool | CacheSpec = Field(
        False, description="reuse a matching earlier success (spec, inputs, artifacts, commit)"
    )
    schedule_timeout: Duration | None = Field(
        None, description="fail when no worker of the pool takes the step within this time"
    )
    writes: dict[ResourceName, Any] = Field(
        default_factory=dict,
        max_length=20,
        description="resource name -> its next version's data (an object; strings may hold "
        "${{ }}, e.g. ${{ steps.THIS.outputs.tag }}), recorded when the step succeeds",
    )


class WorkflowSpec(_Model):
    """The whole ``workflow.yaml``."""

    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=63)]
    description: str | None = None
    params: JsonSchema | None = Field(None, description="JSON Schema (type: object) of params")
    resources: dict[EnvName, ResourceRef] = Field(
        default_factory=dict,
        max_length=50,
        description="alias -> resource the run reads: NAME (its latest version when the run "
        "is created) or NAME@N; read as ${{ resources.ALIAS.data.FIELD }}",
    )
    env: dict[EnvName, EnvValue] = Field(default_factory=dict)
    sources: list[SourceSpec] = Field(
        default_factory=list, max_length=20, description="other repositories in the workspace"
    )
    defaults: Defaults = Field(default_factory=Defaults)
    timeout: Duration | None = Field(None, description="whole-run timeout")
    definitions: dict[str, JsonSchema] = Field(
        default_factory=dict, description="JSON Schemas steps' contracts can $ref"
    )
    steps: dict[StepId, StepSpec] = Field(min_length=1)
    finally_: dict[StepId, StepSpec] = Field(
        default_factory=dict,
        alias="finally",
        description="steps that always run after the others: cleanup, notification",
    )
    outputs: dict[Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN)], str] = Field(
        default_factory=dict, description="run outputs: name -> ${{ expression }}"
    )
    outputs_schema: JsonSchema | None = Field(
        None, description="JSON Schema the run's outputs must satisfy (or the run fails)"
    )
    triggers: dict[TriggerId, TriggerSpec] = Field(
        default_factory=dict, max_length=50, description="id -> what starts runs by itself"
    )
    notify: NotifySpec | None = Field(
        None, description="tell a project channel of this run's events: {on: [failed], channel}"
    )

    def all_steps(self) -> dict[str, StepSpec]:
        return {**self.steps, **self.finally_}


def json_schema() -> dict[str, Any]:
    """The published JSON Schema of ``workflow.yaml`` (``lockstep schema``)."""
    schema = WorkflowSpec.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["$id"] = "https://lockstep.dev/schema/workflow.json"
    schema["title"] = "lockstep workflow.yaml"
    return schema
