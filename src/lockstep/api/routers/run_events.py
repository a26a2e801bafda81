"""The runs list's stream: Server-Sent Events, one per run of the project created or changed.

Registered before the runs router, whose ``/runs/{run_id}`` would otherwise take ``events``
for a run id.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import StreamingResponse

from lockstep.api.deps import Access, Services, require, services
from lockstep.api.routers.runs import BASE, Filters
from lockstep.api.streams import follow_runs
from lockstep.clock import format_ts, parse_ts
from lockstep.errors import InvalidRequest

router = APIRouter(tags=["runs"])


def _cursor(value: str) -> str:
    """A change time in the one format; anything else is refused (not silently "now")."""
    try:
        return format_ts(parse_ts(value))
    except ValueError:
        raise InvalidRequest(
            "invalid cursor; pass the id of the last event received (a time like "
            "2026-01-02T03:04:05.000000Z)"
        ) from None


@router.get(BASE + "/events")
async def run_events(
    svc: Annotated[Services, Depends(services)],
    access: Annotated[Access, Depends(require("runs:read"))],
    where: Filters,
    cursor: Annotated[str | None, Query(max_length=40)] = None,
    last_event_id: Annotated[str | None, Header(max_length=40)] = None,
) -> StreamingResponse:
    """A Server-Sent Events stream: an ``event: run`` whose data is the run as the runs list
    shows it, each time a run of the project matching the filters (as the list's, ``status``
    aside: a run changing out of it is sent too) is created or changes. The ``id`` is a change
    time: reconnect with ``Last-Event-ID`` (or ``cursor``) to resume; without one the stream
    starts a few seconds back. A run may be sent twice; the newest event for a run is how it
    is. The server reads the database (one indexed query a second per stream), so every
    server on the same database sees every change."""
    start = last_event_id or cursor
    # a run that changes out of the status asked for is sent too: the client drops its row
    anyway = replace(where, status=None)
    return StreamingResponse(
        follow_runs(svc.runs, access.project, anyway, None if start is None else _cursor(start)),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
