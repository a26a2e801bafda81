"""Fan-out payloads and arithmetic: how a ``for_each`` step's items are cut into batches and
how their outcomes become the step's.

Up to ``BATCH`` items run inside the run's own workflow. Wider fan-outs are cut into batches of
``BATCH`` items, each a child workflow (``engine.fanout``), so no history grows with the number
of items: the run's history holds one child per batch, a child's holds its own items.
``max_parallel`` is shared out between the batches running at once, so the step never has more
than that many items in flight.
"""

# No `from __future__ import annotations` here: Temporal's converter resolves these hints on
# every payload.
import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from lockstep.engine.refs import step_sources
from lockstep.engine.states import StepStatus
from lockstep.engine.types import (
    ArtifactRef,
    ItemOutcome,
    RunPlan,
    StepPlan,
)
from lockstep.spec.expressions import references

#: items run by one workflow (the run's own, or one child's)
BATCH = 200
#: batches started at once: enough to keep every worker busy, few enough that starting them
#: stays a small workflow task
MAX_BATCHES_AT_ONCE = 8


#: what an item that never started ends as (fail_fast stopped the fan-out first)
NOT_RUN = ItemOutcome(StepStatus.CANCELLED, error="not run: another item failed")


async def in_lanes(lanes: int, jobs: int, job: Callable[[int], Awaitable[bool]]) -> None:
    """Run ``job(0)`` … ``job(jobs - 1)`` on at most ``lanes`` at a time. A job that returns
    True (a failure that stops the fan-out) cancels the running ones, and no more start."""
    pending = iter(range(jobs))
    tasks: list[asyncio.Task[None]] = []

    async def lane() -> None:
        for j in pending:
            if await job(j):
                for other in tasks:
                    if other is not asyncio.current_task():
                        other.cancel()
                return

    tasks.extend(asyncio.create_task(lane()) for _ in range(min(lanes, jobs)))
    # return_exceptions: wait until every lane has stopped, even when one was cancelled
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
            raise result  # a bug: fail the workflow task so it is retried, not hidden


@dataclass(frozen=True)
class FanOutBatch:
    """The input of one batch: everything its items' expressions and attempts need."""

    plan: RunPlan
    step: str
    context: dict[str, Any]  # params, steps, run and env, as the step saw them
    artifacts: dict[str, list[ArtifactRef]]  # what upstream steps stored
    items: list[Any]
    first: int  # index of items[0] in the whole list
    parallel: int
    fail_fast: bool


@dataclass(frozen=True)
class BatchResult:
    outcomes: list[ItemOutcome] = field(default_factory=list)


def batches(n: int, parallel: int) -> tuple[list[tuple[int, int]], int, int]:
    """``(start, end)`` of each batch, how many batches run at once, and how many items each
    of those runs at once: together never more than ``parallel``."""
    spans = [(start, min(start + BATCH, n)) for start in range(0, n, BATCH)]
    at_once = min(len(spans), max(1, -(-parallel // BATCH)), MAX_BATCHES_AT_ONCE)
    return spans, at_once, max(1, min(BATCH, parallel // at_once))


def aggregate(step: str, outcomes: list[ItemOutcome]) -> tuple[str, str | None]:
    """The fan-out step's status from its items', and its error."""
    failed = [(i, o) for i, o in enumerate(outcomes) if o.status == StepStatus.FAILED]
    if failed:
        first, outcome = failed[0]
        return StepStatus.FAILED, (
            f"{len(failed)} of {len(outcomes)} items failed; first {step}[{first}]: "
            f"{outcome.error or 'failed'}"
        )
    if any(o.status == StepStatus.CANCELLED for o in outcomes):
        return StepStatus.CANCELLED, "cancelled"
    if outcomes and all(o.status == StepStatus.SKIPPED for o in outcomes):
        return StepStatus.SKIPPED, "every item was skipped"
    return StepStatus.SUCCEEDED, None


def context_for(step: StepPlan, ctx: dict[str, Any]) -> dict[str, Any]:
    """The part of ``ctx`` the step's expressions read, for its batches' inputs: a batch
    should not carry every upstream output (a 10,000-item list, say) when its items only read
    ``item``."""
    read, handed = step_sources(step)
    sources = read + handed
    chains = [chain for src in sources for chain in references(src)]
    narrow = {k: v for k, v in ctx.items() if k in {c[0] for c in chains}}
    if "steps" in narrow and ("steps",) not in chains:
        wanted = {c[1] for c in chains if c[0] == "steps"}
        narrow["steps"] = {k: v for k, v in narrow["steps"].items() if k in wanted}
    return narrow
