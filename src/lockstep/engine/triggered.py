"""The small workflow a trigger's Temporal Schedule starts: it is not the run, it makes one.

A fire asks the run service for the run (a local activity, so the run has its record and its
cause like any other) with an idempotency key of trigger and fire time: a fire time retried,
replayed or backfilled twice still makes one run. It then waits for that run to finish, so the
Schedule's overlap policy (skip, buffer_one, cancel_other) applies to runs, not to fires: a fire
cancelled by the Schedule (``cancel_other``) cancels its run through the run service and waits
for it to end before it ends itself, so the next fire's run starts after it.
"""

# No `from __future__ import annotations`: Temporal's converter reads these hints at runtime.
import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy, SearchAttributeKey
from temporalio.exceptions import ActivityError

FIRE_ACTIVITY = "lockstep.trigger_fire"
FINISHED_ACTIVITY = "lockstep.trigger_run_finished"
CANCEL_ACTIVITY = "lockstep.trigger_run_cancel"
#: Temporal sets it on every workflow a Schedule starts: the fire time it is for
SCHEDULED_TIME = SearchAttributeKey.for_datetime("TemporalScheduledStartTime")
#: how often a fire looks whether its run has finished
POLL = timedelta(seconds=2)
#: tries of a run's cancel before the fire gives up and lets the run end by itself
CANCEL_ATTEMPTS = 5


@dataclass(frozen=True)
class FireRequest:
    """What a schedule trigger runs: ``selector`` (a definition at an explicit version or tag)
    of ``project`` with ``params`` (templates over ``schedule.time``)."""

    project: str
    definition: str
    trigger: str
    selector: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fire:
    """One fire time of a trigger, handed to the run service."""

    request: FireRequest
    schedule_time: str  # UTC, ISO 8601


@workflow.defn(name="lockstep.TriggerFired")
class TriggerFiredWorkflow:
    @workflow.run
    async def run(self, request: FireRequest) -> str:
        fire = Fire(request, _iso(workflow.info().typed_search_attributes.get(SCHEDULED_TIME)))
        made = workflow.start_local_activity(
            FIRE_ACTIVITY, fire, result_type=str, start_to_close_timeout=timedelta(seconds=60)
        )
        try:
            # shielded: a cancel arriving while the run is being made still gets its run id
            run_id: str = await asyncio.shield(made)
        except asyncio.CancelledError:
            await self._cancel(request.project, await made)
            raise
        try:
            await self._until_finished(request.project, run_id)
        except asyncio.CancelledError:
            await self._cancel(request.project, run_id)
            raise
        return run_id

    async def _until_finished(self, project: str, run_id: str) -> None:
        while not await workflow.execute_local_activity(
            FINISHED_ACTIVITY,
            args=[project, run_id],
            result_type=bool,
            start_to_close_timeout=timedelta(seconds=30),
        ):
            await workflow.sleep(POLL)

    async def _cancel(self, project: str, run_id: str) -> None:
        """The Schedule cancelled this fire (``overlap: cancel_other``): cancel its run the
        way ``lockstep cancel`` does, and wait until it has ended. A cancel that keeps
        failing (its engine away) is given up: the run then ends by itself."""
        try:
            await workflow.execute_local_activity(
                CANCEL_ACTIVITY,
                args=[project, run_id],
                start_to_close_timeout=timedelta(seconds=30),
                retry_policy=RetryPolicy(maximum_attempts=CANCEL_ATTEMPTS),
            )
        except ActivityError as exc:
            workflow.logger.warning("trigger.run_cancel_failed %s: %s", run_id, exc.cause)
        await self._until_finished(project, run_id)


def _iso(when: datetime | None) -> str:
    # a workflow started by hand (not by the Schedule) has no fire time: it fires "now"
    moment = when if when is not None else workflow.now()
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
