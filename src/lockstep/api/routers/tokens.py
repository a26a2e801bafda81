"""API tokens: created (shown once), listed, revoked."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from lockstep.api.deps import Caller, Services, services
from lockstep.errors import PermissionDenied
from lockstep.storage import identity
from lockstep.storage.rows import TokenRow

router = APIRouter(tags=["tokens"])
Svc = Annotated[Services, Depends(services)]


class TokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9 ._-]+$")
    expires_in_days: int | None = Field(None, ge=1, le=3650)
    user: str | None = Field(
        None,
        description="another user (server administrators only)",
        pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$",
    )


class TokenOut(BaseModel):
    id: str
    name: str
    user: str
    prefix: str
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None
    last_used_at: str | None = None


class NewTokenOut(TokenOut):
    token: str = Field(description="shown this once; only its hash is kept")


@router.post("/tokens", status_code=201, response_model=NewTokenOut)
async def create_token(body: TokenIn, caller: Caller, svc: Svc) -> NewTokenOut:
    if body.user is not None and body.user != caller.name and not caller.superuser:
        raise PermissionDenied("only a server administrator may create tokens for others")
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None

    def _create(s: Session) -> NewTokenOut:
        user = identity.ensure_user(s, body.user or caller.name)
        token, row = identity.create_token(s, user, body.name, expires_in=expires)
        return new_token_out(token, row, user.name)

    return await svc.db.call(_create)


def new_token_out(token: str, row: TokenRow, user: str) -> NewTokenOut:
    """The answer to a token's creation: its record, and the secret this once."""
    return NewTokenOut(
        id=row.id,
        name=row.name,
        user=user,
        prefix=row.prefix,
        created_at=row.created_at,
        expires_at=row.expires_at,
        token=token,
    )


@router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(caller: Caller, svc: Svc) -> list[TokenOut]:
    rows = await svc.db.call(lambda s: identity.list_tokens(s, caller))
    return [TokenOut(**r.__dict__) for r in rows]


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(
    token_id: Annotated[str, Path(pattern=r"^t_[0-9a-f]{16}$")], caller: Caller, svc: Svc
) -> Response:
    await svc.db.call(lambda s: identity.revoke_token(s, caller, token_id))
    return Response(status_code=204)
