"""The deployment plan: each kind of change, what is disruptive, the roll order, the id."""

from __future__ import annotations

import pytest

from lockstep.deployments.model import Desired, carry_over, check_groups, check_replicas
from lockstep.deployments.plan import NodeChange, Plan, State, compute_plan, render
from lockstep.errors import InvalidRequest
from lockstep.spec.pipeline_checks import load_pipeline

V1 = """\
kind: pipeline
name: orders
contracts:
  order: {type: object}
nodes:
  read:
    kind: source
    run: read v1
    outputs: {orders: order}
  enrich:
    kind: transform
    run: enrich v1
    stateful: true
    inputs: {orders: order}
    from: [read]
  write:
    kind: sink
    run: write v1
    from: [enrich]
"""


def _state(text: str, version: int = 1, **choices: dict[str, object]) -> State:
    spec = load_pipeline(text, "p.yaml").spec
    desired = Desired(
        "orders",
        version,
        f"orders@{version}",
        f"digest-{version}-{hash(text)}",
        placement=dict(choices.get("placement", {})),  # type: ignore[arg-type]
        replicas=dict(choices.get("replicas", {})),  # type: ignore[arg-type]
    )
    return State(desired, spec)


def _node(plan: Plan, nid: str) -> NodeChange:
    return next(n for n in plan.nodes if n.node == nid)


def test_a_first_plan_creates_every_node_and_channel_sinks_first() -> None:
    plan = compute_plan("prod", 0, None, _state(V1))
    assert [(n.node, n.action, n.pool[1], n.replicas[1]) for n in plan.nodes] == [
        ("read", "create", "default", 1),
        ("enrich", "create", "default", 1),
        ("write", "create", "default", 1),
    ]
    assert {(c.channel, c.action) for c in plan.channels} == {
        ("read.orders -> enrich.orders", "create"),
        ("enrich.out -> write.in", "create"),
    }
    assert plan.order == ("write", "enrich", "read") and plan.changed and not plan.disruptive


def test_an_update_lists_each_changed_field_old_to_new() -> None:
    v2 = V1.replace("run: write v1", "run: write v2\n    env: {MODE: fast}")
    plan = compute_plan("prod", 1, _state(V1), _state(v2, 2))
    write = _node(plan, "write")
    assert write.action == "update"
    assert [(f.field, f.old, f.new) for f in write.fields] == [
        ("run", "write v1", "write v2"),
        ("env", {}, {"MODE": "fast"}),
    ]
    assert _node(plan, "read").action == "unchanged"
    assert plan.order == ("write",) and not plan.disruptive
    lines = render(plan)
    assert "      run: 'write v1' -> 'write v2'" in lines
    assert lines[0].endswith("version 1 -> version 2 (orders@2)")


def test_placement_moves_and_replica_changes_are_shown_per_node() -> None:
    old = _state(V1)
    new = _state(V1, 1, placement={"enrich": "heavy"}, replicas={"enrich": 3})
    plan = compute_plan("prod", 1, old, new)
    enrich = _node(plan, "enrich")
    assert enrich.moved and enrich.scaled and enrich.fields == ()
    assert (enrich.pool, enrich.replicas) == (("default", "heavy"), (1, 3))
    assert "      pool: default -> heavy" in render(plan)
    assert "      replicas: 1 -> 3" in render(plan)


def test_a_deleted_node_with_inputs_is_disruptive_and_rolls_last() -> None:
    v2 = V1.replace("kind: sink\n    run: write v1\n    from: [enrich]", "kind: sink\n    run: w")
    v2 = v2.replace("  write:\n", "  store:\n").replace("run: w", "run: w\n    from: [enrich]")
    v2 += "  audit:\n    kind: sink\n    run: a\n    from: [read]\n"
    plan = compute_plan("prod", 1, _state(V1), _state(v2, 2))
    actions = {n.node: n.action for n in plan.nodes}
    assert actions == {
        "read": "unchanged",
        "enrich": "unchanged",
        "store": "create",
        "audit": "create",
        "write": "delete",
    }
    assert _node(plan, "write").disruptive == ("records queued for it are dropped",)
    assert plan.order[-1] == "write" and set(plan.order) == {"store", "audit", "write"}
    assert {(c.channel, c.action) for c in plan.channels} == {
        ("enrich.out -> store.in", "create"),
        ("read.orders -> audit.in", "create"),
        ("enrich.out -> write.in", "delete"),
    }


def test_a_channel_class_change_is_disruptive() -> None:
    v2 = V1.replace("from: [enrich]", "from: [{node: enrich, class: landing}]")
    plan = compute_plan("prod", 1, _state(V1), _state(v2, 2))
    (change,) = plan.channels
    assert (change.action, change.old_class, change.new_class) == ("update", "stream", "landing")
    assert change.disruptive and plan.disruptive
    assert "    ! channel enrich.out -> write.in: " + change.disruptive in render(plan)


def test_a_channel_settings_change_rolls_the_nodes_that_use_it() -> None:
    v2 = V1.replace("from: [enrich]", "from: [{node: enrich, ack_wait: 5s}]")
    plan = compute_plan("prod", 1, _state(V1), _state(v2, 2))
    (change,) = plan.channels
    assert (change.action, change.settings, change.disruptive) == (
        "update",
        "ack_wait default -> 5s",
        None,
    )
    assert "  ~ channel enrich.out -> write.in: ack_wait default -> 5s" in render(plan)
    # both ends restart to take it; the source does not
    assert {n.node: n.action for n in plan.nodes} == {
        "read": "unchanged",
        "enrich": "update",
        "write": "update",
    }
    assert [f.field for f in _node(plan, "write").fields] == ["channel settings"]


def test_an_input_contract_change_is_disruptive_even_under_the_same_name() -> None:
    v2 = V1.replace("order: {type: object}", "order: {type: object, required: [id]}")
    plan = compute_plan("prod", 1, _state(V1), _state(v2, 2))
    enrich = _node(plan, "enrich")
    assert any("input contract changed" in d for d in enrich.disruptive)
    assert _node(plan, "read").disruptive == ()  # it has outputs only


@pytest.mark.parametrize("recompute", [False, True])
def test_state_is_recomputed_only_when_asked(recompute: bool) -> None:
    v2 = V1.replace("run: enrich v1", "run: enrich v2")
    plan = compute_plan("prod", 1, _state(V1), _state(v2, 2), recompute=recompute)
    enrich = _node(plan, "enrich")
    assert enrich.recompute is recompute
    (why,) = enrich.disruptive
    assert ("recomputed" in why) is recompute and ("--recompute" in why)
    other = compute_plan("prod", 1, _state(V1), _state(v2, 2), recompute=not recompute)
    assert other.id != plan.id  # recompute is part of what was previewed


def test_the_plan_id_names_both_states() -> None:
    v2 = V1.replace("run: write v1", "run: write v2")
    one = compute_plan("prod", 1, _state(V1), _state(v2, 2))
    assert one.id == compute_plan("prod", 1, _state(V1), _state(v2, 2)).id
    assert one.id != compute_plan("prod", 2, _state(V1), _state(v2, 2)).id
    assert one.id != compute_plan("staging", 1, _state(V1), _state(v2, 2)).id
    assert one.id != compute_plan("prod", 1, _state(V1), _state(v2, 2, replicas={"read": 2})).id


def test_the_same_desired_state_changes_nothing() -> None:
    plan = compute_plan("prod", 3, _state(V1), _state(V1))
    assert not plan.changed and plan.order == ()
    assert "  no changes: the deployment already runs this" in render(plan)


def test_choices_carry_over_and_a_vanished_group_is_dropped_with_a_note() -> None:
    spec = load_pipeline(V1.replace("  write:", "  store:"), "p.yaml").spec
    before = Desired("orders", 1, "orders@1", "d", {"write": "io", "read": "a"}, {"enrich": 2})
    placement, replicas, notes = carry_over(before, spec, {"read": "b"}, {})
    assert (placement, replicas) == ({"read": "b"}, {"enrich": 2})
    assert notes == ["placement of 'write' dropped: version has no node or group 'write'"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"read": -1}, "replicas of 'read' must be between 0 and 100, got -1"),
        ({"read": 101}, "replicas of 'read' must be between 0 and 100, got 101"),
        ({"read": "lots"}, "replicas of 'read' must be a whole number, got 'lots'"),
    ],
)
def test_bad_replicas_are_one_line(values: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_replicas(values)
    assert str(caught.value) == message


def test_a_choice_must_name_a_placement_group() -> None:
    spec = load_pipeline(V1.replace("    stateful: true\n", "    group: g\n"), "p.yaml").spec
    with pytest.raises(InvalidRequest, match="node 'enrich' is placed and scaled with its group"):
        check_groups(spec, ["enrich"], "replicas")
    with pytest.raises(InvalidRequest, match="names 'nope', which is no node or group"):
        check_groups(spec, ["nope"], "placement")
    check_groups(spec, ["g", "read"], "placement")


def test_the_status_says_why_replicas_are_not_running() -> None:
    from lockstep.deployments.model import Placed
    from lockstep.deployments.status import node_status

    where = {
        "read": Placed("read", "ingest", 1),
        "enrich": Placed("work", "default", 2),
        "off": Placed("off", "default", 0),
    }
    seen = node_status(where, {"default": (1, 4)}, {}, paused=False)
    states = {n: (s["state"], s["desired"], s["actual"]) for n, s in seen["nodes"].items()}
    assert states == {
        "read": ("waiting", 1, 0),
        "enrich": ("pending", 2, 0),
        "off": ("stopped", 0, 0),
    }
    assert seen["summary"] == "waiting: pool ingest has 0 free slots"
    busy = node_status(where, {"default": (1, 0), "ingest": (1, 1)}, {}, paused=False)
    assert busy["summary"] == "waiting: pool default has 0 free slots"
    paused = node_status(where, {}, {}, paused=True)
    assert paused["summary"] == "paused" and paused["nodes"]["read"]["state"] == "paused"
    done = node_status(where, {}, {"read": {"running": 1}, "enrich": {"running": 2}}, paused=False)
    assert done["summary"] == "converged"
    # a node whose replicas cannot start says why, with the replicas' counters summed
    seen = {"enrich": {"running": 1, "records_in": 7, "restarts": 2, "last_error": "exit 3"}}
    half = node_status(where, {"default": (1, 4), "ingest": (1, 4)}, seen, paused=False)
    enrich = half["nodes"]["enrich"]
    assert (enrich["state"], enrich["message"]) == ("pending", "pending: exit 3")
    assert (enrich["actual"], enrich["records_in"], enrich["restarts"]) == (1, 7, 2)
    # a replica in a crash loop makes its node degraded, first in the summary
    looping = {"read": {"running": 0, "degraded": True, "last_error": "exit code 3"}}
    bad = node_status(where, {"default": (1, 4), "ingest": (1, 4)}, looping, paused=False)
    assert bad["nodes"]["read"]["state"] == "degraded"
    assert bad["summary"] == "read degraded: crash loop, last exit: exit code 3"
