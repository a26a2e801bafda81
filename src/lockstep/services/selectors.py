"""Selectors resolved to what they name, once: a version number, a tag's target, or for a
git-backed definition a branch, tag or commit (read from the mirror when the scanner never
recorded it). The version service extends this; the published-blueprint reader resolves
through it too."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.errors import InvalidRequest, NotFound
from lockstep.registry.selectors import LIVE, Selector, parse_selector
from lockstep.services.registry import RegistryService
from lockstep.settings import Settings
from lockstep.spec.git_names import GitError, is_sha, parse_remote
from lockstep.storage import registry as reg
from lockstep.storage import versions as store
from lockstep.storage.database import Database
from lockstep.storage.rows import DefinitionRefRow, DefinitionRow, RepositoryRow

if TYPE_CHECKING:
    from lockstep.spec.blueprint_fetch import ReadPublished


@dataclass(frozen=True)
class Resolved:
    """What a selector names, decided once: a version, and for git the commit to check out."""

    definition: str
    number: int
    text: str
    file: str
    selector: str
    sha: str | None = None
    repo: str | None = None

    def params_schema(self) -> dict[str, Any] | None:
        """What a run of this version takes as params (None: it declares none)."""
        from lockstep.spec.documents import load_workflow, params_schema

        return params_schema(load_workflow(self.text, self.file))


class SelectorResolver:
    def __init__(self, *, settings: Settings, db: Database, registry: RegistryService) -> None:
        self._settings = settings
        self._db = db
        self._registry = registry

    async def _definition(self, project: str, name: str) -> DefinitionRow:
        return await self._db.call(lambda s: reg.definition_row(s, project, name, archived=True))

    def published_reader(self, project: str) -> ReadPublished:
        """How ``uses: DEF@SELECTOR`` resolves in ``project``."""
        from lockstep.services.published_blueprints import published_readers

        return published_readers(self)(project)

    # -- selectors -------------------------------------------------------------------------

    async def resolve(self, project: str, text: str | Selector) -> Resolved:
        sel = parse_selector(text) if isinstance(text, str) else text
        definition = await self._definition(project, sel.definition)
        repo = await self._db.call(
            lambda s: (
                s.get(RepositoryRow, definition.repository_id) if definition.repository_id else None
            )
        )
        if sel.kind == "ref":
            if repo is None:
                raise InvalidRequest(
                    f"'{sel.definition}' was published through the API and has no branches, "
                    f"tags or commits; use {sel.definition}@<number> or {sel.definition}@$TAG"
                )
            return await self._at_ref(definition, repo, sel)
        number = await self._db.call(lambda s: self._number(s, definition, sel))
        text_, source = await self._db.call(
            lambda s: (
                store.version_row(s, definition, number).spec_text,
                store.newest_commit(s, definition, number),
            )
        )
        sha = source[0] if source and repo is not None else None
        file = source[1] if source else f"{definition.name}.yaml"
        return Resolved(
            definition=definition.name,
            number=number,
            text=text_,
            file=file,
            selector=sel.text,
            sha=sha,
            repo=repo.url if repo is not None and sha else None,
        )

    @staticmethod
    def _number(s: Session, definition: DefinitionRow, sel: Selector) -> int:
        if sel.kind == "number":
            return store.version_row(s, definition, int(sel.value)).number
        tag = sel.value if sel.kind == "tag" else LIVE
        target = store.tag_target(s, definition, tag)
        if target is not None:
            return target
        if sel.kind == "tag":
            raise NotFound(
                f"tag {tag} is not set on '{definition.name}'; set it with "
                f"`lockstep tags set {definition.name} '{tag}' VERSION`"
            )
        latest = store.latest_number(s, definition)
        if latest is None:
            raise NotFound(f"definition '{definition.name}' has no versions yet")
        return latest

    async def _at_ref(
        self, definition: DefinitionRow, repo: RepositoryRow, sel: Selector
    ) -> Resolved:
        value = sel.value
        refs: dict[str, str] = json.loads(repo.refs_json or "{}")
        names = (
            [value] if value.startswith("refs/") else [f"refs/heads/{value}", f"refs/tags/{value}"]
        )
        found = {n: refs[n] for n in names if n in refs}
        commits = (
            await self._db.call(lambda s: store.commits_with_prefix(s, definition, value.lower()))
            if is_sha(value)
            else []
        )
        options = [
            f"{'branch' if n.startswith('refs/heads/') else 'tag'} {n} at {sha[:12]}"
            for n, sha in found.items()
        ]
        options += [f"commit {c}" for c in commits if c not in found.values()]
        if len(options) > 1:
            raise InvalidRequest(
                f"selector '{sel.text}' is ambiguous: {'; '.join(options)}; name one exactly "
                f"(e.g. {sel.definition}@refs/heads/{value} or a longer SHA)"
            )
        ref_row = None
        if len(found) == 1 and not value.startswith("refs/"):
            ref_row = await self._db.call(lambda s: s.get(DefinitionRefRow, (definition.id, value)))
        if ref_row is not None:
            if ref_row.status != "valid" or ref_row.version is None:
                first = (json.loads(ref_row.errors_json) or ["invalid"])[0]
                raise InvalidRequest(
                    f"'{definition.name}' is not runnable on {value}: {first} "
                    f"(see `lockstep definitions show {definition.name}`)"
                )
            number = ref_row.version
            text = await self._db.call(lambda s: reg.spec_of(s, definition.id, number))
            return Resolved(
                definition.name, number, text, definition.path, sel.text, ref_row.sha, repo.url
            )
        if not found and not is_sha(value):
            raise NotFound(
                f"'{value}' is not a scanned branch or tag of repository '{repo.name}'; "
                "scan it or use a commit SHA"
            )
        return await self._from_mirror(definition, repo, sel, commits[0] if commits else value)

    async def _from_mirror(
        self, definition: DefinitionRow, repo: RepositoryRow, sel: Selector, rev: str
    ) -> Resolved:
        """A commit the scanner never recorded for this file: read it from the mirror, and
        register its content as a version (the same one when the content is known)."""
        from lockstep.registry.commit_files import load_at_commit

        mirrors = self._registry.mirrors
        remote = parse_remote(
            repo.url,
            allow_http=self._settings.git_allow_http,
            allow_file=self._settings.git_allow_file,
        )
        mirror = mirrors.mirror_path(remote)
        if not mirror.exists():
            mirror = await mirrors.sync(remote, allow_file=self._settings.git_allow_file)
        try:
            sha = await mirrors.resolve(mirror, rev)
        except GitError as exc:
            if exc.reason == "not-found":
                raise NotFound(str(exc)) from None
            raise
        data = await mirrors.read_file(mirror, sha, definition.path)
        # a SpecError here rejects the run; blueprints expand from the same commit
        loaded = await load_at_commit(
            mirrors,
            mirror,
            sha,
            definition.path,
            data,
            max_bytes=self._settings.max_spec_bytes,
            read_published=self.published_reader(definition.project_id),
        )
        number = await self._db.call(
            lambda s: reg.version_for(
                s, definition.id, loaded.digest, loaded.text, sha, definition.path, utcnow()
            )
        )
        return Resolved(
            definition.name, number, loaded.text, definition.path, sel.text, sha, repo.url
        )
