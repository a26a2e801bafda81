"""``lockstep runs artifacts`` and ``lockstep runs download``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lockstep.cli.admin import AsJson, go, show
from lockstep.cli.client import ApiClient
from lockstep.cli.output import err


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
