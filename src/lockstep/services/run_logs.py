"""Reading a run's logs: every attempt of every step, and of every fan-out item (``sim[3]``),
in pages that resume from a cursor (the offset reached in each attempt's log)."""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

from lockstep.engine.states import RUN_TRANSITIONS
from lockstep.errors import InvalidRequest
from lockstep.records import AttemptRecord, RunRecord, StepRecord
from lockstep.storage.logs import LogStore

#: a page of a fan-out step's items, by offset: ``(step, offset, limit) -> items``
ItemPages = Callable[[str, int, int], Awaitable[list[StepRecord]]]
#: one item of a fan-out step, ``STEP[i]``, or NotFound
ItemLookup = Callable[[str], Awaitable[dict[str, StepRecord]]]
_ITEMS_PAGE = 1000


async def read_logs(
    logs: LogStore,
    run: RunRecord,
    items: ItemPages,
    item: ItemLookup,
    *,
    step: str | None,
    cursor: str | None,
    limit: int,
    line_cursors: bool,
) -> dict[str, Any]:
    """Log lines after ``cursor``: steps in order, each step's items in item order, each one's
    attempts in order. A line's ``step`` is the step, or the item as ``STEP[i]``.
    ``line_cursors``: each line also says where to resume right after it."""
    offsets = _decode_offsets(cursor)
    lines: list[dict[str, Any]] = []
    #: every log asked for was read to its end (a page cut by ``limit`` or bytes was not)
    read_all = True
    async with contextlib.aclosing(_attempts(run, items, item, step)) as attempts:
        async for label, att in attempts:
            key = att.log_key
            page = logs.read(key, offset=offsets.get(key, 0), limit=limit - len(lines))
            for i, line in enumerate(page.lines):
                entry = {
                    "step": label,
                    "attempt": att.attempt,
                    "ts": line.ts,
                    "stream": line.stream,
                    "text": line.text,
                }
                if line_cursors:
                    # where to resume right after this line (a live stream's event id)
                    end = page.lines[i + 1].offset if i + 1 < len(page.lines) else None
                    entry["cursor"] = _encode_offsets(
                        {**offsets, key: page.next_offset if end is None else end}
                    )
                lines.append(entry)
            offsets[key] = page.next_offset
            read_all = read_all and page.at_end
            if len(lines) >= limit:
                read_all = False  # attempts after this one are not read yet
                break
    # done only when nothing more can come: the run has ended (or is in a state that never
    # moves, like a damaged record's) and every log was read to its end
    done = run.status not in RUN_TRANSITIONS and read_all
    return {"lines": lines, "cursor": _encode_offsets(offsets), "done": done, "status": run.status}


async def _attempts(
    run: RunRecord, items: ItemPages, item: ItemLookup, step: str | None
) -> AsyncGenerator[tuple[str, AttemptRecord], None]:
    """Every attempt whose log is asked for, labelled with its step or item."""
    steps = run.steps
    if step is not None:
        steps = {step: steps[step]} if step in steps else await item(step)
    for sid, rec in steps.items():
        for att in rec.history:
            yield sid, att
        if not rec.items:
            continue
        offset = 0
        while True:
            page = await items(sid, offset, _ITEMS_PAGE)
            for it in page:
                for att in it.history:
                    yield f"{sid}[{it.index}]", att
            offset += len(page)
            if len(page) < _ITEMS_PAGE:
                break


def _encode_offsets(offsets: dict[str, int]) -> str:
    return base64.urlsafe_b64encode(json.dumps(offsets).encode()).decode()


def _decode_offsets(cursor: str | None) -> dict[str, int]:
    if not cursor:
        return {}
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, int) and v >= 0 for k, v in data.items()
        ):
            raise ValueError
    except ValueError as exc:
        raise InvalidRequest("invalid log cursor; pass the cursor of a previous page") from exc
    return data
