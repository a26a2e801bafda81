"""Registered triggers: which a definition has (the version $LIVE named), replaced as a whole
when it moves, and a person's pause. Making the Temporal Schedules match is
``triggers/registration``'s; this service reaches them through ``ScheduleControl``."""

from __future__ import annotations

from typing import Protocol

from sqlalchemy.orm import Session

from lockstep.errors import EngineUnavailable
from lockstep.storage import registry as reg
from lockstep.storage import triggers as store
from lockstep.storage.database import Database
from lockstep.storage.triggers import Registered, Wanted

__all__ = ["Registered", "ScheduleControl", "TriggerService", "Wanted"]


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
        if self.control is None:
            return {"next_fire": None, "last_fire": None}
        return await self.control.fire_times(registered.schedule_id)

    async def pause(self, project: str, definition: str, trigger: str, by: str) -> Registered:
        """Stop a trigger's fires until resumed, whatever versions go live meanwhile."""
        control = self._control()
        got = await self._set(project, definition, trigger, by)
        await control.pause(got.schedule_id, f"paused by {by}")
        return got

    async def resume(self, project: str, definition: str, trigger: str, by: str) -> Registered:
        """Undo a pause (a trigger its version disables stays still)."""
        control = self._control()
        got = await self._set(project, definition, trigger, None)
        if not got.paused:
            await control.unpause(got.schedule_id, f"resumed by {by}")
        return got

    def _control(self) -> ScheduleControl:
        if self.control is None:
            raise EngineUnavailable("pausing a trigger needs the engine: start `lockstep server`")
        return self.control

    async def _set(self, project: str, definition: str, trigger: str, by: str | None) -> Registered:
        return await self._db.call(
            lambda s: store.set_paused(s, reg.definition_row(s, project, definition), trigger, by)
        )
