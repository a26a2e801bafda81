"""Runs: submit, list, show, steps, logs, cancel, retry."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from lockstep.api.deps import Access, Services, require, services
from lockstep.api.streams import attachment, blob_chunks, follow_logs
from lockstep.engine.states import RUN_STATES, STEP_STATES
from lockstep.errors import InvalidRequest, NotFound
from lockstep.outputs_by_reference import owned_marker
from lockstep.records import (
    MAX_CAUSE_FIELD,
    Cause,
    CauseKind,
    RunFilter,
    RunPage,
    RunRecord,
    RunSelection,
    StepRecord,
)
from lockstep.registry.selectors import MAX_SELECTOR
from lockstep.spec.names import MAX_ITEMS, RECORDED_STEP_PATTERN, STEP_ID_PATTERN

router = APIRouter(tags=["runs"])
Svc = Annotated[Services, Depends(services)]
Read = Annotated[Access, Depends(require("runs:read"))]
Write = Annotated[Access, Depends(require("runs:write"))]
BASE = "/projects/{project}/runs"
RUN_ID = r"^[A-Za-z0-9_-]{1,64}$"
SNAPSHOT = r"^snapshots/[a-z0-9-]+/[0-9a-f]{64}\.tar\.gz$"
_SHA256 = re.compile(r"[0-9a-f]{64}")
#: the most step ids a run's ``only``/``from`` may name
MAX_SELECTED = 200


PathRunId = Annotated[str, Path(pattern=RUN_ID, description="a run id, or a unique prefix")]


async def _read_run_id(run_id: PathRunId, svc: Svc, access: Read) -> str:
    """The whole id of the project's run that the path names (its id or a unique prefix)."""
    return await svc.runs.resolve_id(access.project, run_id)


async def _write_run_id(run_id: PathRunId, svc: Svc, access: Write) -> str:
    """The same, for a route that changes runs: the caller's role is checked first."""
    return await svc.runs.resolve_id(access.project, run_id)


#: a run of the caller's project, named by its id or a unique prefix of it
RunId = Annotated[str, Depends(_read_run_id)]
WriteRunId = Annotated[str, Depends(_write_run_id)]


def _state(value: str | None, allowed: tuple[str, ...], what: str) -> str | None:
    """A status filter, in any case; an unknown one is refused naming the valid ones."""
    if value is None or value.lower() in allowed:
        return None if value is None else value.lower()
    raise InvalidRequest(f"unknown {what} status '{value[:20]}'; use one of: {', '.join(allowed)}")


class RunSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    spec: str | None = Field(None, description="the workflow.yaml text", max_length=1024 * 1024)
    selector: str | None = Field(
        None,
        max_length=MAX_SELECTOR,
        description="what to run instead of `spec`: D, D@7, D@$LIVE, D@main, D@<sha>",
    )
    args: list[str] = Field(
        default_factory=list,
        max_length=100,
        description="key=value params typed by the selected version's schema (like -p)",
    )
    file: str = Field("workflow.yaml", max_length=255, description="name used in diagnostics")
    params: dict[str, Any] = Field(default_factory=dict)
    snapshot: str | None = Field(
        None, max_length=200, pattern=r"^snapshots/[a-z0-9-]+/[0-9a-f]{64}\.tar\.gz$"
    )
    source: str = Field("", max_length=1000)
    idempotency_key: str | None = Field(None, min_length=1, max_length=200)
    no_cache: bool = Field(False, description="execute every step, even cacheable ones")
    only: list[Annotated[str, Field(max_length=63)]] | None = Field(
        None, max_length=MAX_SELECTED, description="run these steps and the steps they need"
    )
    from_: list[Annotated[str, Field(max_length=63)]] | None = Field(
        None,
        alias="from",
        max_length=MAX_SELECTED,
        description="run these steps and every step after them (and the steps they need)",
    )
    reuse: str | None = Field(
        None,
        pattern=RUN_ID,
        description="with only/from: take the needed steps' results from this earlier run "
        "(of the same workflow) instead of running them",
    )

    def selection(self) -> RunSelection | None:
        """The part of the graph to run, or None for all of it."""
        if self.only is None and self.from_ is None:
            if self.reuse is not None:
                raise InvalidRequest("'reuse' goes with 'only' or 'from' (which steps to run)")
            return None
        return RunSelection(only=self.only or [], from_=self.from_ or [], reuse=self.reuse)


class LogLineOut(BaseModel):
    step: str
    attempt: int
    ts: str
    stream: str
    text: str


class LogPageOut(BaseModel):
    lines: list[LogLineOut]
    cursor: str
    done: bool
    status: str


@router.post(BASE, status_code=201, response_model=RunRecord)
async def submit_run(body: RunSubmit, svc: Svc, access: Write, response: Response) -> RunRecord:
    if (body.spec is None) == (body.selector is None):
        raise InvalidRequest("give exactly one of 'spec' (a workflow) or 'selector' (e.g. D@$LIVE)")
    if body.spec is None:
        assert body.selector is not None
        if body.snapshot is not None:
            raise InvalidRequest("a run of a version takes no snapshot; drop 'snapshot'")
        record, created = await svc.versions.run(
            access.project,
            body.selector,
            params=body.params,
            args=body.args,
            cause=Cause.manual(access.principal.name),
            idempotency_key=body.idempotency_key,
            no_cache=body.no_cache,
            selection=body.selection(),
        )
        if not created:
            response.status_code = 200
        return record
    if body.args:
        raise InvalidRequest("'args' go with 'selector'; pass a spec's params in 'params'")
    record, created = await svc.runs.submit(
        project=access.project,
        spec_text=body.spec,
        file=body.file,
        params=body.params,
        snapshot=body.snapshot,
        source=body.source,
        idempotency_key=body.idempotency_key,
        cause=Cause.manual(access.principal.name),
        no_cache=body.no_cache,
        selection=body.selection(),
    )
    if not created:
        response.status_code = 200
    return record


def run_filter(
    status: Annotated[str | None, Query(max_length=100, description=", ".join(RUN_STATES))] = None,
    workflow: Annotated[str | None, Query(max_length=63)] = None,
    definition: Annotated[
        str | None, Query(max_length=255, description="runs of this registered definition")
    ] = None,
    trigger: Annotated[
        str | None, Query(max_length=MAX_CAUSE_FIELD, description="runs this trigger fired")
    ] = None,
    cause: Annotated[str | None, Query(max_length=100, description=", ".join(CauseKind))] = None,
    user: Annotated[
        str | None,
        Query(
            max_length=MAX_CAUSE_FIELD,
            description="runs this person (a token's user) started, retried, reran or fired",
        ),
    ] = None,
    prefix: Annotated[
        str | None, Query(pattern=RUN_ID, description="runs whose id starts with this")
    ] = None,
) -> RunFilter:
    """The runs a list shows: those matching every filter given (statuses and causes in any
    case)."""
    return RunFilter(
        status=_state(status, RUN_STATES, "run"),
        workflow=workflow,
        definition=definition,
        trigger=trigger,
        cause=_cause_kind(cause),
        user=user,
        prefix=prefix,
    )


Filters = Annotated[RunFilter, Depends(run_filter)]


@router.get(BASE, response_model=RunPage)
async def list_runs(
    svc: Svc,
    access: Read,
    where: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> RunPage:
    """Runs of the project, newest first, matching every filter given."""
    return await svc.runs.list(access.project, where, limit=limit, cursor=cursor)


def _cause_kind(value: str | None) -> CauseKind | None:
    """A cause filter, in any case; an unknown kind is refused naming the valid ones."""
    if value is None:
        return None
    try:
        return CauseKind(value.lower())
    except ValueError:
        raise InvalidRequest(
            f"unknown cause '{value[:20]}'; use one of: {', '.join(CauseKind)}"
        ) from None


@router.get(BASE + "/{run_id}", response_model=RunRecord)
async def show_run(run_id: RunId, svc: Svc, access: Read) -> RunRecord:
    return await svc.runs.get(access.project, run_id)


@router.get(BASE + "/{run_id}/steps", response_model=dict[str, StepRecord])
async def run_steps(run_id: RunId, svc: Svc, access: Read) -> dict[str, StepRecord]:
    return (await svc.runs.get(access.project, run_id)).steps


@router.get(BASE + "/{run_id}/steps/{step}/items", response_model=list[StepRecord])
async def step_items(
    run_id: RunId,
    step: Annotated[str, Path(pattern=STEP_ID_PATTERN, max_length=63)],
    svc: Svc,
    access: Read,
    status: Annotated[str | None, Query(max_length=100, description=", ".join(STEP_STATES))] = None,
    offset: Annotated[int, Query(ge=0, le=MAX_ITEMS)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[StepRecord]:
    """A page of a for_each step's items in item order (``index``), optionally by status."""
    wanted = _state(status, STEP_STATES, "item")
    return await svc.runs.items(
        access.project, run_id, step, status=wanted, offset=offset, limit=limit
    )


@router.get(BASE + "/{run_id}/outputs/{name}")
async def run_output(
    run_id: RunId,
    name: Annotated[str, Path(max_length=128)],
    svc: Svc,
    access: Read,
    step: Annotated[str | None, Query(pattern=RECORDED_STEP_PATTERN, max_length=80)] = None,
) -> Any:
    """One output of the run (or of ``step``) in full, as JSON: a value stored by reference
    (bigger than 64 KiB; the record shows a preview) is streamed from the store, if it is
    this project's."""
    value = await svc.runs.output(access.project, run_id, step, name)
    ref = owned_marker(value, access.project)
    if ref is None:
        return JSONResponse(value)  # a marker of another project's blob stays data
    key, sha256 = ref.key, ref.sha256
    if not await asyncio.to_thread(svc.blobs.exists, key):
        raise NotFound(f"output '{name[:100]}' of run {run_id} is no longer stored")
    # an attachment: a browser following the UI's link saves it, never shows it in our origin
    headers = {"content-disposition": attachment(f"{name}.json")}
    if _SHA256.fullmatch(sha256):
        headers["x-lockstep-sha256"] = sha256
    return StreamingResponse(
        blob_chunks(svc.blobs, key), media_type="application/json", headers=headers
    )


@router.get(BASE + "/{run_id}/logs", response_model=LogPageOut)
async def run_logs(
    run_id: RunId,
    svc: Svc,
    access: Read,
    step: Annotated[str | None, Query(max_length=80)] = None,
    cursor: Annotated[str | None, Query(max_length=100_000)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    follow: bool = False,
    last_event_id: Annotated[str | None, Header(max_length=100_000)] = None,
) -> Any:
    """A page of log lines; with ``follow=true`` a Server-Sent Events stream of every line
    (``id`` = where to resume, so a reconnect with ``Last-Event-ID`` loses and repeats
    nothing) that ends with an ``end`` event once the run has finished."""
    if not follow:
        return await svc.runs.logs(access.project, run_id, step=step, cursor=cursor, limit=limit)
    start = last_event_id or cursor
    # a missing run or a bad cursor is an error answer, not a stream broken off
    await svc.runs.logs(access.project, run_id, step=step, cursor=start, limit=1)
    return StreamingResponse(
        follow_logs(svc.runs, access.project, run_id, step, start),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )


@router.post(BASE + "/{run_id}/cancel", response_model=RunRecord)
async def cancel_run(run_id: WriteRunId, svc: Svc, access: Write) -> RunRecord:
    return await svc.runs.cancel(access.project, run_id)


@router.post(BASE + "/{run_id}/retry", status_code=201, response_model=RunRecord)
async def retry_run(run_id: WriteRunId, svc: Svc, access: Write) -> RunRecord:
    return await svc.runs.retry(access.project, run_id, user=access.principal.name)


class RerunIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    latest: bool = Field(
        False,
        description="the instance's ref as it is now, not the same commit, and the newest "
        "version of each resource the run read",
    )


@router.post(BASE + "/{run_id}/rerun", status_code=201, response_model=RunRecord)
async def rerun_run(run_id: WriteRunId, body: RerunIn, svc: Svc, access: Write) -> RunRecord:
    """Reproduce a run: the same commit, version and params (or, with ``latest``, the same
    instance and params on its ref's current commit). The new run records which."""
    who = access.principal.name
    if body.latest and (await svc.runs.get(access.project, run_id)).instance is not None:
        return await svc.instances.rerun_latest(access.project, run_id, user=who)
    return await svc.runs.rerun(access.project, run_id, user=who, latest=body.latest)
