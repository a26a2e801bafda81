"""``triggers:`` in workflow.yaml: what starts a run by itself. This slice knows ``schedule``.

The models hold the shape; ``check_triggers`` adds what a type cannot say (a cron expression
that parses, an IANA time zone that exists, exactly one of ``cron``/``every``, a window that
ends after it starts, params that only read ``schedule.*``), each at its field's position.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from lockstep.spec.cron import cron_problem
from lockstep.spec.durations import Duration, parse_duration
from lockstep.spec.expressions import (
    ExpressionError,
    compile_expression,
    find_templates,
    references,
)
from lockstep.spec.names import ENV_NAME_PATTERN
from lockstep.spec.yamlsafe import pointer

TRIGGER_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,62}$"
TriggerId = Annotated[str, StringConstraints(pattern=TRIGGER_ID_PATTERN)]
ParamName = Annotated[str, StringConstraints(pattern=ENV_NAME_PATTERN, max_length=128)]
#: the overlap policies a user may write (Temporal's names differ: ``allow`` is ALLOW_ALL)
OVERLAP = ("skip", "buffer_one", "allow", "cancel_other")
#: Temporal refuses a catch-up window below this; asking for less is a typo, said so early
MIN_CATCHUP_SECONDS = 10.0
#: what a schedule trigger's params may read
SCHEDULE_ROOTS = frozenset({"schedule"})


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


#: every kind of trigger (one member today)
TriggerSpec = ScheduleTrigger


def check_triggers(data: Any, add: Callable[[str, str], None]) -> None:
    """Report every problem of the ``triggers`` mapping through ``add(message, pointer)``."""
    if not isinstance(data, dict):
        return
    for tid, trigger in data.items():
        if isinstance(trigger, dict) and trigger.get("kind", "schedule") == "schedule":
            _check_schedule(str(tid), trigger, add)


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
    params = trigger.get("params")
    if isinstance(params, dict):
        for name, value in params.items():
            _check_param(tid, str(name), value, add)


def _check_param(tid: str, name: str, value: Any, add: Callable[[str, str], None]) -> None:
    if not isinstance(value, str):
        return
    ptr = pointer("triggers", tid, "params", name)
    try:
        templates = find_templates(value)
        for template in templates:
            compile_expression(template.source)
            for chain in references(template.source):
                if chain[0] not in SCHEDULE_ROOTS:
                    add(
                        f"param '{name}' of trigger '{tid}' reads '{chain[0]}'; "
                        "a schedule's params may read only schedule.time",
                        ptr,
                    )
                    return
    except ExpressionError as err:
        add(f"param '{name}' of trigger '{tid}': {err.message}", ptr)


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
