"""The states a run and a step can be in, the finished ones, and the one table of allowed
transitions between them.

The recorder consults the table for every change; a move that is not listed is refused, and a
repeat of the current state (a replayed record) is a no-op. The states are ``StrEnum``s: they
equal the strings stored in rows, histories and JSON, so records written before them still
load. Stdlib only: the CLI's light reads import this module.
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """A run's state, in the order a user reads them."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class StepStatus(StrEnum):
    """A step's (or a step attempt's, or a fan-out item's) state, in the order a user reads
    them. ``failed`` is the step's own failure (its exit code, its outputs contract) or the
    system's (a worker lost): the attempt's ``error`` and ``exit_code`` tell which."""

    PENDING = "pending"
    #: an approval waiting for people, or a ``wait:`` timer: the run holds no worker
    WAITING = "waiting"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    UPSTREAM_FAILED = "upstream_failed"


#: states that never change again
RUN_FINISHED = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})
STEP_FINISHED = frozenset(
    {
        StepStatus.SUCCEEDED,
        StepStatus.FAILED,
        StepStatus.SKIPPED,
        StepStatus.CANCELLED,
        StepStatus.UPSTREAM_FAILED,
    }
)

#: every state, in the order a user reads them
RUN_STATES = tuple(RunStatus)
STEP_STATES = tuple(StepStatus)

RUN_TRANSITIONS: dict[str, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING} | RUN_FINISHED),
    RunStatus.RUNNING: RUN_FINISHED,
}
assert set(RUN_STATES) == set(RUN_TRANSITIONS) | RUN_FINISHED

STEP_TRANSITIONS: dict[str, frozenset[StepStatus]] = {
    StepStatus.PENDING: frozenset({StepStatus.RUNNING, StepStatus.WAITING} | STEP_FINISHED),
    StepStatus.WAITING: frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED}),
    # running → running is a new attempt after a failed one
    StepStatus.RUNNING: frozenset(
        {StepStatus.RUNNING, StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.CANCELLED}
    ),
}
assert set(STEP_STATES) == set(STEP_TRANSITIONS) | STEP_FINISHED


def run_can_move(current: str, new: str) -> bool:
    return new in RUN_TRANSITIONS.get(current, frozenset())


def step_can_move(current: str, new: str) -> bool:
    return new in STEP_TRANSITIONS.get(current, frozenset())
