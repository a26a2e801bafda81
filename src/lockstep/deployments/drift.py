"""Drift: a deployment's replicas changed outside lockstep, and what the reconciler does about
it (``docs/deployments.md``, "Drift").

Pure. Each round the reconciler hands in what it recorded last (the replicas it had started,
the replicas held back earlier), what it wants now, and what the engine shows (which of its
replicas stopped, and how; replicas of the deployment it never started). This says what is
drift and what to do under the deployment's policy:

- ``reconcile`` (the default): a replica stopped by hand is started again, one started by hand
  is stopped; each an event.
- ``report`` (and always while paused): nothing is touched. A replica stopped by hand is
  *held* (not started again) and one started by hand is left running, both said on the
  deployment's status until the policy is ``reconcile`` again or a deploy replaces them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

RECONCILE, REPORT = "reconcile", "report"


@dataclass
class Drift:
    """One round's verdict."""

    #: replicas wanted but not to be started (stopped by hand, policy report)
    held: set[str] = field(default_factory=set)
    #: replicas started by hand: to stop (reconcile), or left running and reported
    stop: set[str] = field(default_factory=set)
    foreign: set[str] = field(default_factory=set)
    #: (reason) per event to record, and per node what the status says
    events: list[str] = field(default_factory=list)
    nodes: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"held": sorted(self.held), "foreign": sorted(self.foreign)}


def name_of(rid: str) -> tuple[str, str]:
    """(node, replica) of a replica workflow id ``deployment/P/D/NODE/REPLICA/DIGEST``."""
    parts = rid.split("/")
    return (parts[3], parts[4]) if len(parts) >= 6 else (rid, "?")


def judge(
    *,
    policy: str,
    paused: bool,
    before: Mapping[str, Any],
    want: Iterable[str],
    ended: Mapping[str, str],
    unknown: Iterable[str],
) -> Drift:
    """``before``: the last round's drift record (``Drift.to_json``); ``want``: the replica
    ids desired now; ``ended``: replicas the last round had running that are gone now
    (id -> how it ended, e.g. ``terminated``); ``unknown``: running replicas of this
    deployment that lockstep did not start."""
    acting = policy == RECONCILE and not paused
    wanted = set(want)
    out = Drift()
    held_before = set(before.get("held", ())) & wanted
    foreign_before = set(before.get("foreign", ()))
    for rid in sorted(set(ended) & wanted):
        node, replica = name_of(rid)
        what = f"{node}/{replica} was {ended[rid]} outside lockstep"
        if acting:
            out.events.append(f"{what}; started again")
        else:
            out.held.add(rid)
            out.events.append(f"{what}; reported, not started again (drift policy {policy})")
    for rid in sorted(set(unknown) - wanted):
        node, replica = name_of(rid)
        what = f"{node}/{replica} ({rid}) was started outside lockstep"
        if acting:
            out.stop.add(rid)
            out.events.append(f"{what}; stopped")
        else:
            out.foreign.add(rid)
            if rid not in foreign_before:
                out.events.append(f"{what}; reported, left running (drift policy {policy})")
    if not acting:
        out.held |= held_before
    elif held_before:
        out.events.extend(
            f"{'/'.join(name_of(rid))}: held replica started again (drift policy reconcile)"
            for rid in sorted(held_before)
        )
    for rid in sorted(out.held):
        node, replica = name_of(rid)
        out.nodes[node] = f"drift: {node}/{replica} stopped outside lockstep (reported)"
    for rid in sorted(out.foreign):
        node, replica = name_of(rid)
        out.nodes.setdefault(node, f"drift: {node}/{replica} started outside lockstep (reported)")
    return out
