"""Notification events, and ``notify:`` in workflow.yaml: the run's own definition subscribes
a project channel to some of its run's events while that version runs.

``notify: {on: [failed, succeeded], channel: ops}``, or a list of such rules. ``on`` takes a
run event's short name (``started``, ``succeeded``, ``failed``, ``cancelled``) or any full
event name (``run.failed``, ``approval.requested``…).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lockstep.spec.hints import did_you_mean
from lockstep.spec.yamlsafe import pointer

#: every event a subscription may name, in the order they are listed to users
EVENTS = (
    "run.started",
    "run.succeeded",
    "run.failed",
    "run.cancelled",
    "approval.requested",
    "approval.decided",
    "approval.timed_out",
    "trigger.failed",
    "schedule.missed",
)
#: run events by the run status that causes them
RUN_EVENTS = {
    "running": "run.started",
    **{s: f"run.{s}" for s in ("succeeded", "failed", "cancelled")},
}
#: ``notify: {on: [failed]}`` is short for ``run.failed``
SHORT = {e.removeprefix("run."): e for e in EVENTS if e.startswith("run.")}
CHANNEL_NAME_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
ChannelName = Annotated[str, StringConstraints(pattern=CHANNEL_NAME_PATTERN)]


def event_problem(name: str, *, short: bool = False) -> str | None:
    """Why ``name`` is no event (one line with a did-you-mean), or None when it is one."""
    known = [*EVENTS, *SHORT] if short else list(EVENTS)
    if name in known:
        return None
    hint = did_you_mean(name, known) or f"; events are {', '.join(known)}"
    return f"unknown event '{name}'{hint}"


def full_event(name: str) -> str:
    """``failed`` → ``run.failed``; a full name stays."""
    return SHORT.get(name, name)


class NotifyRule(BaseModel):
    """Tell ``channel`` when the run reaches one of the events in ``on``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    on: list[str] = Field(min_length=1, max_length=20, description="events, e.g. [failed]")
    channel: ChannelName = Field(description="a notification channel of the project")


NotifySpec = NotifyRule | list[NotifyRule]


def rules(value: NotifySpec | None) -> list[NotifyRule]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def check_notify(data: Any, add: Callable[[str, str], None]) -> None:
    """Report every unknown event name of the ``notify`` key through ``add(message, pointer)``."""
    found: list[tuple[dict[str, Any], tuple[str | int, ...]]] = []
    if isinstance(data, dict):
        found.append((data, ("notify",)))
    elif isinstance(data, list):
        found += [(r, ("notify", i)) for i, r in enumerate(data) if isinstance(r, dict)]
    for rule, at in found:
        events = rule.get("on")
        if not isinstance(events, list):
            continue
        for i, name in enumerate(events):
            problem = event_problem(str(name), short=True)
            if problem is not None:
                add(f"notify: {problem}", pointer(*at, "on", i))


def matches(rule_events: list[str], event: str) -> bool:
    return any(full_event(e) == event for e in rule_events)
