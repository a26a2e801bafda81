"""What ``/metrics`` counts, read from the database at scrape time: every server of a fleet
answers the same figures, whichever recorded the change (no per-process counters to add up).
Each figure is one grouped query."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from lockstep.clock import utcnow
from lockstep.storage.notify_rows import DeliveryRow
from lockstep.storage.rows import ProjectRow, RunRow, WorkerRow
from lockstep.storage.trigger_rows import TriggerFireRow
from lockstep.storage.workers import LIVE_FOR


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


def _by_project(
    s: Session, status: InstrumentedAttribute[str], project_id: InstrumentedAttribute[str]
) -> dict[tuple[str, str], int]:
    rows = s.execute(
        select(ProjectRow.name, status, func.count())
        .where(ProjectRow.id == project_id)
        .group_by(ProjectRow.name, status)
    )
    return {(str(p), str(st)): int(n) for p, st, n in rows}


def counts(s: Session) -> Counts:
    got = Counts()
    got.runs = _by_project(s, RunRow.status, RunRow.project_id)
    got.fires = _by_project(s, TriggerFireRow.status, TriggerFireRow.project_id)
    got.deliveries = _by_project(s, DeliveryRow.status, DeliveryRow.project_id)
    now = datetime.fromisoformat(utcnow().replace("Z", "+00:00"))
    since = (now - LIVE_FOR).strftime("%Y-%m-%dT%H:%M:%S")
    live = s.execute(
        select(
            WorkerRow.pool, func.count(), func.sum(WorkerRow.capacity), func.sum(WorkerRow.running)
        )
        .where(WorkerRow.stopped_at.is_(None), WorkerRow.last_seen >= since)
        .group_by(WorkerRow.pool)
    )
    got.pools = {str(p): (int(n), int(cap or 0), int(run or 0)) for p, n, cap, run in live}
    return got
