"""``lockstep workers …``."""

from __future__ import annotations

from typing import Annotated

import typer

from lockstep.cli.admin import AsJson, go, print_new_token, show
from lockstep.cli.client import ApiClient

workers = typer.Typer(help="Workers and the pools they serve.", no_args_is_help=True)


@workers.command("list")
def workers_list(
    all_: Annotated[
        bool, typer.Option("--all", help="also stopped workers, and those lost long ago")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Workers: pool, host, labels, capacity, running steps, last report, version, and
    whether each is live (reported in the last 15 s) or lost (not heard from since)."""

    async def run(c: ApiClient) -> None:
        rows = await c.call("GET", "/workers", params={"all": str(all_).lower()})
        if not as_json:
            for row in rows:
                row["labels"] = ",".join(f"{k}={v}" for k, v in row["labels"].items())
                row["last_seen"] = f"{age(row['seen_ago_s'])} ago"
        cols = ["identity", "pool", "host", "labels", "capacity", "running", "last_seen"]
        show(rows, [*cols, "version", "state"], as_json)

    go(run)


@workers.command("token")
def workers_token(
    name: Annotated[str, typer.Argument(help="the worker identity, e.g. gpu-box-1")],
    expires_in_days: Annotated[
        int | None, typer.Option(min=1, max=3650, help="the token stops working then")
    ] = None,
) -> None:
    """A token for workers on another host (LOCKSTEP_TOKEN): the worker API and nothing else.
    Printed once; revoke it with `lockstep tokens revoke ID`."""

    async def run(c: ApiClient) -> None:
        body = {"name": name, "expires_in_days": expires_in_days}
        body = {k: v for k, v in body.items() if v}
        print_new_token(await c.call("POST", "/workers/tokens", json=body))

    go(run)


def age(seconds: int) -> str:
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"
