"""``triggers:`` in workflow.yaml: what starts a run by itself — a ``schedule``, a signed
``webhook`` delivery, a ``git`` push to a followed ref, an ``upstream`` run finishing, or a
``resource`` (a tag, a definition's versions, a repository's ref, a named resource) changing.

The models hold the shape; ``check_triggers`` adds what a type cannot say (a cron expression
that parses, an IANA time zone that exists, exactly one of ``cron``/``every``, a window that
ends after it starts, params and filters that read only their kind's event root), each at its
field's position.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag

from lockstep.spec.cron import cron_problem
from lockstep.spec.durations import Duration, parse_duration
from lockstep.spec.expressions import (
    ExpressionError,
    compile_expression,
    find_templates,
    references,
)
from lockstep.spec.names import ENV_NAME_PATTERN, NAME_PATTERN, SECRET_NAME_PATTERN
from lockstep.spec.trigger_roots import EVENT_ROOT
from lockstep.spec.yamlsafe import pointer

TRIGGER_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
TriggerId = Annotated[str, StringConstraints(pattern=TRIGGER_ID_PATTERN)]
ParamName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN, max_length=128)]
#: the overlap policies a user may write (Temporal's names differ: ``allow`` is ALLOW_ALL)
OVERLAP = ("skip", "buffer_one", "allow", "cancel_other")
#: Temporal refuses a catch-up window below this; asking for less is a typo, said so early
MIN_CATCHUP_SECONDS = 10.0
#: a tag's name (``$LIVE``, ``$STAGING``…)
TAG_PATTERN = r"^\$[A-Z_]+$"
RunStatusName = Literal["succeeded", "failed", "cancelled"]
#: what a resource trigger may watch, one of them
WATCHES = ("tag", "versions_of", "repository", "resource")


class ScheduleTrigger(BaseModel):
    """Start a run at fixed times (a Temporal Schedule fires it; the run service records it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["schedule"] = "schedule"
    cron: str | None = Field(None, description="5 fields, 6 with seconds first, or @hourly…")
    every: Duration | None = Field(None, description="a fixed interval, e.g. '15m'")
    timezone: str = Field("UTC", description="IANA time zone the cron reads, e.g. Europe/Paris")
    jitter: Duration | None = Field(None, description="start up to this much later, at random")
    overlap: Literal["skip", "buffer_one", "allow", "cancel_other"] = Field(
        "skip", description="what a fire time does while the previous run still runs"
    )
    catchup_window: Duration | None = Field(
        None,
        description="fire times missed (server down) within this window still fire; "
        "older ones are dropped (default: 1 year, Temporal's)",
    )
    start_at: datetime | None = Field(None, description="no fire time before this")
    end_at: datetime | None = Field(None, description="no fire time after this")
    params: dict[ParamName, Any] = Field(
        default_factory=dict, description="params of each run; may read ${{ schedule.time }}"
    )
    enabled: bool = True


class _EventTrigger(BaseModel):
    """What every trigger fired by an event has: params and a condition over the event."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    params: dict[ParamName, Any] = Field(
        default_factory=dict, description="params of each run, templates over the event"
    )
    filter: str | None = Field(
        None, max_length=2000, description="${{ condition }} over the event; false: no run"
    )
    enabled: bool = True


class WebhookTrigger(_EventTrigger):
    """Start a run when a signed HTTP delivery arrives at
    ``POST /api/v1/hooks/{project}/{definition}/{trigger}``."""

    kind: Literal["webhook"]
    secret: str = Field(
        pattern=SECRET_NAME_PATTERN,
        max_length=128,
        description="the project secret that signs (hmac) or is the bearer token (token)",
    )
    auth: Literal["hmac", "token"] = Field(
        "hmac", description="hmac: 'sha256=<hex>' of the body in signature_header; token: bearer"
    )
    signature_header: str = Field(
        "X-Hub-Signature-256", max_length=100, description="where an hmac signature arrives"
    )
    delivery: str | None = Field(
        None,
        max_length=2000,
        description="the delivery id that deduplicates: a header name, or ${{ … }} over event",
    )


class GitTrigger(_EventTrigger):
    """Start a run of each instance following a ref when a push moves it to a new commit."""

    kind: Literal["git"]
    branches: list[Annotated[str, StringConstraints(max_length=255)]] = Field(
        default_factory=list, max_length=50, description="branch globs (none: every branch)"
    )
    tags: list[Annotated[str, StringConstraints(max_length=255)]] = Field(
        default_factory=list, max_length=50, description="git tag globs (none: no tag)"
    )


class UpstreamTrigger(_EventTrigger):
    """Start a run when a run of another definition (optionally instance) finishes."""

    kind: Literal["upstream"]
    definition: str = Field(pattern=NAME_PATTERN, max_length=100)
    instance: str | None = Field(None, max_length=100)
    status: list[RunStatusName] = Field(
        default_factory=lambda: list[RunStatusName](["succeeded"]),
        min_length=1,
        description="which endings fire",
    )


class TagWatch(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    definition: str = Field(pattern=NAME_PATTERN, max_length=100)
    tag: str = Field("$LIVE", pattern=TAG_PATTERN)


class RefWatch(BaseModel):
    """A branch or tag of a connected repository (one a workflow's ``sources:`` may read)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(pattern=NAME_PATTERN, max_length=100, description="the repository's name")
    ref: Annotated[str, StringConstraints(min_length=1, max_length=255)] = Field(
        "main", description="a branch or tag name, or a glob of them"
    )


class ResourceTrigger(_EventTrigger):
    """Start a run when a watched versioned input changes, with its old and new value."""

    kind: Literal["resource"]
    tag: TagWatch | None = Field(None, description="a tag that moves to another version")
    versions_of: str | None = Field(
        None, pattern=NAME_PATTERN, max_length=100, description="a definition's new versions"
    )
    repository: RefWatch | None = Field(
        None, description="a connected repository's branch or tag that moves to a new commit"
    )
    resource: str | None = Field(
        None,
        pattern=r"^[a-z0-9][a-z0-9-]{0,62}$",
        description="a resource of the project that gets a new version "
        "(${{ resource.name }}, .version, .previous)",
    )


def _kind(value: Any) -> str:
    # a trigger that names no kind is a schedule (the first kind, and the common one)
    if isinstance(value, dict):
        return str(value.get("kind", "schedule"))
    return str(getattr(value, "kind", "schedule"))


#: every kind of trigger, told apart by ``kind``
TriggerSpec = Annotated[
    Annotated[ScheduleTrigger, Tag("schedule")]
    | Annotated[WebhookTrigger, Tag("webhook")]
    | Annotated[GitTrigger, Tag("git")]
    | Annotated[UpstreamTrigger, Tag("upstream")]
    | Annotated[ResourceTrigger, Tag("resource")],
    Discriminator(_kind),
]


def check_triggers(data: Any, add: Callable[[str, str], None]) -> None:
    """Report every problem of the ``triggers`` mapping through ``add(message, pointer)``."""
    if not isinstance(data, dict):
        return
    for tid, trigger in data.items():
        if not isinstance(trigger, dict):
            continue
        kind = trigger.get("kind", "schedule")
        if kind == "schedule":
            _check_schedule(str(tid), trigger, add)
        elif kind == "resource" and sum(trigger.get(k) is not None for k in WATCHES) != 1:
            add(
                f"resource trigger '{tid}' watches one thing: write one of "
                + ", ".join(f"'{k}'" for k in WATCHES),
                pointer("triggers", tid),
            )
        root = EVENT_ROOT.get(str(kind))
        if root is None:
            continue
        params = trigger.get("params")
        if isinstance(params, dict):
            for name, value in params.items():
                _check_template(str(tid), f"param '{name}'", value, root, add, "params", name)
        delivery = trigger.get("delivery") if kind == "webhook" else None
        if isinstance(delivery, str) and "${{" in delivery:
            _check_template(str(tid), "delivery", delivery, root, add, "delivery")
        condition = trigger.get("filter")
        if isinstance(condition, str):
            if "${{" not in condition:  # a bare condition is CEL too, as a step's `if` is
                condition = "${{ " + condition + " }}"
            _check_template(str(tid), "filter", condition, root, add, "filter")


def _check_schedule(tid: str, trigger: dict[str, Any], add: Callable[[str, str], None]) -> None:
    cron, every = trigger.get("cron"), trigger.get("every")
    if cron is None and every is None:
        add(f"schedule trigger '{tid}' needs 'cron' or 'every'", pointer("triggers", tid))
    elif cron is not None and every is not None:
        add(
            f"schedule trigger '{tid}' has both 'cron' and 'every'; keep one",
            pointer("triggers", tid, "every"),
        )
    if isinstance(cron, str):
        problem = cron_problem(cron)
        if problem:
            add(f"cron of trigger '{tid}' {problem}", pointer("triggers", tid, "cron"))
    if every is not None and _seconds(every) == 0:
        add(f"'every' of trigger '{tid}' must be longer than 0", pointer("triggers", tid, "every"))
    zone = trigger.get("timezone")
    if isinstance(zone, str) and not _zone_exists(zone):
        add(
            f"timezone of trigger '{tid}': '{zone[:60]}' is not an IANA time zone; "
            "write e.g. 'UTC' or 'Europe/Paris'",
            pointer("triggers", tid, "timezone"),
        )
    window = trigger.get("catchup_window")
    seconds = _seconds(window) if window is not None else None
    if seconds is not None and seconds < MIN_CATCHUP_SECONDS:
        add(
            f"catchup_window of trigger '{tid}' must be at least 10s",
            pointer("triggers", tid, "catchup_window"),
        )
    start, end = _instant(trigger.get("start_at")), _instant(trigger.get("end_at"))
    if start is not None and end is not None and _comparable(start, end) and end <= start:
        add(
            f"end_at of trigger '{tid}' is not after its start_at",
            pointer("triggers", tid, "end_at"),
        )


def _check_template(
    tid: str,
    what: str,
    value: Any,
    root: str,
    add: Callable[[str, str], None],
    *where: str,
) -> None:
    if not isinstance(value, str):
        return
    ptr = pointer("triggers", tid, *where)
    try:
        for template in find_templates(value):
            compile_expression(template.source)
            for chain in references(template.source):
                if chain[0] != root:
                    add(
                        f"{what} of trigger '{tid}' reads '{chain[0]}'; "
                        f"this kind of trigger may read only {root}.*",
                        ptr,
                    )
                    return
    except ExpressionError as err:
        add(f"{what} of trigger '{tid}': {err.message}", ptr)


def _seconds(value: Any) -> float | None:
    try:
        return parse_duration(value)
    except ValueError:
        return None  # the model reports it


def _zone_exists(name: str) -> bool:
    if not name or len(name) > 100 or name.startswith("/") or ".." in name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _instant(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None  # the model reports it
    return None


def _comparable(a: datetime, b: datetime) -> bool:
    return (a.tzinfo is None) == (b.tzinfo is None)
