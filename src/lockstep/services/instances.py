"""Instances: a definition pinned to a ref selector. Running one resolves the ref once, at
creation, to a commit and a version, and locks the run to both."""

from __future__ import annotations

import json
import re
from typing import Any

from sqlalchemy.orm import Session

from lockstep.errors import InvalidRequest, NotFound
from lockstep.records import RunRecord
from lockstep.registry.urls import check_ref_name, is_sha, parse_remote
from lockstep.services.registry import RegistryService
from lockstep.services.runs import Locked, RunService
from lockstep.settings import Settings
from lockstep.spec.load import load_spec
from lockstep.spec.params import parse_cli_params
from lockstep.storage import registry as store
from lockstep.storage.database import Database, utcnow
from lockstep.storage.db import DefinitionRefRow, DefinitionRow, RepositoryRow

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")


class InstanceService:
    def __init__(
        self, *, settings: Settings, db: Database, registry: RegistryService, runs: RunService
    ) -> None:
        self._settings = settings
        self._db = db
        self._registry = registry
        self._runs = runs

    async def create(
        self,
        project: str,
        *,
        name: str,
        definition: str,
        ref: str,
        params: list[str],
        pool: str | None = None,
    ) -> dict[str, Any]:
        if not _NAME.fullmatch(name):
            raise InvalidRequest(f"invalid instance name '{name}'; use a-z, 0-9, '.', '_', '-'")
        if not is_sha(ref):
            check_ref_name(ref)
        await self._db.call(
            lambda s: store.create_instance(
                s, project, name=name, definition=definition, ref=ref, params=params, pool=pool
            )
        )
        return {"name": name, "definition": definition, "ref": ref, "params": params, "pool": pool}

    async def run(
        self,
        project: str,
        name: str,
        *,
        params: list[str],
        triggered_by: str,
        typed: dict[str, Any] | None = None,
        rerun_of: str | None = None,
    ) -> RunRecord:
        inst = await self._db.call(lambda s: store.get_instance(s, project, name))
        definition, repo = await self._db.call(lambda s: _owner(s, inst.definition_id))
        sha, version, text = await self._resolve(project, definition, repo, inst.ref)
        loaded = load_spec(text, definition.path)
        given = {
            **parse_cli_params(json.loads(inst.params_json), loaded.spec.params),
            **(typed or {}),
            **parse_cli_params(params, loaded.spec.params),
        }
        record, _ = await self._runs.submit(
            project=project,
            spec_text=text,
            file=definition.path,
            params=given,
            source=f"git:{repo.url}@{sha}:{definition.path}",
            triggered_by=triggered_by,
            locked=Locked(
                repo=repo.url,
                sha=sha,
                definition=definition.name,
                version=version,
                instance=inst.name,
                selector=inst.ref,
                rerun_of=rerun_of,
                rerun_policy="latest" if rerun_of else None,
                pool=inst.pool,
            ),
        )
        return record

    async def rerun_latest(self, project: str, run_id: str, *, triggered_by: str) -> RunRecord:
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
            triggered_by=triggered_by,
            rerun_of=run_id,
        )

    async def _resolve(
        self, project: str, definition: DefinitionRow, repo: RepositoryRow, ref: str
    ) -> tuple[str, int, str]:
        """(commit, version number, spec text) for ``ref``, decided now and never again."""
        ref_row = await self._db.call(lambda s: s.get(DefinitionRefRow, (definition.id, ref)))
        if ref_row is not None:
            if ref_row.status != "valid" or ref_row.version is None:
                first = (json.loads(ref_row.errors_json) or ["invalid"])[0]
                raise InvalidRequest(
                    f"'{definition.name}' is not runnable on {ref}: {first} "
                    f"(see `lockstep definitions show {definition.name}`)"
                )
            number = ref_row.version
            text = await self._db.call(lambda s: store.spec_of(s, definition.id, number))
            return ref_row.sha, number, text
        if not is_sha(ref):
            raise NotFound(
                f"'{ref}' is not a scanned branch or tag of repository '{repo.name}'; "
                "scan it or use a commit SHA"
            )
        mirrors = self._registry.mirrors
        remote = parse_remote(
            repo.url,
            allow_http=self._settings.git_allow_http,
            allow_file=self._settings.git_allow_file,
        )
        mirror = mirrors.mirror_path(remote)
        if not mirror.exists():
            mirror = await mirrors.sync(remote, allow_file=self._settings.git_allow_file)
        sha = await mirrors.resolve(mirror, ref)
        data = await mirrors.read_file(mirror, sha, definition.path)
        loaded = load_spec(data, definition.path)  # a SpecError here rejects the run
        number = await self._db.call(
            lambda s: store.version_for(
                s, definition.id, loaded.digest, loaded.text, sha, definition.path, utcnow()
            )
        )
        return sha, number, loaded.text


def _owner(s: Session, definition_id: str) -> tuple[DefinitionRow, RepositoryRow]:
    definition = s.get(DefinitionRow, definition_id)
    repo = s.get(RepositoryRow, definition.repository_id) if definition else None
    if definition is None or repo is None or repo.archived_at is not None:
        raise NotFound("the instance's definition or repository no longer exists")
    return definition, repo
