"""A run's cause as stored: written once with the run (``columns``), read back field-safely
(``read``), and filtered by kind or trigger. Rows older than causes (migration 0012) hold
none: they read as what they were, a retry, a rerun or a person's run (``legacy``), and the
kind filter (``kind_column``) sees them the same way, so no finished (frozen) row is rewritten.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func

from lockstep.records import Cause, CauseKind
from lockstep.storage.damage import CONVERSION_ERRORS, FieldReader
from lockstep.storage.rows import RunRow

#: the prefix the API gives a person in ``triggered_by``
_USER = "user:"


def columns(cause: Cause) -> dict[str, Any]:
    """The run row's cause columns for ``cause``."""
    return {
        "cause_json": cause.model_dump_json(exclude_none=True),
        "cause_kind": cause.kind.value,
        "cause_trigger": cause.trigger,
        "parent_run_id": cause.parent_run,
        "parent_step": cause.parent_step,
    }


def read(reader: FieldReader, row: RunRow) -> Cause | None:
    """The run's cause; None, named in the record's error, when the stored one is damaged."""
    if row.cause_json is None:
        return legacy(row)
    value = reader.json("cause", row.cause_json)
    if value is None:
        return None
    try:
        return Cause.model_validate(value)
    except CONVERSION_ERRORS:
        reader.damaged("cause", "is not a cause lockstep knows")
        return None


def legacy(row: RunRow) -> Cause:
    """The cause of a run recorded before causes were: it repeats the run it names, or a
    person (``triggered_by``) started it."""
    by = row.triggered_by or ""
    user = by.removeprefix(_USER) or None
    if row.retry_of is not None:
        return Cause.repeat(CauseKind.RETRY, row.retry_of, user)
    if row.rerun_of is not None:
        return Cause.repeat(CauseKind.RERUN, row.rerun_of, user)
    return Cause.manual(user)


def triggered_by_user(user: str) -> str:
    """The ``triggered_by`` of the runs a person started (or fired, retried, reran)."""
    return f"{_USER}{user}"


def triggered_by(cause: Cause) -> str:
    """The ``triggered_by`` of a run with ``cause``: the person, else the trigger."""
    if cause.user:
        return triggered_by_user(cause.user)
    return f"trigger:{cause.trigger}" if cause.trigger else ""


#: a run's cause kind in SQL, the rows older than causes read as ``legacy`` reads them
kind_column = func.coalesce(
    RunRow.cause_kind,
    case(
        (RunRow.retry_of.is_not(None), CauseKind.RETRY.value),
        (RunRow.rerun_of.is_not(None), CauseKind.RERUN.value),
        else_=CauseKind.MANUAL.value,
    ),
)
