"""Schedule triggers as Temporal Schedules: one Schedule per trigger, made or updated when the
version its definition runs changes (no hand-written cron loop: Temporal keeps the fire times,
the catch-up after an outage, jitter and the overlap policy durably).

The Schedule starts ``TriggerFiredWorkflow`` (``engine/triggered``), never the run itself.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from temporalio.api.workflowservice.v1 import ListScheduleMatchingTimesRequest
from temporalio.client import (
    Client,
    Schedule,
    ScheduleActionStartWorkflow,
    ScheduleAlreadyRunningError,
    ScheduleBackfill,
    ScheduleIntervalSpec,
    ScheduleOverlapPolicy,
    SchedulePolicy,
    ScheduleSpec,
    ScheduleState,
    ScheduleUpdate,
    ScheduleUpdateInput,
)
from temporalio.service import RPCError, RPCStatusCode

from lockstep.engine.triggered import FireRequest, TriggerFiredWorkflow
from lockstep.spec.cron import temporal_cron
from lockstep.spec.triggers import ScheduleTrigger

OVERLAP = {
    "skip": ScheduleOverlapPolicy.SKIP,
    "buffer_one": ScheduleOverlapPolicy.BUFFER_ONE,
    "allow": ScheduleOverlapPolicy.ALLOW_ALL,
    "cancel_other": ScheduleOverlapPolicy.CANCEL_OTHER,
}


#: every trigger Schedule's id starts so (what the start-up reconcile looks among)
PREFIX = "lockstep-trigger-"


def trigger_queue(control_queue: str) -> str:
    """The task queue fires run on: the control plane's own (a pool name has no '.')."""
    return f"{control_queue}.triggers"


def schedule_id(project: str, definition: str, trigger: str) -> str:
    """Stable per trigger (its project, definition and id), unique across projects; the digest
    keeps it unambiguous whatever characters the names hold."""
    digest = hashlib.sha256(f"{project}\0{definition}\0{trigger}".encode()).hexdigest()[:12]
    return f"{PREFIX}{project}-{definition}-{trigger}-{digest}"[:200]


def _utc(when: datetime | None) -> datetime | None:
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def build(
    request: FireRequest, trigger: ScheduleTrigger, queue: str, *, paused: bool = False
) -> Schedule:
    """The Temporal Schedule of one schedule trigger (``paused``: by a person)."""
    spec = ScheduleSpec(
        cron_expressions=[temporal_cron(trigger.cron)] if trigger.cron else [],
        intervals=[ScheduleIntervalSpec(every=timedelta(seconds=trigger.every))]
        if trigger.every
        else [],
        time_zone_name=trigger.timezone,
        jitter=timedelta(seconds=trigger.jitter) if trigger.jitter else None,
        start_at=_utc(trigger.start_at),
        end_at=_utc(trigger.end_at),
    )
    policy = SchedulePolicy(
        overlap=OVERLAP[trigger.overlap],
        catchup_window=timedelta(seconds=trigger.catchup_window)
        if trigger.catchup_window
        else None,
    )
    sid = schedule_id(request.project, request.definition, request.trigger)
    action = ScheduleActionStartWorkflow(
        TriggerFiredWorkflow.run, request, id=f"{sid}-fire", task_queue=queue
    )
    note = "paused" if paused else None if trigger.enabled else "disabled (enabled: false)"
    state = ScheduleState(paused=paused or not trigger.enabled, note=note)
    return Schedule(action=action, spec=spec, policy=policy, state=state)


async def put(
    client: Client, request: FireRequest, trigger: ScheduleTrigger, queue: str, *, paused: bool
) -> str:
    """Make the trigger's Schedule, or bring an existing one to ``trigger`` (a new version
    that changes the schedule changes the Schedule; it stands still while ``paused`` by a
    person or disabled by ``enabled: false``)."""
    wanted = build(request, trigger, queue, paused=paused)
    sid = schedule_id(request.project, request.definition, request.trigger)
    try:
        await client.create_schedule(sid, wanted)
    except ScheduleAlreadyRunningError:

        def _update(_: ScheduleUpdateInput) -> ScheduleUpdate:
            return ScheduleUpdate(schedule=wanted)

        await client.get_schedule_handle(sid).update(_update)
    return sid


async def remove(client: Client, sid: str) -> None:
    """Delete a Schedule (gone already is fine: the wanted state is reached)."""
    try:
        await client.get_schedule_handle(sid).delete()
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise


class Control:
    """``services.triggers.ScheduleControl`` over a Temporal client."""

    def __init__(self, client: Client) -> None:
        self._client = client

    async def pause(self, schedule_id: str, note: str) -> None:
        await self._client.get_schedule_handle(schedule_id).pause(note=note)

    async def unpause(self, schedule_id: str, note: str) -> None:
        await self._client.get_schedule_handle(schedule_id).unpause(note=note)

    async def fire_times(self, schedule_id: str) -> dict[str, str | None]:
        try:
            info = (await self._client.get_schedule_handle(schedule_id).describe()).info
        except RPCError:
            return {"next_fire": None, "last_fire": None}  # not made yet: the next start makes it
        nxt = info.next_action_times[0] if info.next_action_times else None
        last = info.recent_actions[-1].scheduled_at if info.recent_actions else None
        return {"next_fire": _shown(nxt), "last_fire": _shown(last)}

    async def missed(self, schedule_id: str) -> tuple[str, int] | None:
        """When the Schedule was made and how many of its fire times Temporal dropped since
        (the engine away longer than the catch-up window); None when there is no Schedule."""
        try:
            info = (await self._client.get_schedule_handle(schedule_id).describe()).info
        except RPCError:
            return None
        return _shown(info.created_at) or "", info.num_actions_missed_catchup_window

    async def matching_times(
        self, schedule_id: str, start: datetime, end: datetime, limit: int
    ) -> list[str]:
        """The Schedule's fire times from ``start`` to ``end``, both included (UTC), but no
        more than ``limit`` + 1 (enough to tell a range holds more than ``limit``)."""
        found: list[datetime] = []
        since = _before(start)
        while len(found) <= limit:
            # Temporal answers a page at a time (at most 1000 times): ask on after the last
            request = ListScheduleMatchingTimesRequest(
                namespace=self._client.namespace, schedule_id=schedule_id
            )
            request.start_time.FromDatetime(since)
            request.end_time.FromDatetime(end)
            got = await self._client.workflow_service.list_schedule_matching_times(request)
            page = [t.ToDatetime(tzinfo=UTC) for t in got.start_time]
            page = [t for t in page if since < t <= end]
            if not page:
                break
            found += page
            since = page[-1]
        return [f"{t:%Y-%m-%dT%H:%M:%SZ}" for t in found[: limit + 1]]

    async def backfill(self, schedule_id: str, start: datetime, end: datetime) -> None:
        """Fire every time from ``start`` to ``end`` now, under the Schedule's overlap policy
        (each fire's run is keyed by its time: a time fired already makes no second run)."""
        handle = self._client.get_schedule_handle(schedule_id)
        await handle.backfill(ScheduleBackfill(start_at=_before(start), end_at=end))


def _before(when: datetime) -> datetime:
    # Temporal's range starts after its start: a fire time at ``when`` itself is included
    return when - timedelta(milliseconds=1)


def _shown(when: datetime | None) -> str | None:
    return None if when is None else f"{when.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"
