"""Server-Sent Events: a run's log lines as they are written, and a project's runs as they
are created and change."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from urllib.parse import quote

from lockstep.clock import format_ts, parse_ts, utcnow
from lockstep.records import RunFilter
from lockstep.services.blobs import Blobs
from lockstep.services.runs import RunService

#: how often a quiet stream looks for new lines, and sends a comment to keep proxies open
POLL_S = 0.25
KEEPALIVE_S = 15.0
PAGE = 500


async def follow_logs(
    runs: RunService, project: str, run_id: str, step: str | None, cursor: str | None
) -> AsyncIterator[str]:
    """Every line after ``cursor``, then new ones as they come, until the run has finished and
    everything is sent. Pages are bounded, so a huge log never sits in memory."""
    quiet = 0.0
    while True:
        page = await runs.logs(
            project, run_id, step=step, cursor=cursor, limit=PAGE, line_cursors=True
        )
        events = []
        for line in page["lines"]:
            event_id = line.pop("cursor")
            data = json.dumps(line, ensure_ascii=False)
            events.append(f"id: {event_id}\nevent: line\ndata: {data}\n\n")
        if events:  # one write per page, not per line: a busy step's lines come in thousands
            yield "".join(events)
        cursor = page["cursor"]
        if page["done"]:
            yield f"event: end\ndata: {json.dumps({'status': page['status']})}\n\n"
            return
        if page["lines"]:
            quiet = 0.0
            continue
        await asyncio.sleep(POLL_S)
        quiet += POLL_S
        if quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield ": keepalive\n\n"


#: read size when streaming a blob: bounded memory whatever the blob's size
CHUNK = 1024 * 1024


def blob_chunks(blobs: Blobs, key: str) -> Iterator[bytes]:
    """A stored blob in chunks, for a streamed answer (never held in memory whole)."""
    with blobs.open(key) as f:
        while chunk := f.read(CHUNK):
            yield chunk


def attachment(filename: str) -> str:
    """A ``Content-Disposition`` that saves the download as ``filename``: an ASCII fallback
    with every character a header could misread replaced, and the name itself UTF-8 encoded
    (RFC 6266), so no file name can end the header or add another."""
    fallback = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "_" for c in filename)
    encoded = quote(filename, safe="")
    return f"attachment; filename=\"{fallback or 'download'}\"; filename*=UTF-8''{encoded}"


#: how often the runs list's stream asks the database for changed runs
RUNS_POLL_S = 1.0
#: how far back each look reaches before the newest change sent: a change is stamped with
#: its writer's clock before its transaction commits, so one stamped a little earlier (a slow
#: commit, another server's clock a little behind) can appear after a later one was read. A
#: change that becomes visible more than this after its stamp (servers' clocks further apart)
#: is not sent; the list shows it at its next load.
RUNS_LAG_S = 10.0


def _back(ts: str, seconds: float) -> str:
    return format_ts(parse_ts(ts) - timedelta(seconds=seconds))


async def follow_runs(
    runs: RunService, project: str, where: RunFilter, cursor: str | None
) -> AsyncIterator[str]:
    """An event for each run of the project (matching ``where``) created or changed after
    ``cursor`` (a change time; now when None), as they happen. The event's ``id`` is the
    newest change time sent, so a reconnect with ``Last-Event-ID`` resumes there. Each look is
    one indexed query; it reaches ``RUNS_LAG_S`` back, so a change may be sent twice (the same
    run as it is now: a client replaces its row) and one committed late is still sent."""
    newest = cursor or utcnow()
    sent: dict[str, str] = {}  # run id -> the change time last sent, within the lag
    quiet = 0.0
    while True:
        low = _back(newest, RUNS_LAG_S)
        after = (low, "")
        while True:  # pages, so a burst of changes never sits in memory whole
            page = await runs.changed(project, where, after, PAGE)
            events = []
            for at, run in page:
                if sent.get(run.id) != at:
                    sent[run.id] = at
                    newest = max(newest, at)
                    data = run.model_dump_json()
                    events.append(f"id: {newest}\nevent: run\ndata: {data}\n\n")
            if events:  # one write per page, not per run
                quiet = 0.0
                yield "".join(events)
            if len(page) < PAGE:
                break
            after = (page[-1][0], page[-1][1].id)
        sent = {k: v for k, v in sent.items() if v >= low}
        await asyncio.sleep(RUNS_POLL_S)
        quiet += RUNS_POLL_S
        if quiet >= KEEPALIVE_S:
            quiet = 0.0
            yield ": keepalive\n\n"
