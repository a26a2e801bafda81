"""Following a run until it finishes, with a live table on a terminal."""

from __future__ import annotations

import asyncio

from rich.live import Live

from lockstep.cli.client import ApiClient
from lockstep.cli.output import out
from lockstep.cli.render import run_table
from lockstep.engine.states import RUN_FINISHED
from lockstep.records import DAMAGED, RunRecord

#: statuses that never change again; a damaged record's unreadable status is one of them
TERMINAL = RUN_FINISHED | {DAMAGED}


async def wait(client: ApiClient, run_id: str, *, live: bool, poll_s: float = 0.2) -> RunRecord:
    run = await client.get_run(run_id)
    if not live:
        while run.status not in TERMINAL:
            await asyncio.sleep(poll_s)
            run = await client.get_run(run_id)
        return run
    with Live(run_table(run), console=out, refresh_per_second=8, transient=False) as view:
        while run.status not in TERMINAL:
            await asyncio.sleep(poll_s)
            run = await client.get_run(run_id)
            view.update(run_table(run))
    return run
