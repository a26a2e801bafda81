"""``lockstep doctor``: the server checks its deployment end to end and says what to fix."""

from __future__ import annotations

from typing import Any

import typer
from rich.markup import escape

from lockstep.cli.admin import AsJson, go
from lockstep.cli.client import ApiClient
from lockstep.cli.output import out, print_json, visible


def doctor_command(as_json: AsJson = False) -> None:
    """Check the engine and its namespace, the database's migrations, the artifact store, a
    live worker in every pool and the workers' versions (administrators); exit 1 if any fails."""

    async def run(c: ApiClient) -> None:
        report: dict[str, Any] = await c.call("GET", "/doctor")
        if as_json:
            print_json(report)
        else:
            for check in report["checks"]:
                mark = "[green]✓[/]" if check["ok"] else "[red]✗[/]"
                out.print(
                    f"{mark} {escape(visible(check['name']))}: {escape(visible(check['detail']))}"
                )
        if not report["ok"]:
            raise typer.Exit(1)

    go(run)
