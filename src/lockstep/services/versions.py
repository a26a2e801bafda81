"""Versions, drafts, tags and selectors: one way to name, promote and roll back what runs,
whether the workflow lives in Git or was published through the API."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lockstep.clock import utcnow
from lockstep.errors import Conflict, InvalidRequest, NotFound, SpecError
from lockstep.records import Cause, CauseKind, RunRecord, RunSelection
from lockstep.registry.selectors import LIVE, Selector, check_tag, parse_selector
from lockstep.services.registry import RegistryService
from lockstep.services.run_launch import Locked
from lockstep.services.runs import RunService
from lockstep.settings import Settings
from lockstep.spec.git_names import GitError, is_sha, parse_remote
from lockstep.storage import registry as reg
from lockstep.storage import trigger_events as events
from lockstep.storage import versions as store
from lockstep.storage.database import Database
from lockstep.storage.rows import DefinitionRefRow, DefinitionRow, RepositoryRow, TagRow

if TYPE_CHECKING:
    from lockstep.spec.blueprint_fetch import ReadPublished

# the spec package (models, CEL, JSON Schema) is imported by the methods that read specs:
# listing or showing records never needs it


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


def _spec_data(text: str, file: str) -> dict[str, Any]:
    from lockstep.spec.documents import load_workflow, plain_data

    return plain_data(load_workflow(text, file))


class VersionService:
    def __init__(
        self, *, settings: Settings, db: Database, registry: RegistryService, runs: RunService
    ) -> None:
        self._settings = settings
        self._db = db
        self._registry = registry
        self._runs = runs
        #: called after a tag moved (project, definition, tag, version): the control plane
        #: registers the version's triggers here (services cannot import triggers/)
        self.on_tag_moved: Callable[[str, str, str, int], Awaitable[object]] | None = None
        #: called before a tag moves (same arguments); raises to refuse the move (a version
        #: whose triggers would make an upstream cycle, fire too often…)
        self.check_tag_move: Callable[[str, str, str, int], Awaitable[object]] | None = None
        #: called after a change that upstream or resource triggers listen for committed (a
        #: tag moved, a version was made): wakes the server's event pump (``triggers/events``)
        self.on_event: Callable[[], object] | None = None

    async def exists(self, project: str, name: str) -> bool:
        """Whether ``project`` has a definition ``name`` (not archived)."""
        try:
            await self._db.call(lambda s: reg.definition_row(s, project, name))
        except NotFound:
            return False
        return True

    async def _definition(self, project: str, name: str) -> DefinitionRow:
        return await self._db.call(lambda s: reg.definition_row(s, project, name, archived=True))

    # -- API-published definitions ---------------------------------------------------------

    async def create(self, project: str, name: str, description: str | None) -> None:
        await self._db.call(lambda s: store.create_api_definition(s, project, name, description))

    async def save_draft(self, project: str, name: str, text: str, by: str) -> dict[str, Any]:
        """Store the draft whatever its state, with every validation error and its position,
        so an editor can save work in progress; only a valid draft can be published."""
        definition = await self._definition(project, name)
        store.check_publishable(definition)
        errors: list[str] = []
        try:
            digest = (await self._expand(project, name, text)).digest
        except SpecError as exc:
            errors = [str(d) for d in exc.diagnostics] or [str(exc)]
            digest = ""
        row = await self._db.call(
            lambda s: store.save_draft(s, definition, text, digest, errors, by)
        )
        return store.draft_out(row)

    async def get_draft(self, project: str, name: str) -> dict[str, Any]:
        definition = await self._definition(project, name)
        return await self._db.call(lambda s: store.draft_out(store.get_draft(s, definition)))

    async def publish(
        self, project: str, name: str, *, by: str, message: str | None
    ) -> tuple[dict[str, Any], bool]:
        """The draft becomes a version (or the existing version with the same content), its
        published blueprints expanded now, once."""
        definition = await self._definition(project, name)
        store.check_publishable(definition)
        text = await self._db.call(lambda s: store.get_draft(s, definition).spec_text)
        # re-validated here: the rules, and the versions its blueprints name, may have changed
        loaded = await self._expand(project, name, text)

        def _publish(s: Session) -> tuple[dict[str, Any], bool]:
            if store.get_draft(s, definition).spec_text != text:
                raise Conflict(f"the draft of '{name}' changed while publishing; publish again")
            number, created = store.publish(s, definition, loaded.text, loaded.digest, by, message)
            if created:
                events.add(
                    s,
                    definition.project_id,
                    events.VERSION,
                    {"definition": name, "old": number - 1 or None, "new": number},
                )
            row = store.version_row(s, definition, number)
            return store.version_out(s, definition, row), created

        out, created = await self._db.call(_publish)
        if created and self.on_event is not None:
            self.on_event()
        return out, created

    async def _expand(self, project: str, name: str, text: str) -> Any:
        """A draft of ``name`` loaded, its published blueprints (``DEF@SELECTOR``) expanded."""
        from lockstep.spec.blueprint_fetch import load_published

        return await load_published(
            self.published_reader(project),
            text,
            f"{name}.yaml",
            max_bytes=self._settings.max_spec_bytes,
            owner=name,
        )

    def published_reader(self, project: str) -> ReadPublished:
        """How ``uses: DEF@SELECTOR`` resolves in ``project``."""
        from lockstep.services.published_blueprints import published_readers

        return published_readers(self)(project)

    # -- versions ----------------------------------------------------------------------------

    async def list_versions(self, project: str, name: str, *, archived: bool) -> list[Any]:
        definition = await self._definition(project, name)
        return await self._db.call(lambda s: store.list_versions(s, definition, archived=archived))

    async def show(self, project: str, selector: str) -> dict[str, Any]:
        resolved = await self.resolve(project, selector)
        definition = await self._definition(project, resolved.definition)

        def _show(s: Session) -> dict[str, Any]:
            row = store.version_row(s, definition, resolved.number)
            return {**store.version_out(s, definition, row), "spec": row.spec_text}

        return {**await self._db.call(_show), "selector": selector, "sha": resolved.sha}

    async def archive(self, project: str, name: str, number: int, by: str) -> None:
        definition = await self._definition(project, name)
        await self._db.call(lambda s: store.archive_version(s, definition, number, by))

    async def diff(self, project: str, old: str, new: str) -> dict[str, Any]:
        from lockstep.spec.diff import diff_specs

        a, b = await self.resolve(project, old), await self.resolve(project, new)
        result = diff_specs(_spec_data(a.text, a.file), _spec_data(b.text, b.file))
        return {
            "from": {"definition": a.definition, "version": a.number},
            "to": {"definition": b.definition, "version": b.number},
            **result.to_json(),
            "lines": result.render(),
        }

    # -- tags ----------------------------------------------------------------------------------

    async def set_tag(
        self,
        project: str,
        name: str,
        tag: str,
        number: int,
        *,
        by: str,
        expect: int | None = None,
        expect_unset: bool = False,
        reason: str | None = None,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        check_tag(tag)
        definition = await self._definition(project, name)
        current = await self._db.call(lambda s: store.tag_target(s, definition, tag))
        await self._db.call(lambda s: store.version_row(s, definition, number))
        change: dict[str, Any] | None = None
        if current is not None and current != number:
            change = await self.diff(project, f"{name}@{current}", f"{name}@{number}")
        out: dict[str, Any] = {"tag": tag, "from": current, "to": number, "diff": change}
        if current != number and self.check_tag_move is not None:
            await self.check_tag_move(project, name, tag, number)
        if dry_run:
            return {**out, "moved": False, "dry_run": True}

        def _move(s: Session) -> tuple[int | None, bool]:
            previous, moved = store.move_tag(
                s,
                definition,
                tag,
                number,
                by=by,
                expect=expect,
                expect_unset=expect_unset,
                reason=reason,
            )
            if moved:  # resource triggers watching the tag fire once per move (its count)
                moves = s.get_one(TagRow, (definition.id, tag)).moves
                data = {"definition": name, "tag": tag, "old": previous, "new": number}
                events.add(s, definition.project_id, events.TAG, {**data, "move": moves})
            return previous, moved

        try:
            previous, moved = await self._db.call(_move)
        except IntegrityError:
            # two first moves of a new tag raced on a database with concurrent writers: the
            # loser sees the winner's row now and compares against it
            previous, moved = await self._db.call(_move)
        if moved and self.on_event is not None:
            self.on_event()
        if moved and self.on_tag_moved is not None:
            await self.on_tag_moved(project, name, tag, number)
        return {**out, "from": previous, "moved": moved, "dry_run": False}

    async def tagged(self, project: str, name: str, tag: str) -> dict[str, Any]:
        """The version ``tag`` points at, whole, in one call."""
        return await self.show(project, f"{name}@{check_tag(tag)}")

    async def tags(self, project: str, name: str) -> list[dict[str, Any]]:
        definition = await self._definition(project, name)
        return await self._db.call(lambda s: store.list_tags(s, definition))

    async def history(self, project: str, name: str, tag: str | None) -> list[dict[str, Any]]:
        if tag is not None:
            check_tag(tag)
        definition = await self._definition(project, name)
        return await self._db.call(lambda s: store.tag_history(s, definition, tag))

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

    # -- runs ------------------------------------------------------------------------------

    async def run(
        self,
        project: str,
        selector: str | Selector,
        *,
        params: dict[str, Any] | None = None,
        args: list[str] | None = None,
        defaults: list[str] | None = None,
        cause: Cause,
        idempotency_key: str | None = None,
        instance: str | None = None,
        pool: str | None = None,
        no_cache: bool = False,
        selection: RunSelection | None = None,
    ) -> tuple[RunRecord, bool]:
        """Resolve ``selector`` now, once, and submit a run locked to what it named, recorded
        with ``cause`` (a rerun's is one of ``latest``: the ref as it is now); ``selection``
        runs part of its graph."""
        from lockstep.spec.documents import load_workflow, params_schema
        from lockstep.spec.params import parse_cli_params

        got = await self.resolve(project, selector)
        schema = params_schema(load_workflow(got.text, got.file))
        given = {
            **parse_cli_params(defaults or [], schema),
            **(params or {}),
            **parse_cli_params(args or [], schema),
        }
        origin = f"git:{got.repo}@{got.sha}:{got.file}" if got.sha else f"version:{got.selector}"
        return await self._runs.submit(
            project=project,
            spec_text=got.text,
            file=got.file,
            params=given,
            source=origin,
            cause=cause,
            idempotency_key=idempotency_key,
            no_cache=no_cache,
            selection=selection,
            locked=Locked(
                repo=got.repo,
                sha=got.sha,
                definition=got.definition,
                version=got.number,
                instance=instance,
                selector=got.selector,
                rerun_policy="latest" if cause.kind == CauseKind.RERUN else None,
                pool=pool,
            ),
        )
