"""Upstream triggers: when a run of definition X finishes, every live upstream trigger of the
same project that listens for X (its instance, its endings) fires its own definition with the
finished run under ``upstream`` — ``${{ upstream.outputs.image }}`` reads X's outputs.

One fire per upstream run (the fire key is the run id), however often the finish is handed
on. A chain of upstream-fired runs stops at a depth limit: the fire that would go deeper is
recorded failed, with no run. Cycles among live definitions are refused before ``$LIVE``
moves (``triggers/registration.check_tag_move``); the limit guards what that cannot see.
"""

from __future__ import annotations

import logging
from typing import Any

from lockstep.errors import NotFound
from lockstep.records import Cause, CauseKind, RunRecord
from lockstep.services.run_reads import RunReads
from lockstep.services.triggers import TriggerService
from lockstep.services.triggers import fire_status as status
from lockstep.triggers.dispatch import Dispatcher, Event

log = logging.getLogger(__name__)


class UpstreamSource:
    def __init__(
        self, runs: RunReads, triggers: TriggerService, dispatcher: Dispatcher, max_depth: int
    ) -> None:
        self._runs = runs
        self._triggers = triggers
        self._dispatcher = dispatcher
        self._max_depth = max_depth

    async def run_finished(self, project: str, run_id: str) -> int:
        """Hand a finished run to the triggers listening for it; returns how many fired."""
        try:
            run = await self._runs.get(project, run_id)
        except NotFound:
            return 0
        listening = [
            t for t in await self._triggers.of_kind(project, "upstream") if _listens(t.spec, run)
        ]
        if not listening:
            return 0
        depth = await self.depth(run) + 1
        data = event_data(run)
        for trigger in listening:
            event = Event(
                key=run.id,
                data=data,
                cause=Cause(kind=CauseKind.UPSTREAM, trigger=trigger.trigger, upstream_run=run.id),
            )
            # accepted and not decided: new, or left so by a crash or an outage (its run's
            # idempotency key keeps a second decision to the same run)
            fire, _ = await self._dispatcher.accept(trigger, event)
            if fire.status != status.ACCEPTED:
                continue
            if depth > self._max_depth:
                why = f"upstream chain deeper than {self._max_depth}"
                await self._triggers.finish_fire(fire.id, status.FAILED, error=why)
                log.warning(
                    "trigger.upstream_too_deep",
                    extra={"trigger": trigger.trigger, "definition": trigger.definition},
                )
            else:
                await self._dispatcher.handle(fire)
        return len(listening)

    async def depth(self, run: RunRecord) -> int:
        """How many upstream-fired runs lead to ``run`` (0: a person or another source started
        it). Read no further than the limit needs."""
        depth = 0
        while run.cause is not None and run.cause.kind == CauseKind.UPSTREAM:
            depth += 1
            if depth > self._max_depth or not run.cause.upstream_run:
                break
            try:
                run = await self._runs.get(run.project, run.cause.upstream_run)
            except NotFound:
                break
        return depth


def _listens(spec: dict[str, Any], run: RunRecord) -> bool:
    if spec.get("definition") != run.definition:
        return False
    if spec.get("instance") is not None and spec["instance"] != run.instance:
        return False
    return run.status in (spec.get("status") or ["succeeded"])


def event_data(run: RunRecord) -> dict[str, Any]:
    """What ``upstream.*`` reads: the finished run."""
    return {
        "run_id": run.id,
        "definition": run.definition,
        "version": run.version,
        "instance": run.instance,
        "status": run.status,
        "outputs": run.outputs or {},
    }
