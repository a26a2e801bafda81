"""Registering a definition's triggers: when ``$LIVE`` moves to a version, that version's
triggers are recorded as the definition's, each running that version by number (explicit: a
later tag move re-registers them for the new version). Schedule triggers also become (or
update) their Temporal Schedules; the other kinds wait for their event (``triggers/dispatch``).

The table of registered triggers (``services/triggers``) is written first and says which
Schedules should exist; a trigger the new version no longer has loses its Schedule.

An instance's own ``triggers:`` (``triggers/instance_triggers`` says what they mean) register
here too: when the instance is created or changed, and again over the new file when ``$LIVE``
moves (they inherit its fields by id).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.service import RPCError

from lockstep.engine.triggered import FireRequest
from lockstep.errors import EngineUnavailable, InvalidRequest, NotFound
from lockstep.registry.selectors import LIVE
from lockstep.services.instances import InstanceService
from lockstep.services.registry import RegistryService
from lockstep.services.resources import ResourceService
from lockstep.services.triggers import Registered, TriggerService, Wanted
from lockstep.services.versions import VersionService
from lockstep.spec.cron import shortest_interval
from lockstep.spec.documents import load_workflow
from lockstep.spec.models import WorkflowSpec
from lockstep.spec.triggers import ResourceTrigger, ScheduleTrigger, TriggerSpec, UpstreamTrigger
from lockstep.triggers import schedules
from lockstep.triggers.instance_triggers import merged, registered_id

log = logging.getLogger(__name__)


class TriggerRegistry:
    def __init__(
        self,
        client: Client,
        queue: str,
        versions: VersionService,
        triggers: TriggerService,
        *,
        min_interval: float = 60.0,
        instances: InstanceService | None = None,
        repositories: RegistryService | None = None,
        resources: ResourceService | None = None,
    ) -> None:
        self._client = client
        self._queue = queue
        self._versions = versions
        self._triggers = triggers
        self._min_interval = min_interval
        self._instances = instances
        self._repositories = repositories
        self._resources = resources

    async def _triggers_of(self, project: str, definition: str, number: int) -> dict[str, Any]:
        got = await self._versions.resolve(project, f"{definition}@{number}")
        spec = getattr(load_workflow(got.text, got.file), "spec", None)
        # a state machine has no triggers: key yet
        return dict(spec.triggers) if isinstance(spec, WorkflowSpec) else {}

    async def check_tag_move(self, project: str, definition: str, tag: str, number: int) -> None:
        """Refuse, before ``$LIVE`` moves to version ``number``, triggers that cannot be
        registered: a schedule firing more often than the server allows, an upstream or
        resource trigger naming a definition the project does not have, an upstream trigger
        that closes a cycle among the project's live definitions. One line each."""
        if tag != LIVE:
            return
        triggers: dict[str, TriggerSpec] = await self._triggers_of(project, definition, number)
        where = f"version {number} of '{definition}'"
        await self._check(project, where, triggers, "$LIVE did not move")
        cycle = await self._upstream_cycle(project, definition, triggers)
        if cycle:
            raise InvalidRequest(
                f"upstream triggers of {where} would make a cycle: {' → '.join(cycle)} "
                "(each runs when the next one's run finishes); $LIVE did not move"
            )
        for name, own in await self._instances_of(project, definition):
            try:
                mine = merged(triggers, own, name)
            except InvalidRequest as exc:
                raise InvalidRequest(
                    f"{exc} (over the triggers of {where}); $LIVE did not move: change the "
                    f"instance's triggers first (`lockstep instances triggers {name} FILE`)"
                ) from None
            await self._check(project, f"instance '{name}'", mine, "$LIVE did not move")

    async def check_instance(
        self, project: str, definition: str, instance: str, own: dict[str, Any]
    ) -> None:
        """Refuse, before they are stored, an instance's triggers that do not validate over
        the live version's (the same rules as a file's: one line naming the field)."""
        live = await self._live_triggers(project, definition)
        mine = merged(live, own, instance)
        await self._check(project, f"instance '{instance}'", mine, "nothing was stored")
        # the instance's upstream triggers run this definition too: no cycle through them
        both = {**live, **{f"{instance}/{tid}": t for tid, t in mine.items()}}
        cycle = await self._upstream_cycle(project, definition, both)
        if cycle:
            raise InvalidRequest(
                f"upstream triggers of instance '{instance}' would make a cycle: "
                f"{' → '.join(cycle)} (each runs when the next one's run finishes); "
                "nothing was stored"
            )

    async def _check(
        self, project: str, where: str, triggers: dict[str, TriggerSpec], outcome: str
    ) -> None:
        for tid, trigger in triggers.items():
            if isinstance(trigger, ScheduleTrigger):
                field, every = _interval(trigger)
                if every < self._min_interval:
                    raise InvalidRequest(
                        f"triggers.{tid}.{field} of {where} fires every {every:g}s, more often "
                        f"than this server allows ({self._min_interval:g}s, "
                        f"LOCKSTEP_SCHEDULE_MIN_INTERVAL); {outcome}"
                    )
            for field, named in _watched(trigger):
                if not await self._versions.exists(project, named):
                    raise InvalidRequest(
                        f"triggers.{tid}.{field} of {where}: definition '{named}' not found "
                        f"in project '{project}'; {outcome}"
                    )
            resource = trigger.resource if isinstance(trigger, ResourceTrigger) else None
            if resource is not None and not await self._resource_exists(project, resource):
                raise InvalidRequest(
                    f"triggers.{tid}.resource of {where}: resource '{resource}' not found in "
                    f"project '{project}' (create it with `lockstep resources create "
                    f"{resource} --data FILE`); {outcome}"
                )
            watch = trigger.repository if isinstance(trigger, ResourceTrigger) else None
            if watch is not None and self._repositories is not None:
                known = {r.name for r in await self._repositories.repositories(project)}
                if watch.name not in known:
                    raise InvalidRequest(
                        f"triggers.{tid}.repository.name of {where}: repository "
                        f"'{watch.name}' is not connected to project '{project}' (connect it "
                        f"with `lockstep repos add URL`); {outcome}"
                    )

    async def _resource_exists(self, project: str, name: str) -> bool:
        if self._resources is None:
            return True  # nothing to check against (a process without resources)
        return name in {r.name for r in await self._resources.list(project)}

    async def _upstream_cycle(
        self, project: str, definition: str, triggers: dict[str, TriggerSpec]
    ) -> list[str]:
        """A path ``definition`` → … → ``definition`` along enabled upstream triggers (the
        others' as registered, this definition's as the new version has them), or []."""
        listens: dict[str, set[str]] = {}
        for row in await self._triggers.of_kind(project, "upstream"):
            if row.definition != definition and row.spec.get("enabled", True):
                listens.setdefault(row.definition, set()).add(str(row.spec["definition"]))
        listens[definition] = {
            t.definition for t in triggers.values() if isinstance(t, UpstreamTrigger) and t.enabled
        }
        path, seen = [definition], set[str]()

        def walk(node: str) -> bool:
            for upstream in sorted(listens.get(node, ())):
                if upstream == definition:
                    path.append(upstream)
                    return True
                if upstream in seen:
                    continue
                seen.add(upstream)
                path.append(upstream)
                if walk(upstream):
                    return True
                path.pop()
            return False

        return path if walk(definition) else []

    async def tag_moved(self, project: str, definition: str, tag: str, number: int) -> list[str]:
        """Bring the Schedules of ``definition`` to version ``number`` when ``$LIVE`` moved
        there, its instances' triggers too (they inherit the file's fields); returns the
        schedule ids it made or updated."""
        if tag != LIVE:
            return []
        # a state machine has none: going live removes the earlier version's
        triggers = await self._triggers_of(project, definition, number)
        made = await self._register(project, definition, number, triggers, None)
        for name, own in await self._instances_of(project, definition):
            made += await self._register(
                project, definition, number, merged(triggers, own, name), name
            )
        return made

    async def instance_changed(
        self, project: str, definition: str, instance: str, own: dict[str, Any]
    ) -> list[str]:
        """Register an instance's triggers as they now are (none: its registrations and
        Schedules go); returns the schedule ids it made or updated."""
        number = await self._live(project, definition)
        file = await self._triggers_of(project, definition, number) if number else {}
        mine = merged(file, own, instance)
        return await self._register(project, definition, number or 0, mine, instance)

    async def _register(
        self,
        project: str,
        definition: str,
        number: int,
        triggers: dict[str, TriggerSpec],
        instance: str | None,
    ) -> list[str]:
        """Make ``triggers`` the registered ones of the definition's file (``instance``
        None) or of ``instance``, with their Schedules; the others of that set go."""
        named = {
            (registered_id(instance, tid) if instance else tid): trigger
            for tid, trigger in triggers.items()
        }
        timed = {
            tid: trigger for tid, trigger in named.items() if isinstance(trigger, ScheduleTrigger)
        }
        requests = {
            tid: FireRequest(
                project=project,
                definition=definition,
                trigger=tid,
                # what the file's fire runs; an instance's runs the instance (its row says so)
                selector=f"{definition}@{number}",
                params=dict(trigger.params),
            )
            for tid, trigger in timed.items()
        }
        wanted = [
            Wanted(
                trigger=tid,
                kind=trigger.kind,
                spec=trigger.model_dump(mode="json"),
                # only a schedule has a Temporal Schedule; an event trigger waits for its event
                schedule_id=schedules.schedule_id(project, definition, tid) if tid in timed else "",
            )
            for tid, trigger in named.items()
        ]
        registered, gone = await self._triggers.replace(
            project, definition, number, wanted, instance
        )
        paused = {r.trigger: r.paused_by is not None for r in registered}
        made: list[str] = []
        try:
            for tid, trigger in timed.items():
                made.append(
                    await schedules.put(
                        self._client, requests[tid], trigger, self._queue, paused=paused[tid]
                    )
                )
                log.info("trigger.registered", extra={"trigger": tid, "definition": definition})
            for old in gone:
                if not old.schedule_id:
                    continue
                await schedules.remove(self._client, old.schedule_id)
                log.info(
                    "trigger.removed", extra={"trigger": old.trigger, "definition": definition}
                )
            # a pause, resume or another tag move may have written its row between our read
            # and our put: whatever the rows say now wins
            put = {tid: (number, paused[tid]) for tid in timed}
            for row in await self._triggers.list(project, definition):
                if (
                    row.instance == instance
                    and row.schedule_id
                    and put.get(row.trigger) != (row.version, row.paused_by is not None)
                ):
                    await self._put_row(row)
        except RPCError as exc:
            whose = f"instance '{instance}'" if instance else f"'{definition}'"
            raise EngineUnavailable(
                f"the triggers of {whose} were not all scheduled: {exc.message}; "
                "the server schedules them at its next start, or move the tag again"
            ) from exc
        return made

    async def _live(self, project: str, definition: str) -> int | None:
        """The version ``$LIVE`` names (None: not set yet)."""
        try:
            return (await self._versions.resolve(project, f"{definition}@{LIVE}")).number
        except NotFound:
            return None

    async def _live_triggers(self, project: str, definition: str) -> dict[str, Any]:
        number = await self._live(project, definition)
        return await self._triggers_of(project, definition, number) if number else {}

    async def _instances_of(
        self, project: str, definition: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """(name, own triggers) of each instance of ``definition`` that has triggers."""
        if self._instances is None:
            return []
        return [
            (str(i["name"]), dict(i["triggers"]))
            for i in await self._instances.list(project)
            if i["definition"] == definition and i.get("triggers")
        ]

    async def reconcile(self) -> int:
        """Make the Schedules match the registered triggers (a registration whose Temporal
        half failed, a Schedule lost, one left by an archived definition or a failed removal);
        returns how many were put or deleted. At server start."""
        done = 0
        rows = await self._triggers.every()
        for row in rows:
            if not row.schedule_id:
                continue
            try:
                await self._put_row(row)
                done += 1
            except RPCError as exc:
                log.warning(
                    "trigger.reconcile_failed", extra={"trigger": row.trigger, "error": exc.message}
                )
        try:
            done += await self._remove_orphans({r.schedule_id for r in rows if r.schedule_id})
        except RPCError as exc:
            log.warning("trigger.orphans_failed", extra={"error": exc.message})
        return done

    async def _remove_orphans(self, wanted: set[str]) -> int:
        """Delete the trigger Schedules no registered trigger names. Only this server's: one
        whose fires go to another queue belongs to another lockstep on the same engine."""
        removed = 0
        async for listed in await self._client.list_schedules():
            if not listed.id.startswith(schedules.PREFIX) or listed.id in wanted:
                continue
            handle = self._client.get_schedule_handle(listed.id)
            action = (await handle.describe()).schedule.action
            if not isinstance(action, ScheduleActionStartWorkflow) or (
                action.task_queue != self._queue
            ):
                continue
            # a tag move since our read may have registered it: the rows as they are now decide
            if listed.id in {r.schedule_id for r in await self._triggers.every()}:
                continue
            await schedules.remove(self._client, listed.id)
            log.info("trigger.orphan_removed", extra={"schedule": listed.id})
            removed += 1
        return removed

    async def _put_row(self, row: Registered) -> None:
        request = FireRequest(
            project=row.project,
            definition=row.definition,
            trigger=row.trigger,
            selector=f"{row.definition}@{row.version}",
            params=dict(row.spec.get("params") or {}),
        )
        trigger = ScheduleTrigger.model_validate(row.spec)
        await schedules.put(
            self._client, request, trigger, self._queue, paused=row.paused_by is not None
        )


def _interval(trigger: ScheduleTrigger) -> tuple[str, float]:
    """(the field that sets it, the shortest time between two fires, in seconds)."""
    if trigger.every is not None:
        return "every", float(trigger.every)
    return "cron", shortest_interval(trigger.cron or "@yearly")


def _watched(trigger: TriggerSpec) -> Iterator[tuple[str, str]]:
    """(field, definition) for each definition an event trigger names."""
    if isinstance(trigger, UpstreamTrigger):
        yield "definition", trigger.definition
    elif isinstance(trigger, ResourceTrigger):
        if trigger.tag is not None:
            yield "tag.definition", trigger.tag.definition
        if trigger.versions_of is not None:
            yield "versions_of", trigger.versions_of
