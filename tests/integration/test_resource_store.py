"""The resource store on each dialect: versions numbered from 1 with their hash and writer,
a step attempt's write recorded once however often it is delivered, each version's trigger
event written with it, and writers at the same moment (on PostgreSQL: two transactions truly
at once; on SQLite: two connections, the busy timeout making one wait) getting consecutive
numbers with none lost."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from sqlalchemy import select

from lockstep.errors import NotFound
from lockstep.storage import resources as store
from lockstep.storage import trigger_events
from lockstep.storage.database import Database


def _made(db: Database, name: str = "app-image") -> None:
    with db.session() as s:
        store.create(s, "default", name, None, "the app's image", "ann")


def test_versions_are_numbered_hashed_and_attributed(db: Database) -> None:
    _made(db)
    with db.session() as s:
        one = store.append(
            s, "default", "app-image", {"tag": "v1"}, store.Writer(author="ann"), "first"
        )
        step = store.Writer(run_id="r-1", step="build", attempt=2)
        two = store.append(s, "default", "app-image", {"tag": "v2"}, step)
    assert (one.number, one.author, one.message, one.run_id) == (1, "ann", "first", None)
    assert (two.number, two.run_id, two.step, two.attempt, two.author) == (
        2,
        "r-1",
        "build",
        2,
        None,
    )
    assert one.digest == store.digest({"tag": "v1"}) != two.digest
    with db.session() as s:
        assert store.version(s, "default", "app-image", None).data == {"tag": "v2"}
        assert store.version(s, "default", "app-image", 1).data == {"tag": "v1"}
        assert [v.number for v in store.history(s, "default", "app-image")] == [2, 1]
        assert [v.number for v in store.written_by(s, "r-1")] == [2]
        assert store.get(s, "default", "app-image").latest == 2
        events = [e for e in trigger_events.pending(s) if e.kind == trigger_events.RESOURCE]
    assert [e.data for e in events] == [
        {"name": "app-image", "version": 1, "previous": None},
        {"name": "app-image", "version": 2, "previous": 1},
    ]


def test_a_step_attempts_write_delivered_twice_is_one_version(db: Database) -> None:
    _made(db)
    writer = store.Writer(run_id="r-9", step="build", attempt=1)
    with db.session() as s:
        first = store.append(s, "default", "app-image", {"tag": "v1"}, writer)
    with db.session() as s:
        again = store.append(s, "default", "app-image", {"tag": "v1"}, writer)
        retried = store.append(
            s, "default", "app-image", {"tag": "v1"}, store.Writer("", "r-9", "build", 2)
        )
    assert again.number == first.number == 1 and retried.number == 2
    with db.session() as s:
        assert [v.number for v in store.history(s, "default", "app-image")] == [2, 1]


def test_unknown_resources_and_versions_are_not_found(db: Database) -> None:
    _made(db)
    with db.session() as s, pytest.raises(NotFound, match="resource 'nope' not found"):
        store.version(s, "default", "nope", None)
    with db.session() as s, pytest.raises(NotFound, match="has no version yet"):
        store.version(s, "default", "app-image", None)
    with db.session() as s:
        store.append(s, "default", "app-image", {}, store.Writer(author="ann"))
    with (
        db.session() as s,
        pytest.raises(NotFound, match="has no version 7; its versions are 1 to 1"),
    ):
        store.version(s, "default", "app-image", 7)


def test_writers_at_the_same_moment_get_consecutive_versions(db: Database) -> None:
    _made(db)
    writers, each = 4, 5
    start = threading.Barrier(writers)
    failures: list[BaseException] = []

    def write(n: int) -> None:
        try:
            start.wait()
            for i in range(each):
                with db.session() as s:
                    store.append(
                        s, "default", "app-image", {"w": n, "i": i}, store.Writer(author=f"w{n}")
                    )
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []
    with db.session() as s:
        versions = store.history(s, "default", "app-image")
        rows: list[Any] = list(s.scalars(select(store.ResourceVersionRow.data_json)))
    assert sorted(v.number for v in versions) == list(range(1, writers * each + 1))
    assert len(rows) == writers * each  # none lost, none overwritten
    assert {(v.data["w"], v.data["i"]) for v in versions} == {
        (n, i) for n in range(writers) for i in range(each)
    }


def test_the_recorder_writes_a_steps_versions_with_its_success_once(db: Database) -> None:
    from lockstep.engine.events import Event
    from lockstep.records import Cause, CauseKind
    from lockstep.storage import recorder
    from lockstep.storage.runs import NewRun, create_run

    _made(db)
    new = NewRun(
        id="r-rec",
        project="default",
        workflow="w",
        spec_digest="d",
        spec_text="",
        source="",
        workspace={},
        params={},
        steps=[("build", False), ("lint", False)],
        cause=Cause(kind=CauseKind.MANUAL, user="ann"),
    )
    with db.session() as s:
        create_run(s, new)
    at = "2026-12-07T00:00:00Z"
    started = Event(kind="attempt_started", at=at, step="build", attempt=1, log_key="k")
    done = Event(
        kind="step_finished",
        at=at,
        step="build",
        attempt=1,
        status="succeeded",
        outputs={"tag": "v2"},
        writes={"app-image": {"tag": "v2"}},
    )
    failed = Event(
        kind="step_finished", at=at, step="lint", status="failed", writes={"app-image": {"x": 1}}
    )
    for _ in range(2):  # a replayed batch: the step already succeeded, nothing more is written
        with db.session() as s:
            recorder.apply_events(s, "r-rec", [started, done, failed])
    with db.session() as s:
        [version] = store.history(s, "default", "app-image")
        assert (version.number, version.data) == (1, {"tag": "v2"})
        assert (version.run_id, version.step, version.attempt) == ("r-rec", "build", 1)
        assert [v.number for v in store.written_by(s, "r-rec")] == [1]
