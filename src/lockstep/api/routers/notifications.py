"""Notifications of a project: channels (where messages go), subscriptions (which events go
to which channel), and the delivery log."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api.deps import Access, Services, require, services
from lockstep.spec.notify_events import CHANNEL_NAME_PATTERN

router = APIRouter(tags=["notifications"])
Svc = Annotated[Services, Depends(services)]
Read = Annotated[Access, Depends(require("notifications:read"))]
Write = Annotated[Access, Depends(require("notifications:write"))]
BASE = "/projects/{project}/notifications"


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=CHANNEL_NAME_PATTERN)
    kind: str = Field(max_length=16, description="webhook, slack or email")
    settings: dict[str, Any] = Field(
        max_length=20, description="the kind's settings; secrets by name only"
    )


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: str = Field(max_length=63)
    events: list[Annotated[str, Field(max_length=40)]] = Field(min_length=1, max_length=20)
    definition: str | None = Field(None, max_length=255)
    instance: str | None = Field(None, max_length=255)
    status: str | None = Field(None, max_length=32)


@router.post(BASE + "/channels", status_code=201)
async def add_channel(body: ChannelIn, svc: Svc, access: Write) -> dict[str, Any]:
    """Save a channel; a URL is checked now (http(s), not a refused address) and at every
    delivery (after DNS resolution, and on every redirect)."""
    got = await svc.notifications.add_channel(
        access.project, body.name, body.kind, body.settings, by=access.principal.name
    )
    return asdict(got)


@router.get(BASE + "/channels")
async def list_channels(svc: Svc, access: Read) -> list[dict[str, Any]]:
    return [asdict(c) for c in await svc.notifications.channels(access.project)]


@router.delete(BASE + "/channels/{name}")
async def remove_channel(
    name: Annotated[str, Path(max_length=63)], svc: Svc, access: Write
) -> dict[str, Any]:
    """Remove a channel with its subscriptions (the delivery log keeps what was sent)."""
    gone = await svc.notifications.remove_channel(access.project, name)
    return {"removed": name, "subscriptions": gone}


@router.post(BASE + "/subscriptions", status_code=201)
async def subscribe(body: SubscriptionIn, svc: Svc, access: Write) -> dict[str, Any]:
    got = await svc.notifications.subscribe(
        access.project,
        body.channel,
        body.events,
        definition=body.definition,
        instance=body.instance,
        status=body.status,
        by=access.principal.name,
    )
    return asdict(got)


@router.get(BASE + "/subscriptions")
async def list_subscriptions(svc: Svc, access: Read) -> list[dict[str, Any]]:
    return [asdict(s) for s in await svc.notifications.subscriptions(access.project)]


@router.delete(BASE + "/subscriptions/{subscription}", status_code=204)
async def unsubscribe(
    subscription: Annotated[str, Path(max_length=64)], svc: Svc, access: Write
) -> Response:
    await svc.notifications.unsubscribe(access.project, subscription)
    return Response(status_code=204)


@router.get(BASE + "/deliveries")
async def list_deliveries(
    svc: Svc,
    access: Read,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    status: Annotated[str | None, Query(max_length=16)] = None,
) -> list[dict[str, Any]]:
    """The delivery log, newest first: channel, event, status (pending, delivered, failed),
    attempts, when the next is due, and the last error."""
    found = await svc.notifications.deliveries(access.project, limit=limit, status=status)
    return [_public(asdict(d)) for d in found]


def _public(row: dict[str, Any]) -> dict[str, Any]:
    """A log row names what it was about; the message itself (masked when sent) is not kept."""
    subject = row.pop("subject")
    row.pop("project", None)
    return {**row, "run_id": subject.get("run_id"), "definition": subject.get("definition")}
