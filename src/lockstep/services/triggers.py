"""Registered triggers: which a definition has (the version $LIVE named), replaced as a whole
when it moves, and a person's pause. Making the Temporal Schedules match is
``triggers/registration``'s; this service reaches them through ``ScheduleControl``."""

from __future__ import annotations

import builtins
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.orm import Session

from lockstep.clock import format_ts
from lockstep.errors import Conflict, EngineUnavailable, InvalidRequest, NotFound
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

    async def matching_times(
        self, schedule_id: str, start: datetime, end: datetime, limit: int
    ) -> list[str]:
        """The Schedule's fire times from ``start`` to ``end``, both included (at most
        ``limit`` + 1)."""
        ...

    async def backfill(self, schedule_id: str, start: datetime, end: datetime) -> None: ...

    async def missed(self, schedule_id: str) -> tuple[str, int] | None:
        """When the Schedule was made and how many fire times it dropped since (None: no
        Schedule)."""
        ...


#: the most fire times one backfill may run
MAX_BACKFILL = 1000
#: an accepted fire younger than this is left to whoever accepted it
PENDING_AGE = 30.0


class TriggerService:
    def __init__(self, db: Database) -> None:
        self._db = db
        #: set by the control plane when it has an engine
        self.control: ScheduleControl | None = None

    async def every(self) -> list[Registered]:
        return await self._db.call(store.every)

    async def replace(
        self,
        project: str,
        definition: str,
        version: int,
        wanted: list[Wanted],
        instance: str | None = None,
    ) -> tuple[list[Registered], list[Registered]]:
        """Record ``wanted`` as the definition's triggers (its file's, or ``instance``'s);
        returns (registered, dropped)."""
        return await self._db.call(
            lambda s: store.replace(
                s,
                reg.definition_row(s, project, definition, archived=True),
                version,
                wanted,
                instance,
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

    async def overview(
        self, project: str, definition: str | None = None
    ) -> builtins.list[dict[str, Any]]:
        """Each registered trigger with its Schedule's fire times (``next_fire``) and, from its
        recorded fires, when it last fired a run (``last_fire``) and its last failed fire
        (``last_error``, ``last_error_at``): for every kind, schedules too."""
        listed = await self.list(project, definition)
        latest = await self._db.call(lambda s: fires.latest(s, project))
        shown = []
        for t in listed:
            times = await self.fire_times(t)
            last = latest.get((t.definition, t.trigger), fires.Latest())
            shown.append(
                {
                    **asdict(t),
                    "next_fire": times["next_fire"],
                    # a run made, not a Schedule's action (that may have been refused)
                    "last_fire": last.fired_at and _seconds(last.fired_at),
                    "last_error": last.error,
                    "last_error_at": last.failed_at and _seconds(last.failed_at),
                }
            )
        return shown

    async def backfill(
        self, project: str, definition: str, trigger: str, start: datetime, end: datetime
    ) -> builtins.list[str]:
        """Fire a schedule trigger now for each of its fire times from ``start`` to ``end``
        (both included), under its overlap policy; returns those times. A time that fired
        already makes no second run (its run is keyed by the time)."""
        got = await self.registered(project, definition, trigger)
        if got.kind != "schedule":
            raise InvalidRequest(
                f"trigger '{trigger}' of '{definition}' is a {got.kind} trigger: only a schedule "
                "has fire times to backfill (fire it once with `lockstep triggers fire`)"
            )
        start, end = _aware(start), _aware(end)
        if end < start:
            raise InvalidRequest(f"--to ({_iso(end)}) is before --from ({_iso(start)})")
        if end > datetime.now(UTC):
            raise InvalidRequest(
                f"--to ({_iso(end)}) is in the future: a backfill runs fire times that have "
                "passed (the schedule fires the coming ones itself)"
            )
        if got.paused:
            why = f"paused by {got.paused_by}" if got.paused_by else "disabled by its version"
            raise Conflict(
                f"trigger '{trigger}' of '{definition}' is {why}: its fires would be skipped; "
                f"resume it first (`lockstep triggers resume {definition} {trigger}`)"
            )
        control = self._control("backfilling a schedule")
        times = await control.matching_times(got.schedule_id, start, end, MAX_BACKFILL)
        if len(times) > MAX_BACKFILL:
            raise InvalidRequest(
                f"{_iso(start)} to {_iso(end)} holds more than {MAX_BACKFILL} fire times of "
                f"'{trigger}': backfill a shorter range, a part at a time"
            )
        if times:
            await control.backfill(got.schedule_id, start, end)
        return times

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

    async def check_missed(self, registered: Registered) -> bool:
        """Record the fire times the trigger's Schedule dropped since it was last looked at
        (the engine was away longer than ``catchup_window``) as a ``missed`` fire, and tell
        the people subscribed to ``schedule.missed``; True when there was news."""
        if self.control is None or not registered.schedule_id:
            return False
        seen = await self.control.missed(registered.schedule_id)
        if seen is None or seen[1] == 0:
            return False
        made, total = seen
        new = NewFire(
            trigger=registered.trigger,
            kind="schedule",
            key=f"missed:{made}:{total}",  # the Schedule's count, once per Schedule and count
            event={"schedule": {"missed_total": total}},
            cause={"kind": "schedule", "trigger": registered.trigger},
        )
        error = (
            f"the engine was away longer than catchup_window: {total} fire time(s) of this "
            "schedule were dropped since it was made (a longer catchup_window keeps them)"
        )

        def _record(s: Session) -> bool:
            row = reg.definition_row(s, registered.project, registered.definition, archived=True)
            fire, fresh = fires.record(s, row, new)
            if fresh:
                done = fires.finish(s, fire.id, fires.MISSED, error=error)
                subject = {**_failed(done), "missed_total": total}
                notifications.happened(s, done.project, "schedule.missed", lambda: subject)
            return fresh

        return await self._db.call(_record)

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

    async def pending_fires(self, min_age: float = PENDING_AGE) -> builtins.list[FireRecord]:
        """Fires accepted at least ``min_age`` seconds ago and still not decided: those a crash
        left (a younger one is most likely being handled right now by whoever accepted it)."""
        before = format_ts(datetime.now(UTC) - timedelta(seconds=min_age))
        return await self._db.call(lambda s: fires.pending(s, before))

    def _control(self, doing: str = "pausing a trigger") -> ScheduleControl:
        if self.control is None:
            raise EngineUnavailable(f"{doing} needs the engine: start `lockstep server`")
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


def _aware(when: datetime) -> datetime:
    """A time without a zone is UTC."""
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _iso(when: datetime) -> str:
    return f"{when:%Y-%m-%dT%H:%M:%SZ}"


def _seconds(stamp: str) -> str:
    """A stored time (microseconds) as listed: to the second, UTC."""
    return stamp[:19] + "Z"
