"""Payloads that cross the Temporal boundary. Plain frozen dataclasses (JSON by the default
converter) so the workflow sandbox stays light and histories stay readable.

A ``RunPlan`` is the workflow input: the spec compiled at the run's locked source with its
validated params, so a replay never depends on anything that can move (repo, files, DB).
"""

# No `from __future__ import annotations` here: Temporal's converter resolves these hints on
# every payload, and string annotations made that ~8% of a busy server's CPU.
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RetryPlan:
    attempts: int = 1
    backoff_s: float = 1.0
    max_backoff_s: float | None = None
    on_exit_codes: list[int] | None = None


@dataclass(frozen=True)
class Branch:
    """One way out of a state-machine step: to ``next`` (None ends the run) when ``condition``
    (CEL over output, input, params, visits) holds, or always when it is None."""

    condition: str | None
    next: str | None


@dataclass(frozen=True)
class ApprovalPlan:
    """An ``approval:`` step's terms. Who may decide is checked by the approvals service (it
    knows the people and their roles); the workflow counts distinct approvals."""

    approvers: list[str] = field(default_factory=list)
    required: int = 1
    allow_self: bool = True
    input_schema: dict[str, Any] | None = None
    timeout_s: float | None = None
    on_timeout: str = "fail"  # reject | approve | fail
    message: str | None = None  # a template


@dataclass(frozen=True)
class ApprovalAsk:
    """What an approval asks, once its message is rendered: recorded when it starts waiting."""

    approvers: list[str]
    required: int
    allow_self: bool
    input_schema: dict[str, Any] | None
    message: str | None
    deadline: str | None  # UTC, when on_timeout applies
    on_timeout: str


@dataclass(frozen=True)
class Decision:
    """One person's decision on an approval, sent to the run's workflow as an update."""

    step: str
    user: str
    approve: bool
    comment: str | None = None
    input: dict[str, Any] | None = None
    at: str = ""


@dataclass(frozen=True)
class GateAnswer:
    """The approval after a decision: still waiting, approved or rejected, and the count."""

    step: str
    state: str  # waiting | approved | rejected
    approvals: int
    required: int


@dataclass(frozen=True)
class ContainerSpec:
    """A container step's image, its limits (None: the runtime's default) and how to get and
    run it."""

    image: str
    cpu: float | None = None
    memory_bytes: int | None = None
    pull: str = "if-not-present"
    network: str = "default"
    user: str | None = None


@dataclass(frozen=True)
class StepPlan:
    """One step, compiled. Strings may still hold ``${{ }}`` templates; ``run`` strings have
    had their expressions replaced by env-var references (``bindings``) so a value never becomes
    shell syntax."""

    id: str
    command: list[str]  # argv; for a `run:` string this is ["bash", "-c", script]
    shell: bool  # True when `command` came from a string (its templates are in `bindings`)
    bindings: dict[str, str] = field(default_factory=dict)  # env var -> expression source
    env: dict[str, str] = field(default_factory=dict)  # templates allowed in values
    needs: list[str] = field(default_factory=list)
    condition: str | None = None  # CEL source, or None for "always"
    retry: RetryPlan = field(default_factory=RetryPlan)
    timeout_s: float | None = None
    continue_on_error: bool = False
    outputs_schema: dict[str, Any] | None = None
    pool: str = "default"
    is_finally: bool = False
    secrets: dict[str, str] = field(default_factory=dict)  # env var -> secret name
    #: what runs it: "shell" (argv), "noop" or "http" (``config``: url, method, headers...)
    executor: str = "shell"
    config: dict[str, Any] = field(default_factory=dict)
    #: typed contract: the step's input (``with:`` values, or the previous state's output)
    input_schema: dict[str, Any] | None = None
    inputs: dict[str, Any] = field(default_factory=dict)  # name -> template (``with:``)
    #: state-machine steps: where to go next, tried in order (condition None = always)
    branches: list[Branch] = field(default_factory=list)
    max_visits: int = 0
    #: artifacts to store after success (name -> path or glob), and the upstream ones to get
    artifacts: dict[str, str] = field(default_factory=dict)
    artifact_inputs: list[str] = field(default_factory=list)  # "step.name"
    #: caching: on, its extra key template, and how long a result may be reused
    cache: bool = False
    cache_key: str | None = None
    cache_ttl_s: float | None = None
    #: fail the attempt when no worker of the pool takes it within this many seconds
    schedule_timeout_s: float | None = None
    container: ContainerSpec | None = None  # None: a process on the worker
    #: engine-decided steps: an approval's terms; a ``wait:`` in seconds or until an instant
    approval: ApprovalPlan | None = None
    wait_s: float | None = None
    wait_until: str | None = None  # template of an ISO 8601 instant
    #: fan-out: run once per item of this CEL list (or of the literal ``items``)
    for_each: str | None = None
    items: list[Any] | None = None
    max_parallel: int | None = None
    fail_fast: bool = True
    #: "json" | "text": what the step prints on stdout is its output ``result``
    result: str | None = None
    #: resource name -> template of its next version's data, recorded when the step succeeds
    writes: dict[str, Any] = field(default_factory=dict)

    @property
    def fans_out(self) -> bool:
        return self.for_each is not None or self.items is not None


@dataclass(frozen=True)
class SourceCheckout:
    """One ``sources:`` entry, locked: the repository and the commit its ref resolved to."""

    repo: str  # credential-free remote URL
    ref: str  # what the spec asked for, kept for the record
    sha: str
    path: str  # relative to the workspace root, checked by ``spec.sources``
    credentials: str | None = None  # secret name, resolved by whoever has to fetch


@dataclass(frozen=True)
class Workspace:
    """Where a step's working copy comes from: a snapshot blob of a directory (ad-hoc runs),
    or a repository at an exact commit (runs of a git-backed definition)."""

    snapshot: str | None = None  # blob key of a tar.gz, or None for an empty workspace
    repo: str | None = None  # credential-free remote URL
    sha: str | None = None  # the commit every attempt of the run checks out
    sources: list[SourceCheckout] = field(default_factory=list)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "Workspace":
        """Rebuild one stored with ``dataclasses.asdict``."""
        sources = [SourceCheckout(**s) for s in data.get("sources") or []]
        return Workspace(
            snapshot=data.get("snapshot"), repo=data.get("repo"), sha=data.get("sha"),
            sources=sources,
        )  # fmt: skip


@dataclass(frozen=True)
class ArtifactRef:
    """A stored artifact: what it was called, where its bytes are, and what they are."""

    step: str
    name: str
    key: str  # blob key
    kind: str  # "file" (the bytes of one file at ``path``) or "tar" (a tar.gz of ``paths``)
    size: int
    sha256: str
    paths: list[str] = field(default_factory=list)  # workspace-relative, as produced


@dataclass(frozen=True)
class OutputLoad:
    """Referenced outputs an expression must read inside the engine."""

    project: str
    keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CacheQuery:
    project: str
    key: str
    ttl_s: float | None = None


@dataclass(frozen=True)
class CacheHit:
    """An earlier successful attempt whose result a cacheable step reuses."""

    run_id: str
    step: str
    attempt: int
    outputs: dict[str, Any] = field(default_factory=dict)
    artifacts: list[ArtifactRef] = field(default_factory=list)


@dataclass(frozen=True)
class ReusedStep:
    """A step whose result is taken from an earlier run instead of executing (``runs retry``)."""

    run_id: str
    outputs: Any = field(default_factory=dict)  # a fan-out step's is a list
    artifacts: list[ArtifactRef] = field(default_factory=list)


@dataclass(frozen=True)
class RunPlan:
    run_id: str
    project: str
    workflow: str
    spec_digest: str
    params: dict[str, Any]
    workspace: Workspace
    steps: list[StepPlan]  # main steps, then finally steps (is_finally=True)
    outputs: dict[str, str] = field(default_factory=dict)  # name -> template
    env: dict[str, str] = field(default_factory=dict)  # workflow-level env templates
    run_timeout_s: float | None = None
    heartbeat_timeout_s: float = 30.0
    reuse: dict[str, ReusedStep] = field(default_factory=dict)
    sha: str | None = None
    #: set for a state machine: the first step; steps then follow ``branches``, not ``needs``
    start: str | None = None
    no_cache: bool = False  # the run asked to execute every step
    outputs_schema: dict[str, Any] | None = None
    #: ``${{ resources.ALIAS }}``: alias -> {name, version, data}, versions fixed at creation
    resources: dict[str, Any] = field(default_factory=dict)
    #: the schema of each resource the steps write (None: any object), fixed at creation
    resource_schemas: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StepTask:
    """Input of one step attempt's activity, with every expression already resolved."""

    run_id: str
    step_id: str
    attempt: int
    argv: list[str]
    env: dict[str, str]
    workspace: Workspace
    timeout_s: float | None
    outputs_schema: dict[str, Any] | None
    log_key: str
    project: str = "default"
    #: env var -> secret name; the worker resolves values, they never enter the engine
    secrets: dict[str, str] = field(default_factory=dict)
    container: ContainerSpec | None = None  # None: a process on the worker
    executor: str = "shell"
    config: dict[str, Any] = field(default_factory=dict)
    #: typed contract: checked by the worker before the step starts, handed to it as
    #: ``$LOCKSTEP_INPUT`` (a JSON file); None when the step takes no input
    input: Any = None
    input_schema: dict[str, Any] | None = None
    artifacts: dict[str, str] = field(default_factory=dict)  # to store: name -> path/glob
    artifact_inputs: list[ArtifactRef] = field(default_factory=list)  # to place first
    #: "json" | "text": what the step prints on stdout is its output ``result``
    result: str | None = None


@dataclass(frozen=True)
class StepResult:
    """What an executor reports back. It never decides the run's fate; the workflow does."""

    ok: bool
    exit_code: int | None = None
    error: str | None = None
    outputs: dict[str, Any] = field(default_factory=dict)
    worker: str = ""
    started_at: str = ""
    finished_at: str = ""
    timed_out: bool = False
    image_digest: str | None = None  # the exact image a container step ran
    artifacts: list[ArtifactRef] = field(default_factory=list)


@dataclass(frozen=True)
class ItemOutcome:
    """How one item of a fan-out ended: what the fan-out step aggregates."""

    status: str  # an ``engine.states.StepStatus``, kept a plain string on the wire
    outputs: dict[str, Any] | None = None
    error: str | None = None
    artifacts: list[ArtifactRef] = field(default_factory=list)
