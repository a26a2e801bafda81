"""Versions, drafts and tags: one way to name, promote and roll back what runs, whether the
workflow lives in Git or was published through the API (selectors resolve in
``services/selectors``, which this service extends)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lockstep.errors import Conflict, InvalidRequest, NotFound, SpecError
from lockstep.records import Cause, CauseKind, RunRecord, RunSelection
from lockstep.registry.selectors import Selector, check_tag
from lockstep.services.registry import RegistryService
from lockstep.services.run_launch import Locked
from lockstep.services.runs import RunService
from lockstep.services.selectors import SelectorResolver
from lockstep.settings import Settings
from lockstep.storage import registry as reg
from lockstep.storage import trigger_events as events
from lockstep.storage import versions as store
from lockstep.storage.database import Database
from lockstep.storage.rows import TagRow

# the spec package (models, CEL, JSON Schema) is imported by the methods that read specs:
# listing or showing records never needs it


def _spec_data(text: str, file: str) -> dict[str, Any]:
    from lockstep.spec.documents import load_workflow, plain_data

    return plain_data(load_workflow(text, file))


class VersionService(SelectorResolver):
    def __init__(
        self, *, settings: Settings, db: Database, registry: RegistryService, runs: RunService
    ) -> None:
        super().__init__(settings=settings, db=db, registry=registry)
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
        number, new = await self._db.call(lambda s: store.number_for(s, definition, loaded.digest))
        if new:  # its workflow: steps may not run it again (a racing publish may take the
            # number first: the run-time depth limit still holds then)
            from lockstep.services.child_cycles import ChildCycles

            await ChildCycles(self).check_publish(project, name, number, loaded)

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

        shown = {**await self._db.call(_show), "selector": selector, "sha": resolved.sha}
        try:  # the form a person fills to run it (the web UI's)
            shown["params_schema"] = resolved.params_schema()
        except (SpecError, InvalidRequest):  # unreadable now, or a pipeline: no form, still shown
            shown["params_schema"] = None
        return shown

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
