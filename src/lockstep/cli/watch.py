"""Following a run until it finishes, with a live table on a terminal."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

from rich.live import Live

from lockstep.cli.client import ApiClient
from lockstep.cli.output import out
from lockstep.cli.render import run_table
from lockstep.engine.states import RUN_FINISHED
from lockstep.records import DAMAGED, RunRecord

#: statuses that never change again; a damaged record's unreadable status is one of them
TERMINAL = RUN_FINISHED | {DAMAGED}


#: the first look again comes this soon (a short run is seen ended at once), the next ones
#: later by half each time, up to ``POLL_S``
FIRST_POLL_S = 0.02
POLL_S = 0.2


def _pauses(most: float) -> Iterator[float]:
    pause = min(FIRST_POLL_S, most)
    while True:
        yield pause
        pause = min(pause * 1.5, most)


async def wait(client: ApiClient, run_id: str, *, live: bool, poll_s: float = POLL_S) -> RunRecord:
    run = await client.get_run(run_id)
    pauses = _pauses(poll_s)
    if not live:
        while run.status not in TERMINAL:
            await asyncio.sleep(next(pauses))
            run = await client.get_run(run_id)
        return run
    with Live(run_table(run), console=out, refresh_per_second=8, transient=False) as view:
        while run.status not in TERMINAL:
            await asyncio.sleep(next(pauses))
            run = await client.get_run(run_id)
            view.update(run_table(run))
    return run
