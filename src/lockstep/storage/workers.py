"""The worker registry: each worker reports itself every few seconds while it can take steps;
a worker not heard from for ``LIVE_FOR`` is lost (killed, its host gone, or cut off from the
engine), and one that stopped says so."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from lockstep.clock import parse_ts, utcnow
from lockstep.records import WorkerReport
from lockstep.storage.rows import WorkerRow

#: how often a worker reports, and after how long without a report it counts as gone
REPORT_EVERY_S = 5.0
LIVE_FOR = timedelta(seconds=3 * REPORT_EVERY_S)
#: a lost worker stays in the default listing this long, so that its loss is seen
SHOW_LOST_FOR = timedelta(hours=1)


def report(s: Session, r: WorkerReport) -> None:
    now = utcnow()
    row = s.get(WorkerRow, r.identity)
    if row is None:
        row = WorkerRow(identity=r.identity, started_at=now)
        s.add(row)
    row.pool, row.host, row.pid = r.pool, r.host, r.pid
    row.labels_json = json.dumps(r.labels, sort_keys=True)
    row.capacity, row.running, row.version = r.capacity, r.running, r.version
    row.last_seen = now
    row.stopped_at = now if r.stopped else None
    row.clock_skew_ms = _skew_ms(r.sent_at, now)


#: a skew past this is recorded as this (a report's clock is the worker's word, nothing more)
_MAX_SKEW_MS = 10 * 365 * 86_400_000


def _skew_ms(sent_at: str | None, now: str) -> int | None:
    if not sent_at:
        return None
    try:
        sent = parse_ts(sent_at)
        if sent.tzinfo is None:
            return None
        got = parse_ts(now)
    except ValueError:
        return None
    ms = int((sent - got).total_seconds() * 1000)
    return max(-_MAX_SKEW_MS, min(_MAX_SKEW_MS, ms))


def _live(row: WorkerRow, now: datetime) -> bool:
    seen = parse_ts(row.last_seen)
    return row.stopped_at is None and now - seen <= LIVE_FOR


def live_pools(s: Session) -> set[str]:
    now = parse_ts(utcnow())
    return {r.pool for r in s.scalars(select(WorkerRow)) if _live(r, now)}


def list_workers(s: Session, *, include_gone: bool = False) -> list[dict[str, Any]]:
    now = parse_ts(utcnow())
    out = []
    for r in s.scalars(select(WorkerRow).order_by(WorkerRow.pool, WorkerRow.identity)):
        live = _live(r, now)
        age = now - parse_ts(r.last_seen)
        state = "live" if live else ("stopped" if r.stopped_at else "lost")
        if not include_gone and (state == "stopped" or age > SHOW_LOST_FOR):
            continue
        out.append(
            {
                "identity": r.identity,
                "pool": r.pool,
                "host": r.host,
                "pid": r.pid,
                "labels": json.loads(r.labels_json),
                "capacity": r.capacity,
                "running": r.running,
                "version": r.version,
                "started_at": r.started_at,
                "last_seen": r.last_seen,
                "seen_ago_s": max(0, int(age.total_seconds())),
                "clock_skew_ms": r.clock_skew_ms,
                "state": state,
            }
        )
    return out


def known_pools(s: Session) -> set[str]:
    """Every pool a worker has ever served (live or not): the pools a placement may name."""
    return set(s.scalars(select(WorkerRow.pool).distinct()))


def pool_capacity(s: Session) -> dict[str, tuple[int, int]]:
    """Per pool with a live worker: (live workers, free slots = capacity - running)."""
    now = parse_ts(utcnow())
    found: dict[str, tuple[int, int]] = {}
    for r in s.scalars(select(WorkerRow)):
        if _live(r, now):
            workers, free = found.get(r.pool, (0, 0))
            found[r.pool] = (workers + 1, free + max(0, r.capacity - r.running))
    return found
