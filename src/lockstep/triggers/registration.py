"""Registering a definition's triggers: when ``$LIVE`` moves to a version, that version's
triggers are recorded as the definition's, each running that version by number (explicit: a
later tag move re-registers them for the new version). Schedule triggers also become (or
update) their Temporal Schedules; the other kinds wait for their event (``triggers/dispatch``).

The table of registered triggers (``services/triggers``) is written first and says which
Schedules should exist; a trigger the new version no longer has loses its Schedule.
"""

from __future__ import annotations

import logging

from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError

from lockstep.engine.triggered import FireRequest
from lockstep.errors import EngineUnavailable
from lockstep.registry.selectors import LIVE
from lockstep.services.triggers import Registered, TriggerService, Wanted
from lockstep.services.versions import VersionService
from lockstep.spec.documents import load_workflow
from lockstep.spec.models import WorkflowSpec
from lockstep.spec.triggers import ScheduleTrigger
from lockstep.triggers import schedules

log = logging.getLogger(__name__)


class TriggerRegistry:
    def __init__(
        self, client: Client, queue: str, versions: VersionService, triggers: TriggerService
    ) -> None:
        self._client = client
        self._queue = queue
        self._versions = versions
        self._triggers = triggers

    async def tag_moved(self, project: str, definition: str, tag: str, number: int) -> list[str]:
        """Bring the Schedules of ``definition`` to version ``number`` when ``$LIVE`` moved
        there; returns the schedule ids it made or updated."""
        if tag != LIVE:
            return []
        got = await self._versions.resolve(project, f"{definition}@{number}")
        loaded = load_workflow(got.text, got.file)
        spec = getattr(loaded, "spec", None)
        # a state machine has no triggers: key yet; going live removes the earlier version's
        triggers = spec.triggers if isinstance(spec, WorkflowSpec) else {}
        timed = {
            tid: trigger
            for tid, trigger in triggers.items()
            if isinstance(trigger, ScheduleTrigger)
        }
        requests = {
            tid: FireRequest(
                project=project,
                definition=definition,
                trigger=tid,
                selector=f"{definition}@{number}",
                params=dict(trigger.params),
            )
            for tid, trigger in timed.items()
        }
        wanted = [
            Wanted(
                trigger=tid,
                kind=trigger.kind,
                spec=trigger.model_dump(mode="json"),
                # only a schedule has a Temporal Schedule; an event trigger waits for its event
                schedule_id=schedules.schedule_id(project, definition, tid) if tid in timed else "",
            )
            for tid, trigger in triggers.items()
        ]
        registered, gone = await self._triggers.replace(project, definition, number, wanted)
        paused = {r.trigger: r.paused_by is not None for r in registered}
        made: list[str] = []
        try:
            for tid, trigger in timed.items():
                made.append(
                    await schedules.put(
                        self._client, requests[tid], trigger, self._queue, paused=paused[tid]
                    )
                )
                log.info("trigger.registered", extra={"trigger": tid, "definition": definition})
            for old in gone:
                if not old.schedule_id:
                    continue
                await schedules.remove(self._client, old.schedule_id)
                log.info(
                    "trigger.removed", extra={"trigger": old.trigger, "definition": definition}
                )
            # a pause, resume or another tag move may have written its row between our read
            # and our put: whatever the rows say now wins
            put = {tid: (number, paused[tid]) for tid in timed}
            for row in await self._triggers.list(project, definition):
                if row.schedule_id and put.get(row.trigger) != (
                    row.version,
                    row.paused_by is not None,
                ):
                    await self._put_row(row)
        except RPCError as exc:
            raise EngineUnavailable(
                f"the triggers of '{definition}' were not all scheduled: {exc.message}; "
                "the server schedules them at its next start, or move the tag again"
            ) from exc
        return made

    async def reconcile(self) -> int:
        """Make the Schedules match the registered triggers (a registration whose Temporal
        half failed, a Schedule lost, one left by an archived definition or a failed removal);
        returns how many were put or deleted. At server start."""
        done = 0
        rows = await self._triggers.every()
        for row in rows:
            if not row.schedule_id:
                continue
            try:
                await self._put_row(row)
                done += 1
            except RPCError as exc:
                log.warning(
                    "trigger.reconcile_failed", extra={"trigger": row.trigger, "error": exc.message}
                )
        try:
            done += await self._remove_orphans({r.schedule_id for r in rows if r.schedule_id})
        except RPCError as exc:
            log.warning("trigger.orphans_failed", extra={"error": exc.message})
        return done

    async def _remove_orphans(self, wanted: set[str]) -> int:
        """Delete the trigger Schedules no registered trigger names. Only this server's: one
        whose fires go to another queue belongs to another lockstep on the same engine."""
        removed = 0
        async for listed in await self._client.list_schedules():
            if not listed.id.startswith(schedules.PREFIX) or listed.id in wanted:
                continue
            handle = self._client.get_schedule_handle(listed.id)
            action = (await handle.describe()).schedule.action
            if not isinstance(action, ScheduleActionStartWorkflow) or (
                action.task_queue != self._queue
            ):
                continue
            # a tag move since our read may have registered it: the rows as they are now decide
            if listed.id in {r.schedule_id for r in await self._triggers.every()}:
                continue
            await schedules.remove(self._client, listed.id)
            log.info("trigger.orphan_removed", extra={"schedule": listed.id})
            removed += 1
        return removed

    async def _put_row(self, row: Registered) -> None:
        request = FireRequest(
            project=row.project,
            definition=row.definition,
            trigger=row.trigger,
            selector=f"{row.definition}@{row.version}",
            params=dict(row.spec.get("params") or {}),
        )
        trigger = ScheduleTrigger.model_validate(row.spec)
        await schedules.put(
            self._client, request, trigger, self._queue, paused=row.paused_by is not None
        )
