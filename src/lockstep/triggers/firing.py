"""The activities of a fire: make the run through the versions service (which submits through
the run service with the cause), and tell whether that run has finished."""

from __future__ import annotations

import logging
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from lockstep.engine.states import RUN_FINISHED
from lockstep.engine.triggered import FINISHED_ACTIVITY, FIRE_ACTIVITY, Fire
from lockstep.errors import LockstepError, Unavailable
from lockstep.records import Cause, CauseKind
from lockstep.services.run_reads import RunReads
from lockstep.services.versions import VersionService
from lockstep.spec.expressions import render

log = logging.getLogger(__name__)


def fire_key(fire: Fire) -> str:
    """One run per trigger and fire time, however often the fire is retried or replayed."""
    request = fire.request
    return f"schedule:{request.definition}:{request.trigger}:{fire.schedule_time}"[:200]


class FireActivities:
    def __init__(self, versions: VersionService, runs: RunReads) -> None:
        self._versions = versions
        self._runs = runs

    @activity.defn(name=FIRE_ACTIVITY)
    async def fire(self, fire: Fire) -> str:
        request = fire.request
        context = {"schedule": {"time": fire.schedule_time}}
        params: dict[str, Any] = {k: _render(v, context) for k, v in request.params.items()}
        try:
            run, created = await self._versions.run(
                request.project,
                request.selector,
                params=params,
                cause=Cause(
                    kind=CauseKind.SCHEDULE,
                    trigger=request.trigger,
                    schedule_time=fire.schedule_time,
                ),
                idempotency_key=fire_key(fire),
            )
        except Unavailable:
            raise  # the database or engine is away: Temporal retries this fire
        except LockstepError as exc:
            # refused (bad params, a missing secret, an archived version): trying again gives
            # the same answer, and a fire retrying for ever would hold the schedule (overlap)
            log.warning(
                "trigger.fire_refused", extra={"trigger": request.trigger, "error": str(exc)}
            )
            raise ApplicationError(str(exc), type=exc.kind, non_retryable=True) from exc
        log.info(
            "trigger.fired",
            extra={"trigger": request.trigger, "run_id": run.id, "created": created},
        )
        return run.id

    @activity.defn(name=FINISHED_ACTIVITY)
    async def run_finished(self, project: str, run_id: str) -> bool:
        record = await self._runs.get(project, run_id)
        return record.status in RUN_FINISHED


def _render(value: Any, context: dict[str, Any]) -> Any:
    return render(value, context) if isinstance(value, str) else value
