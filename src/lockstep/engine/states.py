"""The one table of allowed state transitions, for runs and for steps.

The recorder consults it for every change; a move that is not listed is refused, and a
repeat of the current state (a replayed record) is a no-op.
"""

from __future__ import annotations

RUN_TERMINAL = frozenset({"succeeded", "failed", "cancelled"})
STEP_TERMINAL = frozenset({"succeeded", "failed", "skipped", "cancelled", "upstream_failed"})

RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    "queued": frozenset({"running", "succeeded", "failed", "cancelled"}),
    "running": frozenset({"succeeded", "failed", "cancelled"}),
}

#: every state a run or a step can be in, in the order a user reads them
RUN_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
STEP_STATES = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "skipped",
    "cancelled",
    "upstream_failed",
)
assert set(RUN_STATES) == set(RUN_TRANSITIONS) | RUN_TERMINAL

STEP_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"running"} | STEP_TERMINAL),
    # running → running is a new attempt after a failed one
    "running": frozenset({"running", "succeeded", "failed", "cancelled"}),
}


assert set(STEP_STATES) == set(STEP_TRANSITIONS) | STEP_TERMINAL


def run_can_move(current: str, new: str) -> bool:
    return new in RUN_TRANSITIONS.get(current, frozenset())


def step_can_move(current: str, new: str) -> bool:
    return new in STEP_TRANSITIONS.get(current, frozenset())
