"""Server-Sent Events: a run's log lines as they are written."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from urllib.parse import quote

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
