"""Resource triggers: a watched versioned input changed — a tag of a definition moved to
another version (``tag: {definition, tag}``), a definition got a new version
(``versions_of: D``), or a named resource got a new version (``resource: NAME``: ``name``,
``version``, ``previous``). The listening triggers of the same project fire with the change under
``resource`` (``kind``, ``definition``, ``old`` and ``new`` version numbers, and ``tag``); one
move or one version is one fire (its key), however often the change is handed on.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lockstep.records import Cause, CauseKind
from lockstep.services.triggers import Registered, TriggerService
from lockstep.services.triggers import fire_status as status
from lockstep.triggers.dispatch import Dispatcher, Event


class ResourceSource:
    def __init__(self, triggers: TriggerService, dispatcher: Dispatcher) -> None:
        self._triggers = triggers
        self._dispatcher = dispatcher

    async def tag_moved(self, project: str, change: dict[str, Any]) -> int:
        """``change``: definition, tag, old, new, move (the tag's count of moves)."""
        data = {"kind": "tag", **{k: change.get(k) for k in ("definition", "tag", "old", "new")}}
        key = f"tag:{change['tag']}:{change['move']}"

        def listens(spec: dict[str, Any]) -> bool:
            watch = spec.get("tag") or {}
            return bool(
                watch.get("definition") == change["definition"]
                and watch.get("tag") == change["tag"]
            )

        return await self._fire(project, listens, key, data)

    async def version_made(self, project: str, change: dict[str, Any]) -> int:
        """``change``: definition, old (the version before, None for the first), new."""
        data = {"kind": "version", **{k: change.get(k) for k in ("definition", "old", "new")}}

        def listens(spec: dict[str, Any]) -> bool:
            return bool(spec.get("versions_of") == change["definition"])

        return await self._fire(project, listens, f"version:{change['new']}", data)

    async def resource_written(self, project: str, change: dict[str, Any]) -> int:
        """``change``: name, version (the new one), previous (None for the first)."""
        data = {"kind": "resource", **{k: change.get(k) for k in ("name", "version", "previous")}}

        def listens(spec: dict[str, Any]) -> bool:
            return bool(spec.get("resource") == change["name"])

        key = f"resource:{change['name']}:{change['version']}"
        return await self._fire(project, listens, key, data)

    async def _fire(
        self,
        project: str,
        listens: Callable[[dict[str, Any]], bool],
        key: str,
        data: dict[str, Any],
    ) -> int:
        listening: list[Registered] = [
            t for t in await self._triggers.of_kind(project, "resource") if listens(t.spec)
        ]
        for trigger in listening:
            event = Event(
                key=key, data=data, cause=Cause(kind=CauseKind.RESOURCE, trigger=trigger.trigger)
            )
            fire, _ = await self._dispatcher.accept(trigger, event)
            if fire.status == status.ACCEPTED:  # new, or left undecided by a crash or outage
                await self._dispatcher.handle(fire)
        return len(listening)
