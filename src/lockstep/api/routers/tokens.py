"""API tokens: created (shown once), listed, revoked."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api.deps import Caller, Services, services
from lockstep.services.tokens import NewToken

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
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    new = await svc.tokens.create(caller, body.name, user=body.user, expires_in=expires)
    return new_token_out(new)


def new_token_out(new: NewToken) -> NewTokenOut:
    """The answer to a token's creation: its record, and the secret this once."""
    return NewTokenOut(**new.info.__dict__, token=new.token)


@router.get("/tokens", response_model=list[TokenOut])
async def list_tokens(caller: Caller, svc: Svc) -> list[TokenOut]:
    return [TokenOut(**r.__dict__) for r in await svc.tokens.list(caller)]


@router.delete("/tokens/{token_id}", status_code=204)
async def revoke_token(
    token_id: Annotated[str, Path(pattern=r"^t_[0-9a-f]{16}$")], caller: Caller, svc: Svc
) -> Response:
    await svc.tokens.revoke(caller, token_id)
    return Response(status_code=204)
