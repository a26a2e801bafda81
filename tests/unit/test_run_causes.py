"""Why a run started: a cause is complete for its kind, written once and then refused any
change by the database itself, read back even from runs recorded before causes (migration
0012), and a damaged one costs only itself."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError
from sqlalchemy import text, update
from sqlalchemy.exc import DatabaseError

from lockstep.records import Cause, CauseKind
from lockstep.storage import migrate
from lockstep.storage import run_records as records
from lockstep.storage import runs as store
from lockstep.storage.database import Database
from lockstep.storage.rows import RunRow


def _new(run_id: str, cause: Cause) -> store.NewRun:
    return store.NewRun(
        id=run_id,
        project="default",
        workflow="wf",
        spec_digest="d",
        spec_text="name: wf",
        source="",
        workspace={},
        params={},
        steps=[("a", False)],
        cause=cause,
    )


@pytest.mark.parametrize(
    ("fields", "missing"),
    [
        ({"kind": "retry"}, "names the run it repeats"),
        ({"kind": "rerun", "user": "ann"}, "names the run it repeats"),
        ({"kind": "schedule", "schedule_time": "2026-01-01T00:00:00Z"}, "names its trigger"),
        ({"kind": "webhook", "delivery": "d-1"}, "names its trigger"),
        ({"kind": "nightly"}, "Input should be"),
    ],
)
def test_an_incomplete_cause_is_refused(fields: dict[str, str], missing: str) -> None:
    with pytest.raises(ValidationError, match=missing):
        Cause.model_validate(fields)


def test_each_kind_is_stored_and_read_back_whole(db: Database) -> None:
    causes = [
        Cause.manual("alice"),
        Cause.repeat(CauseKind.RETRY, "r-old", "bob"),
        Cause(kind=CauseKind.SCHEDULE, trigger="nightly", schedule_time="2026-03-01T02:00:00Z"),
        Cause(kind=CauseKind.WEBHOOK, trigger="hook", delivery="d-7", payload_digest="sha256:ab"),
        Cause(kind=CauseKind.UPSTREAM, trigger="after-build", upstream_run="r-build"),
    ]
    with db.session() as s:
        for n, cause in enumerate(causes):
            store.create_run(s, _new(f"r{n}", cause))
    with db.session() as s:
        got = [records.to_record(s, store.get_row(s, "default", f"r{n}")) for n in range(5)]
    assert [r.cause for r in got] == causes
    assert [r.triggered_by for r in got] == [
        "user:alice",
        "user:bob",
        "trigger:nightly",
        "trigger:hook",
        "trigger:after-build",
    ]
    assert got[1].retry_of == "r-old" and got[0].retry_of is None


def test_filters_by_trigger_and_kind_return_only_matching_runs(db: Database) -> None:
    fired = Cause(kind=CauseKind.SCHEDULE, trigger="nightly", schedule_time="2026-03-01T02:00Z")
    with db.session() as s:
        store.create_run(s, _new("r-man", Cause.manual("alice")))
        store.create_run(s, _new("r-sch", fired))
        store.create_run(s, _new("r-other", fired.model_copy(update={"trigger": "hourly"})))
    with db.session() as s:

        def ids(**filters: object) -> list[str]:
            page = store.list_runs(s, "default", **filters)  # type: ignore[arg-type]
            return sorted(r.id for r in page.items)

        assert ids(trigger="nightly") == ["r-sch"]
        assert ids(cause=CauseKind.SCHEDULE) == ["r-other", "r-sch"]
        assert ids(cause=CauseKind.MANUAL) == ["r-man"]
        assert ids(cause=CauseKind.MANUAL, trigger="nightly") == []
        listed = store.list_runs(s, "default", trigger="nightly").items[0]
        assert listed.cause == fired


def test_a_cause_once_written_is_refused_any_change(db: Database) -> None:
    with db.session() as s:
        store.create_run(s, _new("r1", Cause.manual("alice")))
    for change in (
        {"cause_kind": "schedule"},
        {"cause_trigger": "forged"},
        {"cause_json": '{"kind":"manual","user":"mallory"}'},
    ):
        with pytest.raises(DatabaseError, match="run causes are immutable"), db.session() as s:
            s.execute(update(RunRow).where(RunRow.id == "r1").values(**change))
    with db.session() as s:
        assert records.to_record(s, store.get_row(s, "default", "r1")).cause == Cause.manual(
            "alice"
        )
        # the rest of an unfinished run still moves
        s.execute(update(RunRow).where(RunRow.id == "r1").values(status="running"))


@pytest.mark.parametrize(
    ("stored", "problem"),
    [("{not json", "cause is not JSON"), ('{"kind":"telepathy"}', "cause is not a cause")],
)
def test_a_damaged_cause_costs_only_that_field(db: Database, stored: str, problem: str) -> None:
    with db.session() as s:
        store.create_run(s, _new("r1", Cause.manual("alice")))
    on_runs = " ON runs" if db.engine.dialect.name == "postgresql" else ""
    with db.engine.begin() as raw:  # what a damaged disk or hand does
        raw.execute(text(f"DROP TRIGGER runs_cause_immutable{on_runs}"))
        raw.execute(text("UPDATE runs SET cause_json = :c WHERE id = 'r1'"), {"c": stored})
    with db.session() as s:
        run = records.to_record(s, store.get_row(s, "default", "r1"))
        listed = store.list_runs(s, "default").items[0]
    assert run.cause is None and run.status == "queued" and run.workflow == "wf"
    assert run.error is not None and problem in run.error
    assert listed.cause is None and listed.error is not None and problem in listed.error


def test_runs_of_a_database_older_than_causes_read_as_manual_retry_and_rerun(
    old_database: Callable[[str], str],
) -> None:
    url = old_database("0011")
    older = Database(url)  # what that lockstep wrote
    with older.engine.begin() as raw:
        raw.execute(
            text("INSERT INTO projects (id, name, created_at) VALUES ('default', 'default', 't')")
        )
        for run_id, status, by, retry_of, rerun_of, at in (
            ("r-1", "failed", "user:alice", None, None, "2026-01-01T00:00:01Z"),
            ("r-2", "succeeded", "user:bob", "r-1", None, "2026-01-01T00:00:02Z"),
            ("r-3", "succeeded", "", None, "r-2", "2026-01-01T00:00:03Z"),
        ):
            raw.execute(
                text(
                    "INSERT INTO runs (id, project_id, workflow, status, spec_digest, spec_text,"
                    " source, workspace_json, params_json, triggered_by, retry_of, rerun_of,"
                    " created_at) VALUES (:id, 'default', 'wf', :status, 'd', 'name: wf', '',"
                    " '{}', '{}', :by, :retry_of, :rerun_of, :at)"
                ),
                {"id": run_id, "status": status, "by": by, "retry_of": retry_of}
                | {"rerun_of": rerun_of, "at": at},
            )
    older.close()
    db = Database(url)
    db.open()  # migrated to the head: finished (frozen) rows are read, never rewritten
    with db.session() as s:
        causes = {r.id: r.cause for r in store.list_runs(s, "default").items}
        assert causes == {
            "r-1": Cause.manual("alice"),
            "r-2": Cause.repeat(CauseKind.RETRY, "r-1", "bob"),
            "r-3": Cause.repeat(CauseKind.RERUN, "r-2", None),
        }
        assert records.to_record(s, store.get_row(s, "default", "r-1")).cause == causes["r-1"]
        by_kind = {
            kind: [r.id for r in store.list_runs(s, "default", cause=kind).items]
            for kind in (CauseKind.MANUAL, CauseKind.RETRY, CauseKind.RERUN, CauseKind.SCHEDULE)
        }
    assert by_kind == {
        CauseKind.MANUAL: ["r-1"],
        CauseKind.RETRY: ["r-2"],
        CauseKind.RERUN: ["r-3"],
        CauseKind.SCHEDULE: [],
    }
    with db.engine.begin() as conn:
        assert migrate.current_revisions(conn) == {migrate.HEAD_REVISION}
    db.close()
