"""Project secrets: write-only for users (a value goes in and is never returned, listed or
logged); their values go out only to a worker executing a step of a running run that uses
them, or running a replica of a deployment whose deployed version uses them."""

from __future__ import annotations

import builtins

from sqlalchemy.orm import Session

from lockstep.engine.states import RunStatus
from lockstep.errors import NotFound, PermissionDenied
from lockstep.secrets.crypto import SecretBox
from lockstep.storage import secrets as store
from lockstep.storage.database import Database
from lockstep.storage.rows import RunRow
from lockstep.storage.secrets import SecretInfo


class SecretService:
    def __init__(self, db: Database, box: SecretBox) -> None:
        self._db = db
        self._box = box

    async def set(self, project: str, name: str, value: str, *, by: str) -> tuple[SecretInfo, bool]:
        """Store (encrypted) the value of ``name``; returns what may be shown of it, and
        whether it is new."""

        def put(s: Session) -> tuple[SecretInfo, bool]:
            created = store.set_secret(s, self._box, project, name, value, by=by)
            info = next(i for i in store.list_secrets(s, project) if i.name == name)
            return info, created

        return await self._db.call(put)

    async def list(self, project: str) -> builtins.list[SecretInfo]:
        return await self._db.call(lambda s: store.list_secrets(s, project))

    async def delete(self, project: str, name: str) -> None:
        await self._db.call(lambda s: store.delete_secret(s, project, name))

    async def missing(self, project: str, names: builtins.list[str]) -> builtins.list[str]:
        """The names not set in ``project`` (nothing of any value is read)."""
        return await self._db.call(lambda s: store.missing(s, project, names))

    async def verifier(self, project: str, name: str) -> str | None:
        """The value of ``name`` for checking a webhook delivery's signature or token against
        (None when it is not set). The caller compares and drops it: never returned, never
        logged."""

        def read(s: Session) -> str | None:
            if store.missing(s, project, [name]):
                return None
            return store.resolve(s, self._box, project, [name])[name]

        return await self._db.call(read)

    async def for_running_run(
        self, project: str, run_id: str, names: builtins.list[str]
    ) -> dict[str, str]:
        """The values of ``names`` for a worker executing a step of ``run_id``: refused for a
        run that is not running, and for a name its workflow does not use."""

        def resolve(s: Session) -> dict[str, str]:
            used = _used_by(s, project, run_id)
            return _allowed(s, self._box, project, names, used, f"run '{run_id}'")

        return await self._db.call(resolve)

    async def for_replica(
        self, project: str, replica_id: str, names: builtins.list[str], used: builtins.list[str]
    ) -> dict[str, str]:
        """The values of ``names`` for a worker running deployment replica ``replica_id``,
        whose deployed version uses the secrets ``used``."""
        who = f"deployment replica '{replica_id[:200]}'"
        return await self._db.call(lambda s: _allowed(s, self._box, project, names, used, who))


def _allowed(
    s: Session,
    box: SecretBox,
    project: str,
    names: builtins.list[str],
    used: builtins.list[str],
    who: str,
) -> dict[str, str]:
    refused = sorted(set(names) - set(used))
    if refused:
        raise PermissionDenied(f"{who} does not use {', '.join(refused)}")
    return store.resolve(s, box, project, sorted(set(names)))


def _used_by(s: Session, project: str, run_id: str) -> builtins.list[str]:
    """The secrets (and source credentials) the workflow of a running run refers to."""
    from lockstep.engine.plan import secret_names
    from lockstep.spec.documents import load_workflow
    from lockstep.spec.load import LoadedSpec

    row = s.get(RunRow, run_id)
    if row is None or row.project_id != project:
        raise NotFound(f"run '{run_id}' not found")
    if row.status != RunStatus.RUNNING:
        raise PermissionDenied(f"run '{run_id}' is {row.status}, not running")
    loaded = load_workflow(row.spec_text, "workflow.yaml")
    if not isinstance(loaded, LoadedSpec):
        return []
    return secret_names(loaded.spec) + [
        src.credentials for src in loaded.spec.sources if src.credentials
    ]
