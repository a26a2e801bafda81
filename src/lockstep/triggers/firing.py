"""The activities of a fire: hand the fire time to the dispatcher (the one path of every
trigger: recorded in the trigger's history once per fire time, then a run through the run
service with the schedule's cause), tell whether that run has finished, and cancel it when the
Schedule cancels the fire (``overlap: cancel_other``)."""

from __future__ import annotations

import logging

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lockstep.engine.states import RUN_FINISHED
from lockstep.engine.triggered import CANCEL_ACTIVITY, FINISHED_ACTIVITY, FIRE_ACTIVITY, Fire
from lockstep.errors import Conflict, NotFound
from lockstep.records import Cause, CauseKind
from lockstep.services.runs import RunService
from lockstep.services.triggers import TriggerService
from lockstep.services.triggers import fire_status as status
from lockstep.triggers.dispatch import Dispatcher, Event

log = logging.getLogger(__name__)


class FireActivities:
    def __init__(self, dispatcher: Dispatcher, triggers: TriggerService, runs: RunService) -> None:
        self._dispatcher = dispatcher
        self._triggers = triggers
        self._runs = runs

    @activity.defn(name=FIRE_ACTIVITY)
    async def fire(self, fire: Fire) -> str:
        request = fire.request
        try:
            trigger = await self._triggers.registered(
                request.project, request.definition, request.trigger
            )
        except NotFound as exc:  # dropped meanwhile: its Schedule is on its way out
            _refused(request.trigger, str(exc))
            raise ApplicationError(str(exc), type=exc.kind, non_retryable=True) from exc
        event = Event(
            key=fire.schedule_time,
            data={"time": fire.schedule_time},
            cause=Cause(
                kind=CauseKind.SCHEDULE, trigger=request.trigger, schedule_time=fire.schedule_time
            ),
        )
        # a retry of this activity finds the fire recorded by the first try (one row per fire
        # time) and handles it again only if that try did not decide it; Unavailable (the
        # database or engine is away) propagates, and Temporal retries the fire
        recorded, _ = await self._dispatcher.accept(trigger, event)
        if recorded.status == status.ACCEPTED:
            recorded = await self._dispatcher.handle(recorded)
        if recorded.status != status.FIRED or recorded.run_id is None:
            # refused (bad params, a missing secret, an archived version): trying again gives
            # the same answer, and a fire retrying for ever would hold the schedule (overlap)
            why = recorded.error or recorded.status
            _refused(request.trigger, why)
            raise ApplicationError(why, type=recorded.status, non_retryable=True)
        log.info("trigger.fired", extra={"trigger": request.trigger, "run_id": recorded.run_id})
        return recorded.run_id

    @activity.defn(name=FINISHED_ACTIVITY)
    async def run_finished(self, project: str, run_id: str) -> bool:
        record = await self._runs.get(project, run_id)
        return record.status in RUN_FINISHED

    @activity.defn(name=CANCEL_ACTIVITY)
    async def cancel_run(self, project: str, run_id: str) -> None:
        try:
            await self._runs.cancel(project, run_id)
        except Conflict:
            return  # it ended meanwhile: nothing to cancel
        log.info("trigger.run_cancelled", extra={"run_id": run_id})


def _refused(trigger: str, error: str) -> None:
    log.warning("trigger.fire_refused", extra={"trigger": trigger, "error": error})
