"""What ``/metrics`` counts, read from the database at scrape time: every server of a fleet
answers the same figures, whichever recorded the change (no per-process counters to add up).
Each figure is one grouped query."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import TIMESTAMP, ColumnElement, case, cast, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from lockstep.clock import parse_ts, utcnow
from lockstep.storage.notify_rows import DeliveryRow
from lockstep.storage.rows import AttemptRow, ProjectRow, RunRow, WorkerRow
from lockstep.storage.trigger_rows import TriggerFireRow
from lockstep.storage.workers import LIVE_FOR

#: upper bounds (seconds) of the step histograms' buckets, from a `true` step to an hour's job
BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


@dataclass
class Histogram:
    """Observations by upper bound (``le`` of each of ``BUCKETS``, cumulative), their count
    and their sum."""

    buckets: list[int]
    count: int
    total: float


@dataclass
class Counts:
    #: (project, status) -> runs
    runs: dict[tuple[str, str], int] = field(default_factory=dict)
    #: pool -> (live workers, their step slots, slots in use)
    pools: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    #: (project, status) -> trigger fires
    fires: dict[tuple[str, str], int] = field(default_factory=dict)
    #: (project, status) -> notification deliveries
    deliveries: dict[tuple[str, str], int] = field(default_factory=dict)
    #: pool -> finished attempts' run time (the worker's start to its end)
    durations: dict[str, Histogram] = field(default_factory=dict)
    #: pool -> attempts' wait in the queue (scheduled to started on a worker)
    queue_waits: dict[str, Histogram] = field(default_factory=dict)


def _by_project(
    s: Session, status: InstrumentedAttribute[str], project_id: InstrumentedAttribute[str]
) -> dict[tuple[str, str], int]:
    rows = s.execute(
        select(ProjectRow.name, status, func.count())
        .where(ProjectRow.id == project_id)
        .group_by(ProjectRow.name, status)
    )
    return {(str(p), str(st)): int(n) for p, st, n in rows}


def _seconds(s: Session, later: ColumnElement[str], earlier: ColumnElement[str]) -> Any:
    """``later - earlier`` in seconds, of two timestamps as the records write them."""
    if s.get_bind().dialect.name == "sqlite":
        return (func.julianday(later) - func.julianday(earlier)) * 86400.0
    stamp = TIMESTAMP(timezone=True)
    return func.extract("epoch", cast(later, stamp) - cast(earlier, stamp))


def _histograms(s: Session, later: Any, earlier: Any) -> dict[str, Histogram]:
    """One grouped query: attempts with both timestamps, by pool, into ``BUCKETS``."""
    took = _seconds(s, later, earlier)
    rows = s.execute(
        select(
            AttemptRow.pool,
            func.count(),
            func.sum(took),
            *(func.sum(case((took <= bound, 1), else_=0)) for bound in BUCKETS),
        )
        .where(AttemptRow.pool.is_not(None), later.is_not(None), earlier.is_not(None))
        .group_by(AttemptRow.pool)
    )
    return {
        str(pool): Histogram([int(b or 0) for b in bounds], int(n), max(float(total or 0), 0.0))
        for pool, n, total, *bounds in rows
    }


def counts(s: Session) -> Counts:
    got = Counts()
    got.runs = _by_project(s, RunRow.status, RunRow.project_id)
    got.fires = _by_project(s, TriggerFireRow.status, TriggerFireRow.project_id)
    got.deliveries = _by_project(s, DeliveryRow.status, DeliveryRow.project_id)
    now = parse_ts(utcnow())
    since = (now - LIVE_FOR).strftime("%Y-%m-%dT%H:%M:%S")
    live = s.execute(
        select(
            WorkerRow.pool, func.count(), func.sum(WorkerRow.capacity), func.sum(WorkerRow.running)
        )
        .where(WorkerRow.stopped_at.is_(None), WorkerRow.last_seen >= since)
        .group_by(WorkerRow.pool)
    )
    got.pools = {str(p): (int(n), int(cap or 0), int(run or 0)) for p, n, cap, run in live}
    got.durations = _histograms(s, AttemptRow.finished_at, AttemptRow.started_at)
    got.queue_waits = _histograms(s, AttemptRow.started_at, AttemptRow.scheduled_at)
    return got
