"""``lockstep run FILE``: validate, snapshot the directory, submit, follow, report."""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from lockstep.cli import context, watch
from lockstep.cli.client import ApiClient, connect
from lockstep.cli.output import FAILED, OK, REJECTED, err, fail, out, print_json
from lockstep.cli.render import print_run
from lockstep.errors import LockstepError
from lockstep.records import RunRecord
from lockstep.settings import Settings
from lockstep.spec.load import load_spec_file
from lockstep.spec.params import parse_cli_params, resolve_params
from lockstep.storage.snapshots import snapshot_directory


def run_command(
    file: Annotated[Path, typer.Argument(help="workflow.yaml (or a directory holding one)")],
    param: Annotated[list[str] | None, typer.Option("-p", "--param", help="key=value")] = None,
    watch_: Annotated[
        bool | None, typer.Option("--watch/--no-watch", help="live view (default on a terminal)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the final run record")] = False,
    idempotency_key: Annotated[
        str | None, typer.Option("--idempotency-key", help="submit at most once per key")
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", help="submit and return at once")] = False,
) -> None:
    """Run a workflow file now; exit 0 if it succeeded, 1 if it failed, 2 if rejected."""
    settings = context.settings()
    live = (sys.stdout.isatty() and not as_json) if watch_ is None else watch_
    try:
        loaded = load_spec_file(file, max_bytes=settings.max_spec_bytes)
        params = resolve_params(
            parse_cli_params(param or [], loaded.spec.params), loaded.spec.params
        )
    except LockstepError as exc:
        fail(exc, REJECTED)
    code = asyncio.run(
        _run(
            settings,
            Path(loaded.file).resolve(),
            loaded.text,
            params,
            live=live,
            as_json=as_json,
            key=idempotency_key,
            detach=detach,
        )
    )
    raise typer.Exit(code)


async def _run(
    settings: Settings,
    path: Path,
    text: str,
    params: dict[str, object],
    *,
    live: bool,
    as_json: bool,
    key: str | None,
    detach: bool,
) -> int:
    try:
        async with connect(settings, engine=True) as client:
            try:
                run = await _submit(client, settings, path, text, params, key)
            except LockstepError as exc:
                fail(exc, REJECTED)
            if detach and not client.embedded:
                _report(run, as_json=as_json, final=False)
                return OK
            if not as_json and not live:
                err.print(f"run [bold]{run.id}[/] started ({len(run.steps)} steps)")
            try:
                run = await watch.wait(client, run.id, live=live)
            except (KeyboardInterrupt, asyncio.CancelledError):
                if not client.embedded:
                    err.print(f"stopped watching; the run goes on: lockstep runs show {run.id}")
                    return FAILED
                err.print("cancelling the run (Ctrl-C again to leave it paused)...")
                await client.cancel(run.id)
                run = await watch.wait(client, run.id, live=False)
    except LockstepError as exc:
        fail(exc, FAILED)
    _report(run, as_json=as_json, final=True)
    return OK if run.status == "succeeded" else FAILED


async def _submit(
    client: ApiClient,
    settings: Settings,
    path: Path,
    text: str,
    params: dict[str, object],
    key: str | None,
) -> RunRecord:
    with tempfile.TemporaryDirectory() as tmp:
        archive = Path(tmp) / "snapshot.tar.gz"
        await asyncio.to_thread(
            snapshot_directory,
            path.parent,
            archive,
            exclude=[settings.home_dir],
            max_bytes=settings.max_snapshot_bytes,
        )
        snapshot = await client.upload_snapshot(archive)
    body = {
        "spec": text,
        "file": path.name,
        "params": params,
        "snapshot": snapshot,
        "source": f"file:{path}",
        "idempotency_key": key,
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
