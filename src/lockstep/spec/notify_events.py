"""The notification events' names, light enough for every reader (no YAML, no models): the
API, the stores and the recorder import them; ``spec.notify`` holds the ``notify:`` key."""

from __future__ import annotations

from lockstep.spec.hints import did_you_mean

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


def matches(rule_events: list[str], event: str) -> bool:
    """Whether a rule's ``on`` list (short or full names) names ``event``."""
    return any(full_event(e) == event for e in rule_events)
