"""Handing an event to the trigger that listens for it: record the fire once per key (a repeated
delivery finds the first), then decide — paused, filtered out, params that do not render — or
ask the run service for the run, with the trigger's cause, under an idempotency key of the
same fire key. Every event source (webhooks, pushes, upstream runs, tag moves, a person's
``triggers fire``) comes through here; schedules fire through their Temporal Schedule.

A fire is recorded before it is handled, so an event acknowledged just before a crash is still
handled: the server sweeps the fires left ``accepted`` at start (``sweep``), and the run's
idempotency key keeps a fire handled twice (two servers, a retry) to one run.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from lockstep.errors import InvalidRequest, LockstepError, NotFound, Unavailable
from lockstep.records import Cause, CauseKind
from lockstep.registry.selectors import parse_selector
from lockstep.services.instances import InstanceService
from lockstep.services.triggers import FireRecord, NewFire, Registered, TriggerService
from lockstep.services.triggers import fire_status as status
from lockstep.services.versions import VersionService
from lockstep.spec.trigger_roots import EVENT_ROOT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One event for one registered trigger: ``key`` identifies it (a delivery id, a commit,
    a run id); ``data`` is what its params and filter read under the kind's root."""

    key: str
    data: dict[str, Any]
    cause: Cause
    payload_digest: str | None = None
    #: what to run instead of the registered version (a push runs an instance at its commit)
    selector: str | None = None
    instance: str | None = None


class Dispatcher:
    def __init__(
        self,
        versions: VersionService,
        triggers: TriggerService,
        instances: InstanceService | None = None,
    ) -> None:
        self._versions = versions
        self._triggers = triggers
        self._instances = instances

    async def accept(self, trigger: Registered, event: Event) -> tuple[FireRecord, bool]:
        """Record ``event`` for ``trigger`` (once per key): (the fire, whether it is new)."""
        return await self._triggers.record_fire(
            trigger.project,
            trigger.definition,
            NewFire(
                trigger=trigger.trigger,
                kind=trigger.kind,
                key=event.key,
                event=event.data,
                cause=event.cause.model_dump(mode="json", exclude_none=True),
                payload_digest=event.payload_digest,
                selector=event.selector,
                # an instance's own trigger runs that instance (``triggers/instance_triggers``)
                instance=event.instance or trigger.instance,
            ),
        )

    async def deliver(self, trigger: Registered, event: Event) -> FireRecord:
        """Record and handle ``event`` now; a repeated key returns the first fire as it is."""
        fire, new = await self.accept(trigger, event)
        return await self.handle(fire) if new else fire

    async def handle(self, fire: FireRecord, params: dict[str, Any] | None = None) -> FireRecord:
        """Decide an accepted fire: a run, or why none. ``params`` (a person's) win over the
        trigger's. Raises ``Unavailable`` (the fire stays accepted, to be swept again)."""
        try:
            trigger = await self._triggers.registered(fire.project, fire.definition, fire.trigger)
        except NotFound:
            return await self._finish(fire, status.FAILED, error="the trigger is no longer live")
        if trigger.paused and fire.cause.get("kind") != CauseKind.MANUAL:
            why = f"paused by {trigger.paused_by}" if trigger.paused_by else "disabled"
            return await self._finish(fire, status.SKIPPED, error=why)
        context = {EVENT_ROOT[trigger.kind]: fire.event}
        try:
            if not _passes(trigger.spec.get("filter"), context):
                return await self._finish(fire, status.FILTERED)
            given = params or {}
            rendered = {
                name: _render(value, context)
                for name, value in (trigger.spec.get("params") or {}).items()
                if name not in given
            }
        except LockstepError as exc:
            return await self._finish(fire, status.FAILED, error=str(exc))
        key = f"{fire.kind}:{fire.definition}:{fire.trigger}:{fire.key}"[:200]
        cause = Cause.model_validate(fire.cause)
        try:
            if fire.instance is not None and self._instances is not None:
                # an instance's run: its default params and pool, at the fire's commit
                at = parse_selector(fire.selector).value if fire.selector else None
                run = await self._instances.run(
                    fire.project,
                    fire.instance,
                    params=[],
                    typed={**rendered, **given},
                    cause=cause,
                    at=at,
                    idempotency_key=key,
                )
            else:
                run, _ = await self._versions.run(
                    fire.project,
                    fire.selector or f"{fire.definition}@{trigger.version}",
                    params={**rendered, **given},
                    instance=fire.instance,
                    cause=cause,
                    idempotency_key=key,
                )
        except Unavailable:
            raise
        except LockstepError as exc:
            return await self._finish(fire, status.FAILED, error=str(exc))
        return await self._finish(fire, status.FIRED, run_id=run.id)

    async def fire_manually(
        self,
        project: str,
        definition: str,
        trigger_id: str,
        params: dict[str, Any],
        user: str | None,
    ) -> FireRecord:
        """A person fires a trigger (even a paused one): recorded as a manual run of it."""
        trigger = await self._triggers.registered(project, definition, trigger_id)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        data: dict[str, Any] = {"time": now} if trigger.kind == "schedule" else {}
        event = Event(
            key=f"manual:{now}:{secrets.token_hex(4)}",
            data=data,
            cause=Cause(kind=CauseKind.MANUAL, trigger=trigger_id, user=user or None),
        )
        fire, _ = await self.accept(trigger, event)
        return await self.handle(fire, params)

    async def sweep(self, min_age: float | None = None) -> int:
        """Handle the fires a crash left accepted (at least ``min_age`` seconds old; the
        service's default when None); returns how many were decided."""
        done = 0
        pending = self._triggers.pending_fires
        for fire in await (pending() if min_age is None else pending(min_age)):
            try:
                await self.handle(fire)
            except Unavailable:
                break  # the engine or database is away: the next sweep tries again
            done += 1
        return done

    async def _finish(
        self, fire: FireRecord, outcome: str, *, run_id: str | None = None, error: str | None = None
    ) -> FireRecord:
        done = await self._triggers.finish_fire(fire.id, outcome, run_id=run_id, error=error)
        log.info(
            "trigger.fire_decided",
            extra={"trigger": fire.trigger, "status": outcome, "run_id": run_id, "fire": fire.id},
        )
        return done


def _passes(condition: Any, context: dict[str, Any]) -> bool:
    if condition is None:
        return True
    # CEL loads with the first fire, not with every process that builds the services
    from lockstep.spec.expressions import condition_source, evaluate

    source = condition_source(condition)
    if source is None:
        return True
    value = evaluate(source, context)
    if not isinstance(value, bool):
        raise InvalidRequest(f"the filter gave {type(value).__name__}, not true or false")
    return value


def _render(value: Any, context: dict[str, Any]) -> Any:
    from lockstep.spec.expressions import render

    return render(value, context) if isinstance(value, str) else value
