"""Who is calling: resolved once per request from its token."""

from __future__ import annotations

from dataclasses import dataclass, field

from lockstep.auth.roles import Role


@dataclass(frozen=True)
class Principal:
    user_id: str
    name: str
    superuser: bool = False
    worker: bool = False  # a worker identity: the worker API only
    token_id: str | None = None
    roles: dict[str, Role] = field(default_factory=dict)  # project id -> role

    def role_in(self, project: str) -> Role | None:
        if self.superuser:
            return Role.admin
        return self.roles.get(project)


#: the caller in --no-auth mode and in-process embedded commands (same user, same machine)
LOCAL = Principal(user_id="local", name="local", superuser=True)
