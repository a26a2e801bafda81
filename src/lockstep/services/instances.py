"""Instances: a definition pinned to a ref selector. Running one resolves the ref once, at
creation, to a commit and a version, and locks the run to both."""

from __future__ import annotations

import builtins
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.orm import Session

from lockstep.errors import EngineUnavailable, InvalidRequest, NotFound
from lockstep.records import Cause, CauseKind, RunRecord
from lockstep.registry.selectors import parse_selector
from lockstep.services.runs import RunService
from lockstep.services.versions import VersionService
from lockstep.storage import registry as store
from lockstep.storage.database import Database
from lockstep.storage.rows import DefinitionRow

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
#: (project, definition, instance, its own triggers): set by the control plane, which
#: registers triggers (services cannot import triggers/)
TriggersHook = Callable[[str, str, str, dict[str, Any]], Awaitable[object]]


class InstanceService:
    def __init__(self, *, db: Database, runs: RunService, versions: VersionService) -> None:
        self._db = db
        self._runs = runs
        self._versions = versions
        #: refuses triggers that cannot be registered (raises), before anything is stored
        self.check_triggers: TriggersHook | None = None
        #: registers an instance's triggers once stored (Schedules made, updated or removed)
        self.on_triggers_changed: TriggersHook | None = None

    async def create(
        self,
        project: str,
        *,
        name: str,
        definition: str,
        ref: str,
        params: list[str],
        pool: str | None = None,
        triggers: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        if not _NAME.fullmatch(name):
            raise InvalidRequest(f"invalid instance name '{name}'; use a-z, 0-9, '.', '_', '-'")
        parse_selector(f"{definition}@{ref}")
        triggers = triggers or {}
        if triggers:
            await self._check(project, definition, name, triggers)
        await self._db.call(
            lambda s: store.create_instance(
                s,
                project,
                name=name,
                definition=definition,
                ref=ref,
                params=params,
                pool=pool,
                triggers=triggers,
            )
        )
        if triggers and self.on_triggers_changed is not None:
            await self.on_triggers_changed(project, definition, name, triggers)
        return {
            "name": name,
            "definition": definition,
            "ref": ref,
            "params": params,
            "pool": pool,
            "triggers": triggers,
        }

    async def set_triggers(
        self, project: str, name: str, triggers: dict[str, Any]
    ) -> dict[str, Any]:
        """Replace the instance's own triggers (an empty mapping removes them) and register
        them; returns the instance."""
        inst = await self._db.call(lambda s: store.get_instance(s, project, name))
        definition = (await self._db.call(lambda s: _definition(s, inst.definition_id))).name
        if triggers:
            await self._check(project, definition, name, triggers)
        await self._db.call(lambda s: store.set_instance_triggers(s, project, name, triggers))
        if self.on_triggers_changed is not None:
            await self.on_triggers_changed(project, definition, name, triggers)
        return next(i for i in await self.list(project) if i["name"] == name)

    async def _check(
        self, project: str, definition: str, name: str, triggers: dict[str, Any]
    ) -> None:
        if self.check_triggers is None:
            raise EngineUnavailable(
                "triggers on an instance need the engine: start `lockstep server`"
            )
        await self.check_triggers(project, definition, name, triggers)

    async def run(
        self,
        project: str,
        name: str,
        *,
        params: list[str],
        cause: Cause,
        typed: dict[str, Any] | None = None,
        at: str | None = None,
        idempotency_key: str | None = None,
    ) -> RunRecord:
        """Run the instance with its default params and pool; ``at`` (a commit a push moved
        its ref to) replaces its ref, so the run is locked to that commit whatever the ref
        does before it starts."""
        inst = await self._db.call(lambda s: store.get_instance(s, project, name))
        definition = await self._db.call(lambda s: _definition(s, inst.definition_id))
        record, _ = await self._versions.run(
            project,
            parse_selector(f"{definition.name}@{at or inst.ref}"),
            defaults=json.loads(inst.params_json),
            params=typed,
            args=params,
            cause=cause,
            instance=inst.name,
            pool=inst.pool,
            idempotency_key=idempotency_key,
        )
        return record

    async def rerun_latest(self, project: str, run_id: str, *, user: str | None) -> RunRecord:
        """Run ``run_id``'s instance again on its ref as it is now, with the same params."""
        old = await self._runs.get(project, run_id)
        if old.instance is None:
            raise InvalidRequest(
                f"run {run_id} did not come from an instance; `--latest` needs one"
            )
        return await self.run(
            project,
            old.instance,
            params=[],
            typed=old.params,
            cause=Cause.repeat(CauseKind.RERUN, run_id, user),
        )

    async def list(self, project: str) -> builtins.list[dict[str, Any]]:
        return await self._db.call(lambda s: store.list_instances(s, project))


def _definition(s: Session, definition_id: str) -> DefinitionRow:
    definition = s.get(DefinitionRow, definition_id)
    if definition is None or definition.archived_at is not None:
        raise NotFound("the instance's definition no longer exists (its repository was removed)")
    return definition
