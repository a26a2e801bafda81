"""The registered triggers of a definition (SQLite and PostgreSQL): replaced as a whole when
$LIVE moves, telling which were dropped, and listed per project and definition."""

from __future__ import annotations

import pytest

from lockstep.errors import NotFound
from lockstep.storage import registry as reg
from lockstep.storage import trigger_fires as fires
from lockstep.storage import triggers as store
from lockstep.storage import versions as versions_store
from lockstep.storage.database import Database
from lockstep.storage.trigger_fires import NewFire
from lockstep.storage.triggers import Wanted


@pytest.fixture
def db(db: Database) -> Database:
    with db.session() as s:
        versions_store.create_api_definition(s, "default", "svc", None)
        versions_store.create_api_definition(s, "default", "other", None)
    return db


def _want(tid: str, every: float) -> Wanted:
    return Wanted(trigger=tid, kind="schedule", spec={"every": every}, schedule_id=f"sched-{tid}")


def test_replacing_the_triggers_returns_the_dropped_ones_and_keeps_definitions_apart(
    db: Database,
) -> None:
    with db.session() as s:
        svc, other = (
            reg.definition_row(s, "default", "svc"),
            reg.definition_row(s, "default", "other"),
        )
        assert store.replace(s, svc, 1, [_want("nightly", 60), _want("hourly", 3600)])[1] == []
        assert store.replace(s, other, 4, [_want("nightly", 5)])[1] == []
        store.set_paused(s, svc, "nightly", "user:ann")
    with db.session() as s:
        svc = reg.definition_row(s, "default", "svc")
        kept, dropped = store.replace(s, svc, 2, [_want("nightly", 120)])
    # a person's pause holds across versions
    assert [(k.trigger, k.version, k.paused_by, k.paused) for k in kept] == [
        ("nightly", 2, "user:ann", True)
    ]
    assert [(d.trigger, d.version, d.schedule_id) for d in dropped] == [
        ("hourly", 1, "sched-hourly")
    ]
    with db.session() as s:
        everything = store.listed(s, "default")
        only_svc = store.listed(s, "default", reg.definition_row(s, "default", "svc"))
    assert [(t.definition, t.trigger, t.version, t.spec) for t in everything] == [
        ("other", "nightly", 4, {"every": 5}),
        ("svc", "nightly", 2, {"every": 120}),
    ]
    assert [t.definition for t in only_svc] == ["svc"]
    with db.session() as s:
        assert store.listed(s, "elsewhere") == []


def test_a_trigger_is_resumed_and_an_unknown_one_is_not_found(db: Database) -> None:
    with db.session() as s:
        svc = reg.definition_row(s, "default", "svc")
        store.replace(s, svc, 1, [_want("nightly", 60)])
        assert store.set_paused(s, svc, "nightly", "user:ann").paused
        resumed = store.set_paused(s, svc, "nightly", None)
        assert (resumed.paused, resumed.paused_at) == (False, None)
        with pytest.raises(NotFound, match="trigger 'weekly' of 'svc' is not registered"):
            store.set_paused(s, svc, "weekly", "user:ann")


def _event(key: str) -> NewFire:
    return NewFire(
        trigger="hook",
        kind="webhook",
        key=key,
        event={"body": {"n": key}},
        cause={"kind": "webhook", "trigger": "hook", "delivery": key},
    )


def test_a_fire_is_recorded_once_per_key_and_its_history_reads_newest_first(
    db: Database,
) -> None:
    with db.session() as s:
        svc = reg.definition_row(s, "default", "svc")
        first, new = fires.record(s, svc, _event("d-1"))
        again, again_new = fires.record(s, svc, _event("d-1"))
        second, _ = fires.record(s, svc, _event("d-2"))
        # the same key on another definition is another event
        _, other_new = fires.record(s, reg.definition_row(s, "default", "other"), _event("d-1"))
    assert (new, again_new, other_new) == (True, False, True)
    assert again.id == first.id and first.status == fires.ACCEPTED
    with db.session() as s:
        done = fires.finish(s, first.id, fires.FIRED, run_id="r-1")
        # only d-2 (of svc) and d-1 (of other) wait; none was accepted before the epoch
        assert sorted((p.definition, p.key) for p in fires.pending(s, "9999")) == [
            ("other", "d-1"),
            ("svc", "d-2"),
        ]
        assert fires.pending(s, "1970-01-01") == []
        history = fires.history(s, reg.definition_row(s, "default", "svc"), "hook")
    assert (done.status, done.run_id, done.event) == ("fired", "r-1", {"body": {"n": "d-1"}})
    assert [(f.key, f.status) for f in history] == [("d-2", "accepted"), ("d-1", "fired")]
    assert second.cause["delivery"] == "d-2"
