"""Registered triggers: which a definition has (the version $LIVE named), replaced as a whole
when it moves. Syncing them to Temporal Schedules is ``triggers/registration``'s."""

from __future__ import annotations

from sqlalchemy.orm import Session

from lockstep.storage import registry as reg
from lockstep.storage import triggers as store
from lockstep.storage.database import Database
from lockstep.storage.triggers import Registered, Wanted

__all__ = ["Registered", "TriggerService", "Wanted"]


class TriggerService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def replace(
        self, project: str, definition: str, version: int, wanted: list[Wanted]
    ) -> list[Registered]:
        """Record ``wanted`` as the definition's triggers; returns those no longer wanted."""
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
