"""State changes the interpreter workflow reports to the recorder (one writer of run state)."""

# No `from __future__ import annotations` here: Temporal's converter resolves these hints on
# every payload, and string annotations made that ~8% of a busy server's CPU.
from dataclasses import dataclass, field
from typing import Any

from lockstep.engine.types import StepResult


@dataclass(frozen=True)
class Event:
    """One change. ``kind`` is one of: run_started, attempt_started, attempt_finished,
    step_finished, fanout_started, run_finished, step_waiting, approval_decided."""

    kind: str
    at: str
    step: str | None = None
    attempt: int | None = None
    status: str | None = None
    result: StepResult | None = None
    outputs: Any = None  # a step's: an object, or a list for a fan-out step
    error: str | None = None
    reused_from: str | None = None
    log_key: str | None = None
    pool: str | None = None  # attempt_started: the pool the attempt was placed on
    cache_key: str | None = None  # attempt_finished of a cacheable step: file it under this
    cached_from: str | None = None  # step_finished from the cache: RUN/STEP/ATTEMPT
    items: int | None = None  # fanout_started: how many items the step runs
    #: step_waiting of an approval: what it asks (``engine.types.ApprovalAsk`` as a dict);
    #: approval_decided: the decision (``engine.types.Decision`` as a dict)
    detail: dict[str, Any] | None = None
    #: step_finished of a step with ``writes:``: resource name -> its next version's data,
    #: recorded with the step's success (keyed by run, step and ``attempt``)
    writes: dict[str, Any] | None = None


@dataclass(frozen=True)
class EventBatch:
    run_id: str
    events: list[Event] = field(default_factory=list)
