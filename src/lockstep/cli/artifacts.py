"""``lockstep runs artifacts|download|items|output``: what a run produced, beyond its record."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

import typer

from lockstep.cli.admin import AsJson, go, show
from lockstep.cli.client import ApiClient
from lockstep.cli.output import err, print_json


def artifacts_command(run_id: str, as_json: AsJson = False) -> None:
    """Artifacts a run's steps stored: step, name, kind, size, SHA-256, paths."""

    async def run(c: ApiClient) -> None:
        rows = await c.call("GET", f"/projects/{c.project}/runs/{run_id}/artifacts")
        if not as_json:
            for row in rows:
                row["paths"] = ", ".join(row["paths"])
        show(rows, ["step", "name", "kind", "size", "sha256", "paths"], as_json)

    go(run)


def download_command(
    run_id: str,
    step: str,
    name: str,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="file to write (default: its name)")
    ] = None,
) -> None:
    """Download one artifact: the file itself, or NAME.tar.gz for a directory or glob."""

    async def run(c: ApiClient) -> None:
        path = f"/projects/{c.project}/runs/{run_id}/artifacts/{step}/{name}"
        rows = await c.call("GET", f"/projects/{c.project}/runs/{run_id}/artifacts")
        match = [r for r in rows if r["step"] == step and r["name"] == name]
        default = Path(match[0]["paths"][0]).name if match and match[0]["kind"] == "file" else ""
        dest = output or Path(default or f"{name}.tar.gz")
        size = await c.download(path, dest)
        err.print(f"{dest}: {size} bytes")

    go(run)


def items_command(
    run_id: str,
    step: str,
    status: Annotated[str | None, typer.Option(help="only items in this state")] = None,
    as_json: AsJson = False,
) -> None:
    """The items of a for_each step, in item order: status, attempts, error."""

    async def run(c: ApiClient) -> None:
        rows: list[dict[str, Any]] = []
        while True:
            query = {"offset": len(rows), "limit": 1000, **({"status": status} if status else {})}
            page = await c.call(
                "GET", f"/projects/{c.project}/runs/{run_id}/steps/{step}/items", params=query
            )
            rows += page
            if len(page) < 1000:
                break
        for row in rows:
            row["item"] = f"{step}[{row['index']}]"
        show(rows, ["item", "status", "attempts", "duration_s", "error"], as_json)

    go(run)


def output_command(
    run_id: str,
    name: str,
    step: Annotated[str | None, typer.Option(help="a step's output (default: the run's)")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="write it here")] = None,
) -> None:
    """One output in full, as JSON (an output stored by reference is streamed)."""

    async def run(c: ApiClient) -> None:
        path = f"/projects/{c.project}/runs/{run_id}/outputs/{name}"
        query = {"step": step} if step else {}
        if output is not None:
            where = f"{path}?{urlencode(query)}" if query else path
            err.print(f"{output}: {await c.download(where, output)} bytes")
        else:
            broken = (
                f"output '{name}' of run {run_id} is stored but is not valid JSON; "
                "save its bytes with -o FILE to look at them"
            )
            print_json(await c.call("GET", path, params=query, not_json=broken))

    go(run)
