"""The run record as users and scripts see it (API responses, ``--json``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

#: the status of a record whose stored status is not one lockstep knows
DAMAGED = "damaged"


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True)


class AttemptRecord(_Record):
    attempt: int
    status: str
    scheduled_at: str
    started_at: str | None = None
    finished_at: str | None = None
    exit_code: int | None = None
    worker: str | None = None
    error: str | None = None
    log_key: str
    image_digest: str | None = Field(None, description="the exact image a container step ran")
    image_changed_from: str | None = Field(
        None, description="the digest this step's image had in the previous run, if different"
    )
    pool: str | None = Field(None, description="the worker pool the attempt was placed on")
    waiting: str | None = Field(None, description="why a scheduled attempt has not started")


class DecisionRecord(_Record):
    """One person's decision on an approval step, as the run record keeps it."""

    user: str
    approve: bool
    at: str = Field(description="when it was decided (UTC)")
    comment: str | None = None
    input: dict[str, Any] | None = Field(None, description="what an approval gave (its outputs)")


class StepRecord(_Record):
    status: str
    attempts: int = Field(description="attempts made so far")
    outputs: dict[str, Any] | list[Any] | None = Field(
        None, description="an object; a list in item order for a for_each step"
    )
    error: str | None = None
    reused_from: str | None = Field(None, description="run whose result this step reused")
    cached_from: str | None = Field(
        None, description="RUN/STEP/ATTEMPT whose cached result this step took"
    )
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    is_finally: bool = False
    history: list[AttemptRecord] = Field(default_factory=list)
    items: dict[str, int] | None = Field(
        None, description="a for_each step: its items by status, and 'total'"
    )
    index: int | None = Field(None, description="a for_each item: its index in the list")
    stderr_tail: list[str] = Field(
        default_factory=list,
        description="a failed step: the last lines its last attempt wrote to stderr",
    )
    decisions: list[DecisionRecord] = Field(
        default_factory=list, description="an approval step: each person's decision, in order"
    )


class CauseKind(StrEnum):
    """Why a run started. A person, a retry and a rerun start runs today; the other kinds are
    the vocabulary of triggers (each fills the fields its kind names in ``Cause``)."""

    MANUAL = "manual"
    RETRY = "retry"
    RERUN = "rerun"
    SCHEDULE = "schedule"
    WEBHOOK = "webhook"
    GIT = "git"
    UPSTREAM = "upstream"
    RESOURCE = "resource"
    #: a ``workflow:`` step of another run started it (``parent_run``, ``parent_step``)
    PARENT = "parent"


#: the kinds that repeat another run (``of`` names it)
REPEATS = frozenset({CauseKind.RETRY, CauseKind.RERUN})
#: the kinds a trigger produces (``trigger`` names it)
TRIGGERED = frozenset(
    {CauseKind.SCHEDULE, CauseKind.WEBHOOK, CauseKind.GIT, CauseKind.UPSTREAM, CauseKind.RESOURCE}
)
#: the longest id or name a cause holds (trigger, delivery, user, run ids): "trigger:" and it
#: fit a run's ``triggered_by`` (200 characters)
MAX_CAUSE_FIELD = 190


class Cause(_Record):
    """Why a run started, written once with the run and never changed. Every run has one;
    the run service records it (``services/run_launch.submit`` takes it)."""

    kind: CauseKind
    trigger: str | None = Field(
        None, max_length=MAX_CAUSE_FIELD, description="the trigger that fired the run"
    )
    schedule_time: str | None = Field(
        None, max_length=40, description="a schedule's fire time this run is for (UTC)"
    )
    delivery: str | None = Field(
        None, max_length=MAX_CAUSE_FIELD, description="a webhook delivery's id"
    )
    payload_digest: str | None = Field(
        None, max_length=100, description="sha256:… of the event payload"
    )
    upstream_run: str | None = Field(
        None, max_length=MAX_CAUSE_FIELD, description="the finished run that fired this one"
    )
    user: str | None = Field(
        None, max_length=MAX_CAUSE_FIELD, description="the person who started (or fired) it"
    )
    of: str | None = Field(
        None, max_length=MAX_CAUSE_FIELD, description="the run a retry or rerun repeats"
    )
    parent_run: str | None = Field(
        None, max_length=MAX_CAUSE_FIELD, description="the run whose workflow: step this is"
    )
    parent_step: str | None = Field(
        None, max_length=MAX_CAUSE_FIELD, description="that step (a fan-out item: step[i])"
    )
    parent_attempt: int | None = Field(None, ge=1, description="the step's attempt")

    @model_validator(mode="after")
    def _complete(self) -> Cause:
        if self.kind in REPEATS and not self.of:
            raise ValueError(f"a {self.kind} cause names the run it repeats ('of')")
        if self.kind in TRIGGERED and not self.trigger:
            raise ValueError(f"a {self.kind} cause names its trigger ('trigger')")
        if self.kind == CauseKind.PARENT and not (self.parent_run and self.parent_step):
            raise ValueError("a parent cause names the run and step ('parent_run', 'parent_step')")
        return self

    @classmethod
    def manual(cls, user: str | None) -> Cause:
        return cls(kind=CauseKind.MANUAL, user=user or None)

    @classmethod
    def repeat(cls, kind: CauseKind, of: str, user: str | None) -> Cause:
        """A retry or rerun of ``of``, asked for by ``user``."""
        return cls(kind=kind, of=of, user=user or None)


class SourceRecord(_Record):
    repo: str
    ref: str = Field(description="what the spec asked for")
    sha: str = Field(description="the commit it resolved to when the run was created")
    path: str


class ChildRun(_Record):
    """A run one of this run's ``workflow:`` steps started."""

    step: str
    run_id: str
    workflow: str
    status: str


class RunSelection(_Record):
    """The part of its graph a run was asked to run (``--only``/``--from``, ``--reuse``)."""

    model_config = ConfigDict(frozen=True, validate_by_name=True, serialize_by_alias=True)

    only: list[str] = Field(default_factory=list, description="these steps and what they need")
    from_: list[str] = Field(
        default_factory=list, alias="from", description="these steps and every step after them"
    )
    reuse: str | None = Field(None, description="the run the needed steps' results came from")
    needed: list[str] = Field(
        default_factory=list,
        description="steps outside the selection that it needs: reused from 'reuse', or run",
    )


class RunResource(_Record):
    """A resource version a run read (fixed when it was created) or one of its steps wrote."""

    access: str = Field(description="'read' or 'write'")
    name: str
    version: int
    alias: str | None = Field(None, description="read: its name under `resources:`")
    step: str | None = Field(None, description="write: the step that wrote it")


class RunRecord(_Record):
    id: str
    project: str
    workflow: str
    status: str
    params: dict[str, Any]
    outputs: dict[str, Any] | None = None
    error: str | None = None
    source: str = ""
    spec_digest: str
    triggered_by: str = ""
    cause: Cause | None = Field(None, description="why the run started; None only if damaged")
    idempotency_key: str | None = None
    retry_of: str | None = None
    definition: str | None = Field(None, description="the definition this run executes")
    version: int | None = Field(None, description="its version, locked at creation")
    sha: str | None = Field(None, description="the commit, locked at creation")
    sources: list[SourceRecord] = Field(
        default_factory=list, description="other repositories in the workspace, locked"
    )
    instance: str | None = None
    pool: str | None = Field(None, description="worker pool of the steps that name none")
    selector: str | None = Field(None, description="what the run was asked to run (a ref)")
    rerun_of: str | None = Field(None, description="the run this one reproduces")
    rerun_policy: str | None = Field(None, description="'same' commit or 'latest' ref")
    selection: RunSelection | None = Field(None, description="a run of part of its graph")
    resources: list[RunResource] = Field(
        default_factory=list, description="resource versions it read, then those it wrote"
    )
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    steps: dict[str, StepRecord] = Field(default_factory=dict)
    children: list[ChildRun] = Field(
        default_factory=list, description="the runs its workflow: steps started, oldest first"
    )


class RunSummary(_Record):
    id: str
    project: str
    workflow: str
    status: str
    created_at: str
    finished_at: str | None = None
    duration_s: float | None = None
    error: str | None = None
    triggered_by: str = ""
    cause: Cause | None = Field(None, description="why the run started; None only if damaged")


@dataclass(frozen=True)
class RunFilter:
    """Which of a project's runs a list (or the list's stream of changes) shows: those that
    match every field given."""

    status: str | None = None
    workflow: str | None = None
    #: the registered definition it is a version of
    definition: str | None = None
    #: the trigger that fired it
    trigger: str | None = None
    cause: CauseKind | None = None
    #: the person (a token's user) who started, retried, reran or fired it
    user: str | None = None
    #: the start of its id
    prefix: str | None = None


class RunPage(_Record):
    items: list[RunSummary]
    next_cursor: str | None = None


@dataclass(frozen=True)
class WorkerReport:
    """What a worker says of itself every few seconds (and once more when it stops)."""

    identity: str
    pool: str
    host: str
    pid: int
    capacity: int
    running: int
    version: str
    labels: dict[str, str] = field(default_factory=dict)
    stopped: bool = False
    #: the worker's clock as it sent the report (a timestamp as the records write them)
    sent_at: str | None = None


class ResourceRecord(_Record):
    """A project's named, versioned configuration (``lockstep resources``)."""

    name: str
    description: str | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema", description="JSON Schema")
    latest: int = Field(description="the newest version's number (0: none yet)")
    created_at: str
    created_by: str | None = None

    model_config = ConfigDict(frozen=True, validate_by_name=True, serialize_by_alias=True)


class ResourceVersionRecord(_Record):
    """One immutable version: its data and who wrote it (a person, or a run's step)."""

    resource: str
    version: int
    digest: str = Field(description="SHA-256 of the data as canonical JSON")
    data: dict[str, Any]
    message: str | None = None
    author: str | None = Field(None, description="the person who wrote it")
    run_id: str | None = Field(None, description="the run whose step wrote it")
    step: str | None = None
    attempt: int | None = None
    created_at: str


class ResourceChange(_Record):
    op: str = Field(description="added, removed or changed")
    path: str = Field(description="JSON pointer into the data")
    old: Any = None
    new: Any = None


class ResourceDiff(_Record):
    resource: str
    old: int
    new: int
    changes: list[ResourceChange]
