"""A server's reconciler forgets stopped replicas of deployments' past (it runs for months)."""

from __future__ import annotations

from lockstep.services.replica_control import REMEMBER_STOPPED_S, forget

A = "deployment/p/a/"


def test_how_a_replica_ended_is_forgotten_once_the_round_no_longer_has_it() -> None:
    ended = {f"{A}x/0": "failed", f"{A}x/1": "cancelled", "deployment/p/b/x/0": "failed"}
    forget({}, ended, A, {f"{A}x/1"}, now=0)
    # kept: the one still current, and another deployment's (its own round decides)
    assert ended == {f"{A}x/1": "cancelled", "deployment/p/b/x/0": "failed"}


def test_a_stopped_replica_is_remembered_for_a_while_then_forgotten() -> None:
    cancelled = {f"{A}x/0": 0.0, f"{A}x/1": 0.0, "deployment/p/gone/x/0": 0.0}
    forget(cancelled, {}, A, set(), now=REMEMBER_STOPPED_S / 2)
    assert len(cancelled) == 3  # the engine's list may still show them running
    forget(cancelled, {}, A, {f"{A}x/1"}, now=REMEMBER_STOPPED_S + 1)
    # a deleted deployment's stopped replica goes too; one listed again stays
    assert cancelled == {f"{A}x/1": 0.0}
