"""Projects (the tenancy boundary) and their members."""

from __future__ import annotations

from lockstep.auth.principal import Principal
from lockstep.auth.roles import Role
from lockstep.storage import identity
from lockstep.storage.database import Database
from lockstep.storage.rows import ProjectRow


class ProjectService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def exists(self, project: str) -> bool:
        return await self._db.call(lambda s: s.get(ProjectRow, project) is not None)

    async def visible(self, caller: Principal) -> list[tuple[str, str]]:
        """(project, role) for every project the caller may see."""
        return await self._db.call(lambda s: identity.visible_projects(s, caller))

    async def create(self, name: str, owner: Principal) -> None:
        """A new project; its owner becomes its admin. Conflict if the name is taken."""
        await self._db.call(lambda s: identity.create_project(s, name, owner))

    async def members(self, project: str) -> list[tuple[str, str]]:
        """(user, role) of every member, by name."""
        return await self._db.call(lambda s: identity.members(s, project))

    async def set_member(self, project: str, user: str, role: Role) -> bool:
        """Give ``user`` ``role`` in the project; True when they were not a member before."""
        return await self._db.call(lambda s: identity.set_member(s, project, user, role))

    async def remove_member(self, project: str, user: str) -> None:
        await self._db.call(lambda s: identity.remove_member(s, project, user))
