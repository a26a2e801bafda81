"""API tokens: who a bearer token stands for, and tokens created (shown once), listed and
revoked. Only a token's hash is kept."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from lockstep.auth.principal import Principal
from lockstep.errors import PermissionDenied
from lockstep.storage import identity
from lockstep.storage.database import Database
from lockstep.storage.identity import TokenInfo
from lockstep.storage.rows import TokenRow, UserRow


@dataclass(frozen=True)
class NewToken:
    """A token just created: its record, and the secret this once."""

    info: TokenInfo
    token: str


class TokenService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def authenticate(self, token: str) -> Principal:
        """The principal a bearer token stands for; Unauthenticated for anything else."""
        return await self._db.call(lambda s: identity.authenticate(s, token))

    async def create(
        self, caller: Principal, name: str, *, user: str | None, expires_in: timedelta | None
    ) -> NewToken:
        """A token for the caller, or (server administrators only) for another ``user``."""
        if user is not None and user != caller.name and not caller.superuser:
            raise PermissionDenied("only a server administrator may create tokens for others")

        def create(s: Session) -> NewToken:
            return _new(s, identity.ensure_user(s, user or caller.name), name, expires_in)

        return await self._db.call(create)

    async def create_for_worker(self, name: str, *, expires_in: timedelta | None) -> NewToken:
        """A token of the worker identity ``worker.NAME``: it may use the worker API only."""

        def create(s: Session) -> NewToken:
            return _new(s, identity.ensure_worker(s, name), "worker", expires_in)

        return await self._db.call(create)

    async def list(self, caller: Principal) -> builtins.list[TokenInfo]:
        """The caller's tokens (a server administrator's: everyone's)."""
        return await self._db.call(lambda s: identity.list_tokens(s, caller))

    async def revoke(self, caller: Principal, token_id: str) -> None:
        await self._db.call(lambda s: identity.revoke_token(s, caller, token_id))


def _new(s: Session, user: UserRow, name: str, expires_in: timedelta | None) -> NewToken:
    token, row = identity.create_token(s, user, name, expires_in=expires_in)
    return NewToken(info=_info(row, user.name), token=token)


def _info(row: TokenRow, user: str) -> TokenInfo:
    return TokenInfo(
        id=row.id,
        name=row.name,
        user=user,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        last_used_at=row.last_used_at,
    )
