"""The event pump: hands the outbox of trigger events (``storage/trigger_events``: a run of a
definition finished, a tag moved, a version was made) to the upstream and resource triggers
listening, then deletes each event. Runs in the server, woken by a change it hears of and
every second otherwise (a run finishing in the engine's recorder, a scan, another process).

Durable by construction: the event commits with the change, and leaves only once handed on; a
crash in between hands it again after restart, and the fire key keeps that to one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from lockstep.errors import Unavailable
from lockstep.services.triggers import TriggerEvent, TriggerService
from lockstep.services.triggers import event_kinds as store
from lockstep.triggers.resources import ResourceSource
from lockstep.triggers.upstream import UpstreamSource

log = logging.getLogger(__name__)
#: an event whose handing fails this often for a reason other than an outage is dropped
MAX_ATTEMPTS = 5


class EventPump:
    def __init__(
        self,
        triggers: TriggerService,
        upstream: UpstreamSource,
        resources: ResourceSource,
        every: float = 1.0,
    ) -> None:
        self._triggers = triggers
        self._upstream = upstream
        self._resources = resources
        self._every = every
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the outbox now (a change was just committed)."""
        self._wake.set()

    async def run_forever(self) -> None:
        while True:
            try:
                await self.drain()
            except Unavailable as exc:
                log.warning("trigger.events_unavailable", extra={"error": str(exc)})
            except Exception:  # never let one bad round stop the pump
                log.exception("trigger.events_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self._every)
            self._wake.clear()

    async def drain(self) -> int:
        """Hand on every pending event; returns how many. Raises ``Unavailable`` (the rest
        stay for the next round)."""
        done = 0
        while batch := await self._triggers.pending_events():
            for event in batch:
                await self._hand(event)
                done += 1
            if len(batch) < 100:
                break
        return done

    async def _hand(self, event: TriggerEvent) -> None:
        try:
            if event.kind == store.RUN:
                await self._upstream.run_finished(event.project, event.data["run_id"])
            elif event.kind == store.TAG:
                await self._resources.tag_moved(event.project, event.data)
            elif event.kind == store.VERSION:
                await self._resources.version_made(event.project, event.data)
            elif event.kind == store.RESOURCE:
                await self._resources.resource_written(event.project, event.data)
        except Unavailable:
            raise
        except Exception:
            # a bug, not an outage: keep it for a few more rounds, then drop it, said loudly
            log.exception("trigger.event_failed", extra={"event": event.id, "kind": event.kind})
            if event.attempts + 1 < MAX_ATTEMPTS:
                await self._triggers.event_failed(event.id)
                return
            log.error("trigger.event_dropped", extra={"event": event.id, "kind": event.kind})
        await self._triggers.event_done(event.id)
