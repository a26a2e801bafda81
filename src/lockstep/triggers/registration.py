"""Registering a definition's triggers: when ``$LIVE`` moves to a version, that version's
schedule triggers become (or update) their Temporal Schedules, each running that version by
number (explicit: a later tag move re-registers them for the new version).

This slice keeps no table of triggers: the Schedules are the state (migration 0013 and
``storage/triggers.py`` come next, for listing, removal and a retry after a failed sync).
"""

from __future__ import annotations

import logging

from temporalio.client import Client
from temporalio.service import RPCError

from lockstep.engine.triggered import FireRequest
from lockstep.errors import EngineUnavailable
from lockstep.registry.selectors import LIVE
from lockstep.services.versions import VersionService
from lockstep.spec.documents import load_workflow
from lockstep.spec.models import WorkflowSpec
from lockstep.triggers import schedules

log = logging.getLogger(__name__)


class TriggerRegistry:
    def __init__(self, client: Client, queue: str, versions: VersionService) -> None:
        self._client = client
        self._queue = queue
        self._versions = versions

    async def tag_moved(self, project: str, definition: str, tag: str, number: int) -> list[str]:
        """Bring the Schedules of ``definition`` to version ``number`` when ``$LIVE`` moved
        there; returns the schedule ids it made or updated."""
        if tag != LIVE:
            return []
        got = await self._versions.resolve(project, f"{definition}@{number}")
        loaded = load_workflow(got.text, got.file)
        spec = getattr(loaded, "spec", None)
        if not isinstance(spec, WorkflowSpec):
            return []  # a state machine has no triggers: key yet
        made: list[str] = []
        for tid, trigger in spec.triggers.items():
            request = FireRequest(
                project=project,
                definition=definition,
                trigger=tid,
                selector=f"{definition}@{number}",
                params=dict(trigger.params),
            )
            try:
                made.append(await schedules.put(self._client, request, trigger, self._queue))
            except RPCError as exc:
                raise EngineUnavailable(
                    f"trigger '{tid}' of '{definition}' was not scheduled: {exc.message}; "
                    "move the tag again when the engine is back"
                ) from exc
            log.info("trigger.registered", extra={"trigger": tid, "definition": definition})
        return made
