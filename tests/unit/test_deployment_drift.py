"""Drift: what the reconciler does with a replica stopped or started outside lockstep, under
each policy (reconcile, report, and paused, which only reports)."""

from __future__ import annotations

from lockstep.deployments.drift import judge

A0 = "deployment/p/prod/write/0/abc"
A1 = "deployment/p/prod/write/1/abc"
ODD = "deployment/p/prod/write/7/abc"


def test_a_replica_stopped_by_hand_is_started_again_under_reconcile() -> None:
    got = judge(
        policy="reconcile",
        paused=False,
        before={},
        want=[A0, A1],
        ended={A1: "terminated"},
        unknown=[],
    )
    assert got.held == set() and got.nodes == {}
    assert got.events == ["write/1 was terminated outside lockstep; started again"]


def test_under_report_it_is_held_and_said_on_the_node_until_reconcile() -> None:
    got = judge(
        policy="report",
        paused=False,
        before={},
        want=[A0, A1],
        ended={A1: "terminated"},
        unknown=[],
    )
    assert got.held == {A1}
    assert got.events == [
        "write/1 was terminated outside lockstep; reported, not started again (drift policy report)"
    ]
    assert got.nodes == {"write": "drift: write/1 stopped outside lockstep (reported)"}
    # the next rounds remember it, without saying it again
    later = judge(
        policy="report", paused=False, before=got.to_json(), want=[A0, A1], ended={}, unknown=[]
    )
    assert later.held == {A1} and later.events == []
    # back to reconcile: released (started again), said once
    back = judge(
        policy="reconcile",
        paused=False,
        before=later.to_json(),
        want=[A0, A1],
        ended={},
        unknown=[],
    )
    assert back.held == set() and back.nodes == {}
    assert back.events == ["write/1: held replica started again (drift policy reconcile)"]


def test_a_deploy_replacing_a_held_replica_forgets_it() -> None:
    newer = "deployment/p/prod/write/1/def"
    got = judge(
        policy="report",
        paused=False,
        before={"held": [A1]},
        want=[A0.replace("abc", "def"), newer],
        ended={},
        unknown=[],
    )
    assert got.held == set() and got.nodes == {}


def test_a_replica_started_by_hand_is_stopped_or_reported() -> None:
    stop = judge(policy="reconcile", paused=False, before={}, want=[A0], ended={}, unknown=[ODD])
    assert stop.stop == {ODD}
    assert stop.events == [f"write/7 ({ODD}) was started outside lockstep; stopped"]
    kept = judge(policy="report", paused=False, before={}, want=[A0], ended={}, unknown=[ODD])
    assert kept.stop == set() and kept.foreign == {ODD}
    assert kept.nodes == {"write": "drift: write/7 started outside lockstep (reported)"}
    again = judge(
        policy="report", paused=False, before=kept.to_json(), want=[A0], ended={}, unknown=[ODD]
    )
    assert again.events == []  # reported once


def test_paused_only_reports_whatever_the_policy() -> None:
    got = judge(
        policy="reconcile",
        paused=True,
        before={},
        want=[A0],
        ended={A0: "cancelled"},
        unknown=[ODD],
    )
    assert got.held == {A0} and got.stop == set() and got.foreign == {ODD}
    assert all("reported" in e for e in got.events) and len(got.events) == 2


def test_a_replica_rolled_away_is_not_drift() -> None:
    got = judge(
        policy="reconcile", paused=False, before={}, want=[A0], ended={A1: "cancelled"}, unknown=[]
    )
    assert got.events == [] and got.held == set()
