"""Notification channels, subscriptions and deliveries in the metadata DB.

``enqueue`` is the outbox's door: it writes one delivery row per channel an event concerns,
in the caller's transaction (the recorder's, for a run's state change), so a delivery exists
exactly when the change it tells of was committed. Senders take due rows with ``claim`` (a
conditional UPDATE: two servers never hold one row) and record the outcome with ``finish``.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, or_, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.errors import Conflict, LockstepError, NotFound
from lockstep.spec.hints import did_you_mean
from lockstep.spec.notify_events import RUN_EVENTS, matches
from lockstep.storage.notify_rows import ChannelRow, DeliveryRow, SubscriptionRow
from lockstep.storage.rows import AttemptRow, RunRow, StepRow

if TYPE_CHECKING:
    from lockstep.spec.notify import NotifyRule

log = logging.getLogger(__name__)
PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"


@dataclass(frozen=True)
class ChannelInfo:
    name: str
    kind: str
    settings: dict[str, Any]
    created_at: str
    created_by: str | None


@dataclass(frozen=True)
class SubscriptionInfo:
    id: str
    channel: str
    events: list[str]
    definition: str | None
    instance: str | None
    status: str | None
    created_at: str
    created_by: str | None


@dataclass(frozen=True)
class DeliveryInfo:
    id: str
    project: str
    channel: str
    event: str
    source: str
    subject: dict[str, Any]
    status: str
    attempts: int
    next_attempt_at: str
    last_error: str | None
    created_at: str
    delivered_at: str | None


def _id(kind: str) -> str:
    return f"{kind}_{secrets.token_hex(8)}"


# -- channels


def add_channel(
    s: Session, project: str, name: str, kind: str, settings: dict[str, Any], by: str | None
) -> ChannelInfo:
    if s.scalar(_channel_query(project, name)) is not None:
        raise Conflict(f"channel '{name}' already exists; remove it first to change it")
    row = ChannelRow(
        id=_id("ch"),
        project_id=project,
        name=name,
        kind=kind,
        settings_json=json.dumps(settings, sort_keys=True),
        created_at=utcnow(),
        created_by=by,
    )
    s.add(row)
    try:
        s.flush()
    except IntegrityError:
        raise Conflict(f"channel '{name}' already exists") from None
    return _channel(row)


def list_channels(s: Session, project: str) -> list[ChannelInfo]:
    query = select(ChannelRow).where(ChannelRow.project_id == project).order_by(ChannelRow.name)
    return [_channel(r) for r in s.scalars(query)]


def get_channel(s: Session, project: str, name: str) -> ChannelInfo:
    return _channel(_channel_row(s, project, name))


def remove_channel(s: Session, project: str, name: str) -> int:
    """Remove a channel and its subscriptions (returns how many); its pending deliveries fail
    when their turn comes (the log keeps them)."""
    row = _channel_row(s, project, name)
    gone = s.execute(delete(SubscriptionRow).where(SubscriptionRow.channel_id == row.id))
    s.delete(row)
    return int(getattr(gone, "rowcount", 0) or 0)


def _channel_query(project: str, name: str) -> Any:
    return select(ChannelRow).where(ChannelRow.project_id == project, ChannelRow.name == name)


def _channel_row(s: Session, project: str, name: str) -> ChannelRow:
    row: ChannelRow | None = s.scalar(_channel_query(project, name))
    if row is None:
        names = s.scalars(select(ChannelRow.name).where(ChannelRow.project_id == project))
        hint = did_you_mean(name, list(names)) or "; see `lockstep notifications channels list`"
        raise NotFound(f"channel '{name}' not found{hint}")
    return row


def _channel(row: ChannelRow) -> ChannelInfo:
    return ChannelInfo(
        name=row.name,
        kind=row.kind,
        settings=json.loads(row.settings_json),
        created_at=row.created_at,
        created_by=row.created_by,
    )


# -- subscriptions


def subscribe(
    s: Session,
    project: str,
    channel: str,
    events: list[str],
    *,
    definition: str | None = None,
    instance: str | None = None,
    status: str | None = None,
    by: str | None = None,
) -> SubscriptionInfo:
    ch = _channel_row(s, project, channel)
    row = SubscriptionRow(
        id=_id("sub"),
        project_id=project,
        channel_id=ch.id,
        events_json=json.dumps(events),
        definition=definition,
        instance=instance,
        status=status,
        created_at=utcnow(),
        created_by=by,
    )
    s.add(row)
    s.flush()
    return _subscription(row, ch.name)


def list_subscriptions(s: Session, project: str) -> list[SubscriptionInfo]:
    query = (
        select(SubscriptionRow, ChannelRow.name)
        .join(ChannelRow, ChannelRow.id == SubscriptionRow.channel_id)
        .where(SubscriptionRow.project_id == project)
        .order_by(SubscriptionRow.created_at, SubscriptionRow.id)
    )
    return [_subscription(row, name) for row, name in s.execute(query)]


def unsubscribe(s: Session, project: str, subscription: str) -> None:
    row = s.get(SubscriptionRow, subscription)
    if row is None or row.project_id != project:
        raise NotFound(
            f"subscription '{subscription}' not found; see `lockstep notifications subscriptions`"
        )
    s.delete(row)


def _subscription(row: SubscriptionRow, channel: str) -> SubscriptionInfo:
    return SubscriptionInfo(
        id=row.id,
        channel=channel,
        events=json.loads(row.events_json),
        definition=row.definition,
        instance=row.instance,
        status=row.status,
        created_at=row.created_at,
        created_by=row.created_by,
    )


# -- the outbox


def enqueue(
    s: Session,
    project: str,
    event: str,
    subject: dict[str, Any],
    workflow_rules: list[NotifyRule] | None = None,
) -> int:
    """Write a pending delivery for each channel that ``event`` about ``subject`` concerns
    (the project's subscriptions whose filters match, and ``workflow_rules``: a run's own
    ``notify:``); one per channel. Returns how many. Runs in the caller's transaction."""
    wanted: dict[str, str] = {}  # channel name -> source
    query = (
        select(SubscriptionRow, ChannelRow.name)
        .join(ChannelRow, ChannelRow.id == SubscriptionRow.channel_id)
        .where(SubscriptionRow.project_id == project)
    )
    for sub, name in s.execute(query):
        if event in json.loads(sub.events_json) and _passes(sub, subject):
            wanted.setdefault(name, f"subscription:{sub.id}")
    for rule in workflow_rules or []:
        if matches(rule.on, event):
            wanted.setdefault(rule.channel, "workflow")
    now = utcnow()
    for channel, source in wanted.items():
        s.add(
            DeliveryRow(
                id=_id("dl"),
                project_id=project,
                channel=channel,
                event=event,
                source=source,
                subject_json=json.dumps(subject, sort_keys=True),
                status=PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
        )
    return len(wanted)


def _passes(sub: SubscriptionRow, subject: dict[str, Any]) -> bool:
    return all(
        want is None or subject.get(key) == want
        for key, want in (
            ("definition", sub.definition),
            ("instance", sub.instance),
            ("status", sub.status),
        )
    )


def run_changed(s: Session, run: RunRow) -> None:
    """The recorder moved ``run`` to a status that is an event (started, or finished): its
    deliveries, in the recorder's transaction. A fault here never fails the recording: it is
    logged and the run goes on (inside a savepoint, so nothing half-written stays)."""
    event = RUN_EVENTS.get(run.status)
    if event is None:
        return
    happened(s, run.project_id, event, lambda: _run_subject(s, run), _workflow_rules(run))


def happened(
    s: Session,
    project: str,
    event: str,
    subject: Callable[[], dict[str, Any]],
    rules: list[NotifyRule] | None = None,
) -> None:
    """``event`` happened in the caller's transaction (a run moved, an approval waits, a
    trigger's fire failed): its deliveries, written with it. A fault here never fails the
    caller's change: it is logged, and the savepoint leaves nothing half-written."""
    try:
        with s.begin_nested():
            enqueue(s, project, event, subject(), rules)
    except (LockstepError, SQLAlchemyError, ValueError, LookupError, TypeError) as exc:
        log.warning("notify.enqueue_failed", extra={"event": event, "error": str(exc)})


def _run_subject(s: Session, run: RunRow) -> dict[str, Any]:
    subject: dict[str, Any] = {
        "run_id": run.id,
        "definition": run.definition or run.workflow,
        "instance": run.instance,
        "status": run.status,
        "error": run.error,
    }
    if run.status == "failed":
        step = s.scalar(
            select(StepRow)
            .where(StepRow.run_id == run.id, StepRow.status == "failed")
            .order_by(StepRow.finished_at, StepRow.position)
            .limit(1)
        )
        if step is not None:
            subject["step"], subject["step_error"] = step.step_id, step.error
            attempt = s.scalar(
                select(AttemptRow)
                .where(AttemptRow.run_id == run.id, AttemptRow.step_id == step.step_id)
                .order_by(AttemptRow.attempt.desc())
                .limit(1)
            )
            if attempt is not None and attempt.log_key:
                subject["_log_key"] = attempt.log_key  # the sender reads its last stderr line
    return subject


_RULES: dict[str, list[NotifyRule]] = {}
_MAX_CACHED = 256


def _workflow_rules(run: RunRow) -> list[NotifyRule]:
    """The run's own ``notify:`` (its spec was validated when it was submitted). A stored
    spec that no longer reads (a damaged record) has none: its run's state change is
    still recorded, and the project's subscriptions still hear it."""
    found = _RULES.get(run.spec_digest)
    if found is None:
        from pydantic import ValidationError

        from lockstep.spec.yamlsafe import load_yaml  # the recorder's side: reads stay light

        try:
            data = load_yaml(run.spec_text, "workflow.yaml").data
            raw = data.get("notify") if isinstance(data, dict) else None
            found = [] if raw is None else _parse_rules(raw)
        except (LockstepError, ValidationError):
            log.warning("notify.rules_unreadable", extra={"run_id": run.id})
            found = []
        if len(_RULES) >= _MAX_CACHED:
            _RULES.clear()
        _RULES[run.spec_digest] = found
    return found


def _parse_rules(raw: Any) -> list[NotifyRule]:
    from lockstep.spec.notify import NotifyRule, rules

    items = raw if isinstance(raw, list) else [raw]
    return rules([NotifyRule.model_validate(item) for item in items])


# -- the sender's side


def claim(s: Session, me: str, now: str, until: str, limit: int) -> list[DeliveryInfo]:
    """Take up to ``limit`` due deliveries for ``me`` until ``until``: each by a conditional
    UPDATE that only one sender can win (a claim whose holder died expires)."""
    due = s.scalars(
        select(DeliveryRow.id)
        .where(DeliveryRow.status == PENDING, DeliveryRow.next_attempt_at <= now)
        .where(or_(DeliveryRow.claimed_until.is_(None), DeliveryRow.claimed_until < now))
        .order_by(DeliveryRow.next_attempt_at)
        .limit(limit)
    ).all()
    won: list[DeliveryInfo] = []
    for delivery_id in due:
        result = s.execute(
            update(DeliveryRow)
            .where(DeliveryRow.id == delivery_id, DeliveryRow.status == PENDING)
            .where(or_(DeliveryRow.claimed_until.is_(None), DeliveryRow.claimed_until < now))
            .values(claimed_by=me, claimed_until=until)
        )
        if getattr(result, "rowcount", 0) == 1:
            row = s.get(DeliveryRow, delivery_id)
            assert row is not None
            s.refresh(row)
            won.append(_delivery(row))
    return won


def finish(
    s: Session, delivery_id: str, me: str, *, error: str | None, retry_at: str | None
) -> None:
    """Record an attempt of a claimed delivery: delivered (no ``error``), pending again at
    ``retry_at``, or failed (an error and no retry)."""
    now = utcnow()
    values: dict[str, Any] = {
        "attempts": DeliveryRow.attempts + 1,
        "claimed_by": None,
        "claimed_until": None,
        "last_error": error,
    }
    if error is None:
        values |= {"status": DELIVERED, "delivered_at": now}
    elif retry_at is not None:
        values |= {"next_attempt_at": retry_at}
    else:
        values |= {"status": FAILED}
    s.execute(
        update(DeliveryRow)
        .where(DeliveryRow.id == delivery_id, DeliveryRow.claimed_by == me)
        .values(**values)
    )


def deliveries(
    s: Session, project: str, *, limit: int = 50, status: str | None = None
) -> list[DeliveryInfo]:
    query = select(DeliveryRow).where(DeliveryRow.project_id == project)
    if status is not None:
        query = query.where(DeliveryRow.status == status)
    query = query.order_by(DeliveryRow.created_at.desc(), DeliveryRow.id).limit(limit)
    return [_delivery(r) for r in s.scalars(query)]


def _delivery(row: DeliveryRow) -> DeliveryInfo:
    return DeliveryInfo(
        id=row.id,
        project=row.project_id,
        channel=row.channel,
        event=row.event,
        source=row.source,
        subject=json.loads(row.subject_json),
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )
