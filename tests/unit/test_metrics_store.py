"""The step histograms ``/metrics`` serves, read from the attempts' records on each dialect:
run time (started -> finished on the worker) and queue wait (scheduled -> started), by pool."""

from __future__ import annotations

from lockstep.engine.events import Event
from lockstep.engine.types import StepResult
from lockstep.records import Cause
from lockstep.storage import metrics, recorder
from lockstep.storage import runs as store
from lockstep.storage.database import Database


def _attempt(step: str, pool: str, scheduled: str, started: str, finished: str) -> list[Event]:
    ran = StepResult(ok=True, exit_code=0, worker="w", started_at=started, finished_at=finished)
    return [
        Event("attempt_started", scheduled, step=step, attempt=1, log_key=step, pool=pool),
        Event("attempt_finished", finished, step=step, attempt=1, status="succeeded", result=ran),
    ]


def test_step_durations_and_queue_waits_by_pool(db: Database) -> None:
    with db.session() as s:
        store.create_run(
            s,
            store.NewRun(
                id="r1", project="default", workflow="wf", spec_digest="d", spec_text="name: wf",
                source="", workspace={}, params={}, steps=[("a", False), ("b", False),
                ("c", False)], cause=Cause.manual("ann"),
            ),
        )  # fmt: skip
        recorder.apply_events(
            s,
            "r1",
            [
                Event("run_started", "2026-01-01T00:00:00Z"),
                # 0.2 s waiting, 0.03 s running
                *_attempt(
                    "a",
                    "default",
                    "2026-01-01T00:00:00.000000Z",
                    "2026-01-01T00:00:00.200000Z",
                    "2026-01-01T00:00:00.230000Z",
                ),
                # 4 s waiting, 45 s running
                *_attempt(
                    "b",
                    "default",
                    "2026-01-01T00:00:01.000000Z",
                    "2026-01-01T00:00:05.000000Z",
                    "2026-01-01T00:00:50.000000Z",
                ),
                *_attempt(
                    "c",
                    "gpu",
                    "2026-01-01T00:01:00.000000Z",
                    "2026-01-01T00:01:00.010000Z",
                    "2026-01-01T00:01:02.000000Z",
                ),
            ],
        )
        got = metrics.counts(s)

    def at(h: metrics.Histogram, bound: float) -> int:
        return h.buckets[metrics.BUCKETS.index(bound)]

    run = got.durations["default"]
    assert (run.count, round(run.total, 2)) == (2, 45.03)
    assert (at(run, 0.05), at(run, 30.0), at(run, 60.0)) == (1, 1, 2)  # cumulative
    wait = got.queue_waits["default"]
    assert (wait.count, round(wait.total, 2)) == (2, 4.2)
    assert (at(wait, 0.1), at(wait, 0.25), at(wait, 2.5), at(wait, 5.0)) == (0, 1, 1, 2)
    gpu = got.durations["gpu"]
    assert (gpu.count, at(gpu, 1.0), at(gpu, 2.5)) == (1, 0, 1)
