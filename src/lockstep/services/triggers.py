"""Registered triggers: which a definition has (the version $LIVE named), replaced as a whole
when it moves, and a person's pause. Making the Temporal Schedules match is
``triggers/registration``'s; this service reaches them through ``ScheduleControl``."""

from __future__ import annotations

import builtins
from typing import Protocol

from sqlalchemy.orm import Session

from lockstep.errors import EngineUnavailable, NotFound
from lockstep.storage import notifications
from lockstep.storage import registry as reg
from lockstep.storage import trigger_events as events
from lockstep.storage import trigger_fires as fires
from lockstep.storage import triggers as store
from lockstep.storage.database import Database
from lockstep.storage.trigger_events import TriggerEvent
from lockstep.storage.trigger_fires import FireRecord, NewFire
from lockstep.storage.triggers import Registered, Wanted

#: what became of a fire (accepted, fired, filtered, skipped, failed) and the kinds of outbox
#: event (a run finished, a tag moved, a version was made): the stores' words, named once
fire_status = fires
event_kinds = events

__all__ = [
    "FireRecord",
    "NewFire",
    "Registered",
    "ScheduleControl",
    "TriggerEvent",
    "TriggerService",
    "Wanted",
    "event_kinds",
    "fire_status",
]


class ScheduleControl(Protocol):
    """Pausing the Schedule of a trigger (``triggers/schedules`` over Temporal)."""

    async def pause(self, schedule_id: str, note: str) -> None: ...

    async def unpause(self, schedule_id: str, note: str) -> None: ...

    async def fire_times(self, schedule_id: str) -> dict[str, str | None]:
        """``next_fire`` and ``last_fire`` (UTC), None when unknown."""
        ...


class TriggerService:
    def __init__(self, db: Database) -> None:
        self._db = db
        #: set by the control plane when it has an engine
        self.control: ScheduleControl | None = None

    async def every(self) -> list[Registered]:
        return await self._db.call(store.every)

    async def replace(
        self, project: str, definition: str, version: int, wanted: list[Wanted]
    ) -> tuple[list[Registered], list[Registered]]:
        """Record ``wanted`` as the definition's triggers; returns (registered, dropped)."""
        return await self._db.call(
            lambda s: store.replace(
                s, reg.definition_row(s, project, definition, archived=True), version, wanted
            )
        )

    async def list(self, project: str, definition: str | None = None) -> list[Registered]:
        def _list(s: Session) -> list[Registered]:
            row = reg.definition_row(s, project, definition) if definition else None
            return store.listed(s, project, row)

        return await self._db.call(_list)

    async def fire_times(self, registered: Registered) -> dict[str, str | None]:
        """When the trigger fires next and fired last (None without an engine)."""
        if self.control is None or not registered.schedule_id:
            return {"next_fire": None, "last_fire": None}
        return await self.control.fire_times(registered.schedule_id)

    async def pause(self, project: str, definition: str, trigger: str, by: str) -> Registered:
        """Stop a trigger's fires until resumed, whatever versions go live meanwhile."""
        got = await self._set(project, definition, trigger, by)
        if got.schedule_id:  # an event trigger's pause is its row: dispatch reads it
            await self._control().pause(got.schedule_id, f"paused by {by}")
        return got

    async def resume(self, project: str, definition: str, trigger: str, by: str) -> Registered:
        """Undo a pause (a trigger its version disables stays still)."""
        got = await self._set(project, definition, trigger, None)
        if got.schedule_id and not got.paused:
            await self._control().unpause(got.schedule_id, f"resumed by {by}")
        return got

    async def registered(self, project: str, definition: str, trigger: str) -> Registered:
        """One registered trigger (NotFound when the live version has no such trigger)."""
        for row in await self.list(project, definition):
            if row.trigger == trigger:
                return row
        raise NotFound(
            f"trigger '{trigger}' of '{definition}' is not registered "
            "(the triggers of the version $LIVE names are)"
        )

    async def of_kind(self, project: str, kind: str) -> builtins.list[Registered]:
        """The project's registered triggers of ``kind`` (who listens for an event)."""
        return [r for r in await self.list(project) if r.kind == kind]

    async def record_fire(
        self, project: str, definition: str, new: NewFire
    ) -> tuple[FireRecord, bool]:
        """Record an event for a trigger once per key: (the fire, whether it is new)."""
        return await self._db.call(
            lambda s: fires.record(s, reg.definition_row(s, project, definition), new)
        )

    async def finish_fire(
        self, fire_id: str, status: str, *, run_id: str | None = None, error: str | None = None
    ) -> FireRecord:
        def _finish(s: Session) -> FireRecord:
            done = fires.finish(s, fire_id, status, run_id=run_id, error=error)
            if status == fires.FAILED:  # people may want to know: `trigger.failed`
                notifications.happened(s, done.project, "trigger.failed", lambda: _failed(done))
            return done

        return await self._db.call(_finish)

    async def history(
        self, project: str, definition: str, trigger: str, limit: int = 50
    ) -> builtins.list[FireRecord]:
        await self.registered(project, definition, trigger)
        return await self._db.call(
            lambda s: fires.history(s, reg.definition_row(s, project, definition), trigger, limit)
        )

    async def pending_events(self) -> builtins.list[TriggerEvent]:
        """The outbox: changes triggers listen for, committed with the change, not yet handed on."""
        return await self._db.call(events.pending)

    async def event_done(self, event_id: int) -> None:
        await self._db.call(lambda s: events.done(s, event_id))

    async def event_failed(self, event_id: int) -> None:
        """Count one more failed hand-over of the event (it stays for the next round)."""
        await self._db.call(lambda s: events.failed(s, event_id))

    async def pending_fires(self) -> builtins.list[FireRecord]:
        return await self._db.call(fires.pending)

    def _control(self) -> ScheduleControl:
        if self.control is None:
            raise EngineUnavailable("pausing a trigger needs the engine: start `lockstep server`")
        return self.control

    async def _set(self, project: str, definition: str, trigger: str, by: str | None) -> Registered:
        return await self._db.call(
            lambda s: store.set_paused(s, reg.definition_row(s, project, definition), trigger, by)
        )


def _failed(fire: FireRecord) -> dict[str, str | None]:
    return {
        "definition": fire.definition,
        "trigger": fire.trigger,
        "kind": fire.kind,
        "fire": fire.id,
        "key": fire.key,
        "error": fire.error,
    }
