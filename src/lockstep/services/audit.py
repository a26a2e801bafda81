"""The audit log: every mutating API call appended (who, with which token, what, from where,
how it ended), and read by administrators. Bodies are never recorded."""

from __future__ import annotations

from typing import Any

from lockstep.auth.principal import Principal
from lockstep.storage import identity
from lockstep.storage.database import Database


class AuditService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def append(
        self,
        *,
        project: str | None,
        principal: Principal | None,
        action: str,
        address: str | None,
        status: int,
        detail: dict[str, object] | None = None,
    ) -> None:
        await self._db.call(
            lambda s: identity.append_audit(
                s,
                project=project,
                principal=principal,
                action=action,
                address=address,
                status=status,
                detail=detail,
            )
        )

    async def read(
        self, project: str | None, *, limit: int, before: int | None = None
    ) -> list[dict[str, Any]]:
        """The newest entries first (``before``: older than that entry's id, the next page);
        ``project`` None: the whole server's."""
        return await self._db.call(
            lambda s: identity.read_audit(s, project, limit=limit, before=before)
        )
