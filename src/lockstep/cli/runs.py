"""``lockstep runs list|show|logs|cancel|retry``."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Coroutine
from typing import Annotated, Any

import typer
from rich.markup import escape

from lockstep.cli import context, watch
from lockstep.cli.client import ApiClient, connect
from lockstep.cli.output import OK, err, fail, out, print_json, run_exit, styled, visible
from lockstep.cli.render import print_run, runs_table
from lockstep.errors import LockstepError
from lockstep.records import CauseKind, RunRecord

app = typer.Typer(help="Inspect and control runs.", no_args_is_help=True)
AsJson = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _guard(coro: Coroutine[Any, Any, int]) -> None:
    try:
        code = asyncio.run(coro)
    except LockstepError as exc:
        fail(exc)
    raise typer.Exit(code or OK)


@app.command("list")
def list_runs(
    status: Annotated[str | None, typer.Option(help="only runs in this status")] = None,
    workflow: Annotated[str | None, typer.Option(help="only runs of this workflow")] = None,
    trigger: Annotated[str | None, typer.Option(help="only runs this trigger started")] = None,
    cause: Annotated[
        str | None, typer.Option(help=f"only runs started so: {', '.join(CauseKind)}")
    ] = None,
    definition: Annotated[
        str | None, typer.Option(help="only runs of versions of this definition")
    ] = None,
    user: Annotated[
        str | None, typer.Option(help="only runs this person started, retried, reran or fired")
    ] = None,
    prefix: Annotated[str | None, typer.Option(help="only runs whose id starts so")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of a previous page")] = None,
    tree: Annotated[bool, typer.Option("--tree", help="child runs under their parents")] = False,
    as_json: AsJson = False,
) -> None:
    """List runs, newest first."""

    async def _go() -> int:
        async with connect(context.settings(), engine=False) as client:
            page = await client.list_runs(
                status=status,
                workflow=workflow,
                trigger=trigger,
                cause=cause,
                definition=definition,
                user=user,
                prefix=prefix,
                limit=limit,
                cursor=cursor,
            )
        if as_json:  # like every listing: an array of objects; the next page's cursor on stderr
            print_json([run.model_dump(mode="json") for run in page.items])
        elif not page.items and any(
            (status, workflow, trigger, cause, definition, user, prefix, cursor)
        ):
            out.print("no runs match")
        elif not page.items:
            out.print("no runs yet; start one with `lockstep run workflow.yaml`")
        else:
            out.print(runs_table(page, tree=tree))
        if page.next_cursor:
            err.print(f"more: --cursor {page.next_cursor}")
        return OK

    _guard(_go())


@app.command("show")
def show(run_id: str, as_json: AsJson = False) -> None:
    """Show one run: steps, attempts, outputs."""

    async def _go() -> int:
        async with connect(context.settings(), engine=False) as client:
            run = await client.get_run(run_id)
        if as_json:
            print_json(run.model_dump(mode="json"))
        else:
            print_run(run)
            _print_attempts(run)
        return OK

    _guard(_go())


def _print_attempts(run: RunRecord) -> None:
    for step_id, step in run.steps.items():
        for att in step.history:
            where = f" on {att.worker}" if att.worker else ""
            code = f" exit {att.exit_code}" if att.exit_code is not None else ""
            why = f" — {att.error}" if att.error else ""
            out.print(
                f"  {escape(step_id)} #{att.attempt}: {att.status}{code}{where}"
                f"{escape(visible(why))}"
            )


@app.command("logs")
def logs(
    run_id: str,
    step: Annotated[str | None, typer.Argument(help="only this step")] = None,
    follow: Annotated[
        bool, typer.Option("-f", "--follow", help="stream live until the run ends")
    ] = False,
    as_json: AsJson = False,
    raw: Annotated[
        bool,
        typer.Option(
            "--raw", help="print each line's text as the step wrote it, control characters too"
        ),
    ] = False,
) -> None:
    """Print a run's logs (all steps, or one step or item like sim[3]); a fan-out's items
    follow their step, each line labelled with its item. Lines on stderr are marked `!`.
    Control characters a step printed are shown spelled out (ESC as \\x1b) unless --raw.
    With -f, exit 0 if the run succeeded and 1 otherwise."""

    async def _go() -> int:
        async with connect(context.settings(), engine=False) as client:
            # in-process, the ASGI transport hands over a response only once it is complete,
            # so an embedded stream would arrive when the run has ended: page and poll instead
            if follow and not client.embedded:
                async with contextlib.aclosing(client.follow_logs(run_id, step=step)) as lines:
                    async for line in lines:
                        _print_line(line, step=step, as_json=as_json, raw=raw)
                return run_exit((await client.get_run(run_id)).status)
            cursor: str | None = None
            while True:
                page = await client.logs(run_id, step=step, cursor=cursor)
                for line in page["lines"]:
                    _print_line(line, step=step, as_json=as_json, raw=raw)
                cursor = page["cursor"]
                if page["lines"]:
                    continue  # there may be more pages already written
                if not follow:
                    return OK
                if page["done"]:
                    return run_exit(page["status"])
                await asyncio.sleep(0.3)

    _guard(_go())


def _print_line(line: dict[str, Any], *, step: str | None, as_json: bool, raw: bool) -> None:
    if as_json:  # JSON Lines: one object a line, as a stream is read
        sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
        sys.stdout.flush()  # a follower reads each line as it comes, even through a pipe
        return
    stream = "[red]![/]" if line["stream"] == "err" else " "
    # the step is said unless one was asked for; an item of it (sim[3]) always is
    label = "" if line["step"] == step else f"[cyan]{escape(line['step'])}[/] "
    if raw:  # as written: the user asked for it, e.g. to replay colours into a pager
        out.print(f"{label}{stream}", end="")
        sys.stdout.flush()
        sys.stdout.write(line["text"] + "\n")
        return
    out.print(f"{label}{stream}{escape(visible(line['text']))}")


@app.command("wait")
def wait(run_id: str, as_json: AsJson = False) -> None:
    """Wait until a run has ended and print its status (with --json, its record): exit 0 if it
    succeeded, 1 otherwise. For scripts that started it with `lockstep run --detach`."""

    async def _go() -> int:
        async with connect(context.settings(), engine=False) as client:
            run = await client.get_run(run_id)
            if run.status not in watch.TERMINAL and not client.embedded:
                run = await watch.wait(client, run.id, live=False)
        if run.status not in watch.TERMINAL:  # without a server, only an engine here moves it
            async with connect(context.settings(), engine=True) as client:
                run = await watch.wait(client, run.id, live=False)
        if as_json:
            print_json(run.model_dump(mode="json"))
        else:
            out.print(f"{run.id} {styled(run.status)}")
            if run.error:
                err.print(f"[red]error[/]: {escape(run.error)}")
        return run_exit(run.status)

    _guard(_go())


@app.command("cancel")
def cancel(
    run_id: str, wait: Annotated[bool, typer.Option(help="wait until it stopped")] = True
) -> None:
    """Cancel a running run: running steps are killed, finally steps still run."""

    async def _go() -> int:
        async with connect(context.settings(), engine=True) as client:
            run = await client.cancel(run_id)
            if wait:
                run = await watch.wait(client, run_id, live=False)
        err.print(f"run {run.id}: {run.status}")
        return OK

    _guard(_go())


async def _follow(
    client: ApiClient, run: RunRecord, note: str, *, live: bool, as_json: bool
) -> int:
    """Follow a run that a command just started, then print its record."""
    if not as_json:
        err.print(f"run [bold]{run.id}[/] {note}")
    run = await watch.wait(client, run.id, live=live)
    if as_json:
        print_json(run.model_dump(mode="json"))
    else:
        print_run(run)
    return run_exit(run.status)


@app.command("retry")
def retry(
    run_id: str,
    watch_: Annotated[bool, typer.Option("--watch/--no-watch")] = False,
    as_json: AsJson = False,
) -> None:
    """Start a new run that reuses what succeeded and re-runs what failed or was cancelled."""

    async def _go() -> int:
        async with connect(context.settings(), engine=True) as client:
            run = await client.retry(run_id)
            return await _follow(client, run, f"retries {run_id}", live=watch_, as_json=as_json)

    _guard(_go())


@app.command("rerun")
def rerun(
    run_id: str,
    latest: Annotated[
        bool,
        typer.Option(
            "--latest",
            help="the instance's ref as it is now and the newest version of each resource "
            "it reads; same params",
        ),
    ] = False,
    watch_: Annotated[bool, typer.Option("--watch/--no-watch")] = False,
    as_json: AsJson = False,
) -> None:
    """Reproduce a run: the same commit, version, params and resource versions, even if the
    branch moved or the resources have newer versions."""

    async def _go() -> int:
        async with connect(context.settings(), engine=True) as client:
            run = await client.rerun(run_id, latest=latest)
            note = f"reruns {run_id} ({run.rerun_policy})"
            return await _follow(client, run, note, live=watch_, as_json=as_json)

    _guard(_go())
