"""Deliveries to webhook triggers. No lockstep token: the trigger's secret authenticates each
one (``triggers/webhooks``); the push hook of connected repositories is ``/hooks/git``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import JSONResponse

from lockstep.api.deps import Services, services

if TYPE_CHECKING:
    # the webhook machinery (CEL, the spec's models) loads with the server, not with every
    # process that builds the API (a `runs list` reads records through it)
    from lockstep.triggers.webhooks import Delivery, Received

router = APIRouter(tags=["hooks"])
Svc = Annotated[Services, Depends(services)]
# a malformed name cannot be registered: it is unknown, answered as every unknown trigger is
Project = Annotated[str, Path(max_length=100)]
DefName = Annotated[str, Path(max_length=100)]
TriggerId = Annotated[str, Path(max_length=100)]
InstanceName = Annotated[str, Path(max_length=100)]


@router.post("/hooks/{project}/{definition}/{trigger}", status_code=202)
async def deliver(
    project: Project, definition: DefName, trigger: TriggerId, request: Request, svc: Svc
) -> JSONResponse:
    """A delivery to a webhook trigger, signed (``auth: hmac``) or with its bearer token
    (``auth: token``). Recorded before the answer: 202 for a new delivery id, 200 naming the
    first fire (and its run) for one seen before."""
    received = await svc.webhooks.receive(project, definition, trigger, await _delivery(request))
    return _answer(received)


@router.post("/hooks/{project}/{definition}/{instance}/{trigger}", status_code=202)
async def deliver_to_instance(
    project: Project,
    definition: DefName,
    instance: InstanceName,
    trigger: TriggerId,
    request: Request,
    svc: Svc,
) -> JSONResponse:
    """A delivery to a webhook trigger of an instance's own ``triggers:`` (it runs that
    instance); the same answers."""
    from lockstep.triggers.instance_triggers import registered_id

    received = await svc.webhooks.receive(
        project, definition, registered_id(instance, trigger), await _delivery(request)
    )
    return _answer(received)


@router.post("/hooks/{project}/{trigger}", status_code=202)
async def deliver_short(
    project: Project, trigger: TriggerId, request: Request, svc: Svc
) -> JSONResponse:
    """The same, when ``trigger`` is the id of one webhook trigger in the project (409 when
    several definitions have one: use the long form)."""
    received = await svc.webhooks.receive(project, None, trigger, await _delivery(request))
    return _answer(received)


async def _delivery(request: Request) -> Delivery:
    from lockstep.triggers.webhooks import Delivery

    return Delivery(body=await request.body(), headers=dict(request.headers.items()))


def _answer(received: Received) -> JSONResponse:
    fire = received.fire
    body: dict[str, Any] = {"delivery": received.delivery, "fire": fire.id, "status": fire.status}
    if fire.run_id:
        body["run_id"] = fire.run_id
    if fire.error:
        body["error"] = fire.error
    return JSONResponse(body, status_code=202 if received.new else 200)
