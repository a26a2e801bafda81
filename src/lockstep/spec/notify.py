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

from lockstep.spec.notify_events import CHANNEL_NAME_PATTERN, event_problem
from lockstep.spec.yamlsafe import pointer


class NotifyRule(BaseModel):
    """Tell ``channel`` when the run reaches one of the events in ``on``."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    on: list[str] = Field(min_length=1, max_length=20, description="events, e.g. [failed]")
    channel: ChannelName = Field(description="a notification channel of the project")


ChannelName = Annotated[str, StringConstraints(pattern=CHANNEL_NAME_PATTERN)]
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


__all__ = ["ChannelName", "NotifyRule", "NotifySpec", "check_notify", "rules"]
