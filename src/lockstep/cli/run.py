"""``lockstep run FILE``: validate, snapshot the directory, submit, follow, report."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated

import httpx
import typer

from lockstep.cli import context, watch
from lockstep.cli.client import ApiClient, connect
from lockstep.cli.output import FAILED, OK, err, fail, out, print_json, run_exit
from lockstep.cli.render import print_run
from lockstep.errors import Conflict, EngineUnavailable, InvalidRequest, LockstepError
from lockstep.records import RunRecord
from lockstep.server.home import HomeBusy
from lockstep.settings import Settings


def run_command(
    target: Annotated[
        str,
        typer.Argument(
            help="workflow.yaml (or a directory holding one), an instance, or a selector: "
            "DEFINITION, DEFINITION@7, DEFINITION@$LIVE, DEFINITION@main"
        ),
    ],
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="key=value")] = None,
    watch_: Annotated[
        bool | None, typer.Option("--watch/--no-watch", help="live view (default on a terminal)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the final run record")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="submit at most once per key")
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", help="submit and return at once")] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="execute every step, even cacheable ones")
    ] = False,
    only: Annotated[
        list[str] | None,
        typer.Option("--only", help="run these steps (a,b) and the steps they need"),
    ] = None,
    from_: Annotated[
        list[str] | None,
        typer.Option("--from", help="run these steps and every step after them"),
    ] = None,
    reuse: Annotated[
        str | None,
        typer.Option(
            "--reuse",
            metavar="RUN",
            help="with --only/--from: take the needed steps' results from this earlier run",
        ),
    ] = None,
) -> None:
    """Run a workflow file, an instance or a version now; exit 0 if it succeeded, 1 if it
    failed, 2 if rejected."""
    settings = context.settings()
    part = _selection(only, from_, reuse)
    live = (sys.stdout.isatty() and not as_json) if watch_ is None else watch_
    submit: Submit
    if (
        Path(target).exists()
        or target.endswith((".yaml", ".yml", ".json"))
        or "/" in target.split("@")[0]
    ):
        # here, not at start-up: only a run of a file reads the spec package
        from lockstep.spec.documents import load_workflow_file, params_schema
        from lockstep.spec.params import parse_cli_params, resolve_params

        try:
            loaded = load_workflow_file(target, max_bytes=settings.max_spec_bytes)
            schema = params_schema(loaded)
            params = resolve_params(parse_cli_params(param or [], schema), schema)
        except LockstepError as exc:
            fail(exc, rejected=True)
        path, text = Path(loaded.file).resolve(), loaded.text

        async def submit(client: ApiClient) -> RunRecord:
            return await _submit(
                client, settings, path, text, params, idempotency_key, no_cache=no_cache, part=part
            )

    else:

        async def submit(client: ApiClient) -> RunRecord:
            return await _submit_named(
                client, target, param or [], idempotency_key, no_cache=no_cache, part=part
            )

    code = asyncio.run(_run(settings, submit, live=live, as_json=as_json, detach=detach))
    raise typer.Exit(code)


Submit = Callable[[ApiClient], Awaitable[RunRecord]]


def _selection(
    only: list[str] | None, from_: list[str] | None, reuse: str | None
) -> dict[str, object]:
    """The submit body's fields for a run of part of the graph (``--only a,b --only c``)."""
    if only is None and from_ is None:
        if reuse is not None:
            wrong = InvalidRequest("--reuse goes with --only or --from (which steps to run)")
            fail(wrong, rejected=True)
        return {}
    part: dict[str, object] = {"reuse": reuse}
    for key, given in (("only", only), ("from", from_)):
        if given is not None:
            part[key] = [sid.strip() for arg in given for sid in arg.split(",") if sid.strip()]
    return part


def _say_needed(run: RunRecord) -> None:
    """A partial run without ``--reuse`` runs the steps its selection needs: say so."""
    chosen = run.selection
    if chosen is not None and chosen.needed and chosen.reuse is None:
        err.print(
            f"also running the steps the selection needs: {', '.join(chosen.needed)} "
            "(--reuse RUN takes their results from an earlier run instead)"
        )


#: how long a run that joined another's engine waits to take it over when that one ends
HANDOVER_S = 60.0


async def _run(
    settings: Settings,
    submit: Submit,
    *,
    live: bool,
    as_json: bool,
    detach: bool,
) -> int:
    run: RunRecord | None = None
    joined, told = False, False
    deadline: float | None = None
    while True:
        try:
            async with connect(settings, engine=True) as client:
                joined, deadline = client.joined, None
                if run is None:
                    try:
                        run = await _submit_once(client, submit)
                    except (KeyboardInterrupt, asyncio.CancelledError):
                        err.print(
                            "interrupted while submitting; if the run started: lockstep runs list"
                        )
                        return FAILED
                    _say_needed(run)
                    if detach and not client.embedded:
                        _report(run, as_json=as_json, final=False)
                        return OK
                    if not as_json and not live:
                        err.print(f"run [bold]{run.id}[/] started ({len(run.steps)} steps)")
                run, code = await _follow(client, run, live=live)
                if code is not None:
                    return code
            break
        except (HomeBusy, EngineUnavailable) as exc:
            if not joined:
                # nothing ran: a busy home refuses the run, it did not fail
                fail(exc, rejected=isinstance(exc, HomeBusy))
            # the `lockstep run` that served this one has ended: take its engine over (the
            # run's history is in the home, so it goes on where it was)
            now = asyncio.get_running_loop().time()
            deadline = deadline or now + HANDOVER_S
            if now > deadline:
                fail(exc)
            if not told:
                err.print("the `lockstep run` serving this home has ended; taking its engine over")
                told = True
            await asyncio.sleep(0.2)
        except LockstepError as exc:
            fail(exc)
    _report(run, as_json=as_json, final=True)
    return run_exit(run.status)


async def _submit_once(client: ApiClient, submit: Submit) -> RunRecord:
    try:
        return await submit(client)
    except EngineUnavailable as exc:
        if client.joined and (
            exc.__cause__ is None or isinstance(exc.__cause__, httpx.ConnectError)
        ):
            raise  # refused or never sent: submit again to whoever serves the home next
        fail(exc, rejected=True)
    except LockstepError as exc:
        fail(exc, rejected=True)


async def _follow(client: ApiClient, run: RunRecord, *, live: bool) -> tuple[RunRecord, int | None]:
    """The run once ended, or an exit code when the user stopped watching."""
    try:
        return await watch.wait(client, run.id, live=live), None
    except (KeyboardInterrupt, asyncio.CancelledError):
        # the same with or without a server: Ctrl-C cancels the run it started (a run meant
        # to go on is started with --detach)
        cancelled = await _cancel(client, run.id)
        return (run, FAILED) if cancelled is None else (cancelled, None)


async def _cancel(client: ApiClient, run_id: str) -> RunRecord | None:
    """Cancel the run after a Ctrl-C and wait until it has stopped; a second Ctrl-C stops
    the waiting (None), not the cancellation."""
    err.print(f"cancelling run {run_id} (Ctrl-C again to stop waiting)...")
    try:
        with contextlib.suppress(Conflict):  # it ended on its own meanwhile
            await client.cancel(run_id)
        return await watch.wait(client, run_id, live=False)
    except (KeyboardInterrupt, asyncio.CancelledError):
        err.print(f"stopped waiting; run {run_id} is being cancelled: lockstep runs wait {run_id}")
        return None


async def _submit_named(
    client: ApiClient,
    target: str,
    args: list[str],
    key: str | None,
    *,
    no_cache: bool,
    part: dict[str, object],
) -> RunRecord:
    """An instance by name, else a selector (a bare name is the definition's $LIVE/latest)."""
    if "@" not in target:
        names = {
            i["name"] for i in await client.call("GET", f"/projects/{client.project}/instances")
        }
        if target in names:
            if key is not None:
                raise InvalidRequest("--idempotency-key is not supported for instance runs yet")
            if part:
                raise InvalidRequest(
                    "--only/--from are not supported for instance runs yet; "
                    "run its definition's selector instead (e.g. DEFINITION@$LIVE)"
                )
            data = await client.call(
                "POST", f"/projects/{client.project}/instances/{target}/runs", json={"params": args}
            )
            return RunRecord.model_validate(data)
    body = {"selector": target, "args": args, "idempotency_key": key, "no_cache": no_cache}
    return await client.submit({**body, **part})


async def _submit(
    client: ApiClient,
    settings: Settings,
    path: Path,
    text: str,
    params: dict[str, object],
    key: str | None,
    *,
    no_cache: bool = False,
    part: dict[str, object] | None = None,
) -> RunRecord:
    from lockstep.services.snapshots import pack_workspace

    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "snapshot.tar.gz"
        await pack_workspace(path.parent, archive, settings)
        snapshot = await client.upload_snapshot(archive)
    body = {
        "spec": text,
        "file": path.name,
        "params": params,
        "snapshot": snapshot,
        "source": f"file:{path}",
        "idempotency_key": key,
        "no_cache": no_cache,
        **(part or {}),
    }
    return await client.submit(body)


def _report(run: RunRecord, *, as_json: bool, final: bool) -> None:
    if as_json:
        print_json(run.model_dump(mode="json"))
        return
    if not final:
        out.print(run.id)
        return
    print_run(run)
