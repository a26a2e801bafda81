"""Resources: a project's named, versioned configuration. People create them and write
versions here; runs read the versions fixed when they were created (``pin`` and ``loaded``,
called by the run service) and their steps write new ones through the recorder.

Every version's data is checked by ``spec.resources.check_data`` (the resource's schema,
secrets as references only) before anything is stored; a refused write changes nothing.
"""

from __future__ import annotations

import builtins
import json
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from lockstep.errors import Conflict, InvalidRequest, NotFound
from lockstep.records import (
    ResourceChange,
    ResourceDiff,
    ResourceRecord,
    ResourceVersionRecord,
)
from lockstep.spec.resources import (
    MAX_DEPTH,
    SECRET_KEY,
    check_data,
    check_name,
    diff,
    is_secret_ref,
    nesting,
    parse_ref,
    secret_names,
)
from lockstep.storage import resources as store
from lockstep.storage import secrets as secret_store
from lockstep.storage.database import Database

if TYPE_CHECKING:
    from lockstep.engine.types import RunPlan
    from lockstep.spec.documents import Loaded

#: what a run records of each resource it reads: alias -> {"name", "version"}
Pins = dict[str, dict[str, Any]]


def _record(r: store.Resource) -> ResourceRecord:
    return ResourceRecord(
        name=r.name,
        description=r.description,
        schema=r.schema,
        latest=r.latest,
        created_at=r.created_at,
        created_by=r.created_by,
    )


def _version(v: store.Version) -> ResourceVersionRecord:
    return ResourceVersionRecord(
        resource=v.resource,
        version=v.number,
        digest=v.digest,
        data=v.data,
        message=v.message,
        author=v.author,
        run_id=v.run_id,
        step=v.step,
        attempt=v.attempt,
        created_at=v.created_at,
    )


def _check_schema(name: str, schema: Any) -> None:
    # loaded here: reading records never pays for JSON Schema (tests/acceptance/test_light_reads)
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    from lockstep.spec.hints import one_line

    if not isinstance(schema, dict):
        raise InvalidRequest(f"schema of resource '{name}' must be a JSON object (a JSON Schema)")
    if nesting(schema) > MAX_DEPTH:  # before the validator recurses into it
        raise InvalidRequest(f"schema of resource '{name}' nests deeper than {MAX_DEPTH} levels")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        raise InvalidRequest(
            f"schema of resource '{name}' is not a valid JSON Schema: {one_line(exc.message, 200)}"
        ) from None


def _check_secrets(s: Session, project: str, name: str, data: Any) -> None:
    named = sorted(set(secret_names(data)))
    absent = secret_store.missing(s, project, named) if named else []
    if absent:
        raise InvalidRequest(
            f"data of resource '{name}' refers to secret '{absent[0]}', which project "
            f"'{project}' does not have; set it with `lockstep secrets set {absent[0]}`"
        )


class ResourceService:
    def __init__(self, db: Database) -> None:
        self._db = db
        #: told after a version is committed (the trigger event pump wakes)
        self.on_event: Callable[[], None] | None = None

    def _written(self) -> None:
        if self.on_event is not None:
            self.on_event()

    async def create(
        self,
        project: str,
        name: str,
        *,
        data: Any,
        schema: Any = None,
        description: str | None = None,
        message: str | None = None,
        by: str | None = None,
    ) -> ResourceVersionRecord:
        """A new resource and its version 1, both or neither."""
        check_name(name)
        if schema is not None:
            _check_schema(name, schema)
        check_data(name, data, schema)

        def make(s: Session) -> store.Version:
            if store.exists(s, project, name):
                raise Conflict(
                    f"resource '{name}' already exists in project '{project}'; write a new "
                    f"version with `lockstep resources write {name} --data FILE`"
                )
            _check_secrets(s, project, name, data)
            store.create(s, project, name, schema, description, by)
            return store.append(s, project, name, data, store.Writer(author=by), message)

        try:
            made = await self._db.call(make)
        except IntegrityError:  # a concurrent create of the same name won
            raise Conflict(f"resource '{name}' already exists in project '{project}'") from None
        self._written()
        return _version(made)

    async def write(
        self, project: str, name: str, data: Any, *, message: str | None, by: str | None
    ) -> ResourceVersionRecord:
        """The next version of ``name``, written by a person."""

        def add(s: Session) -> store.Version:
            resource = store.get(s, project, name)
            check_data(name, data, resource.schema)
            _check_secrets(s, project, name, data)
            return store.append(s, project, name, data, store.Writer(author=by), message)

        made = await self._db.call(add)
        self._written()
        return _version(made)

    async def list(self, project: str) -> builtins.list[ResourceRecord]:
        return [_record(r) for r in await self._db.call(lambda s: store.list_all(s, project))]

    async def get(self, project: str, name: str) -> ResourceRecord:
        return _record(await self._db.call(lambda s: store.get(s, project, name)))

    async def version(self, project: str, name: str, number: int | None) -> ResourceVersionRecord:
        return _version(await self._db.call(lambda s: store.version(s, project, name, number)))

    async def history(self, project: str, name: str) -> builtins.list[ResourceVersionRecord]:
        return [_version(v) for v in await self._db.call(lambda s: store.history(s, project, name))]

    async def diff(self, project: str, name: str, old: int, new: int) -> ResourceDiff:
        def both(s: Session) -> tuple[store.Version, store.Version]:
            return store.version(s, project, name, old), store.version(s, project, name, new)

        a, b = await self._db.call(both)
        changes = [
            ResourceChange(op=c.op, path=c.path, old=c.old, new=c.new) for c in diff(a.data, b.data)
        ]
        return ResourceDiff(resource=name, old=old, new=new, changes=changes)


# -- what a run reads and writes (called by the run service, in its transaction)


def written(loaded: Loaded) -> builtins.list[str]:
    """The resources a workflow's steps write (a state machine: none)."""
    spec = getattr(loaded, "spec", None)
    steps = spec.all_steps().values() if spec is not None else []
    return sorted({name for step in steps for name in step.writes})


async def pin_run(db: Database, project: str, loaded: Loaded, pinned: Pins | None) -> Pins:
    """Before a run is recorded: fix the version of each resource it reads (``pin``) and
    check that every resource its steps write exists; one line when not."""
    spec = getattr(loaded, "spec", None)
    wanted = dict(getattr(spec, "resources", {}) or {})
    writes = written(loaded)
    if not wanted and not writes:
        return {}
    pins = await db.call(lambda s: pin(s, project, wanted, pinned))
    await db.call(lambda s: loaded_for(s, project, {}, writes))
    return pins


async def planned(db: Database, project: str, plan: RunPlan, loaded: Loaded, pins: Pins) -> RunPlan:
    """``plan`` with what it reads of its resources and the schemas of what it writes."""
    writes = written(loaded)
    if not pins and not writes:
        return plan
    reads, schemas = await db.call(lambda s: loaded_for(s, project, pins, writes))
    return secret_env(replace(plan, resources=reads, resource_schemas=schemas))


def pin(s: Session, project: str, wanted: Mapping[str, str], pinned: Pins | None = None) -> Pins:
    """Fix the version of every resource a run reads: ``NAME@N`` as written, ``NAME`` the
    latest now, unless ``pinned`` (a rerun's) already says which. Refuses, in one line, an
    unknown resource or version."""
    pins: Pins = {}
    for alias, ref in wanted.items():
        name, number = parse_ref(ref)
        fixed = (pinned or {}).get(alias)
        if fixed is not None and fixed.get("name") == name:
            number = int(fixed["version"])
        try:
            found = store.version(s, project, name, number)
        except NotFound as exc:  # a run refused, not a missing page: a bad request
            raise InvalidRequest(f"resources.{alias}: {exc}") from None
        pins[alias] = {"name": name, "version": found.number}
    return pins


def loaded_for(
    s: Session, project: str, pins: Pins, writes: builtins.list[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a run's plan carries: each read resource as ``${{ resources.ALIAS }}`` sees it
    (name, version, data), and the schema of each resource its steps write (None: any
    object), so the engine checks a write before the step counts as succeeded."""
    reads = {}
    for alias, pinned in pins.items():
        v = store.version(s, project, pinned["name"], int(pinned["version"]))
        reads[alias] = {"name": v.resource, "version": v.number, "data": v.data}
    schemas: dict[str, Any] = {}
    for name in writes:
        if not store.exists(s, project, name):
            raise InvalidRequest(
                f"the workflow writes resource '{name}', which project '{project}' does not "
                f"have; create it with `lockstep resources create {name} --data FILE`"
            )
        schemas[name] = store.get(s, project, name).schema
    return reads, schemas


def secret_env(plan: RunPlan) -> RunPlan:
    """A step env value that is exactly ``${{ resources.ALIAS.data.PATH }}`` naming a secret
    reference (``{"$secret": NAME}``) becomes one of the step's secrets: the worker puts the
    value in the step's environment and masks it, as for ``${{ secrets.NAME }}``; neither the
    database nor the engine ever holds it."""
    # loaded here: CEL is not for processes that only read records
    from lockstep.spec.expressions import OPEN, ExpressionError, evaluate, whole_template

    if not plan.resources:
        return plan
    ctx = {"resources": plan.resources}
    steps = []
    for step in plan.steps:
        moved: dict[str, str] = {}
        for var, text in step.env.items():
            only = whole_template(text) if OPEN in text else None
            if only is None or not only.source.strip().startswith("resources."):
                continue
            try:
                value = evaluate(only.source, ctx)
            except ExpressionError:
                continue  # not a plain path into the data: rendered as usual
            if is_secret_ref(value):
                moved[var] = str(value[SECRET_KEY])
        if moved:
            env = {k: v for k, v in step.env.items() if k not in moved}
            step = replace(step, env=env, secrets={**step.secrets, **moved})
        steps.append(step)
    return replace(plan, steps=steps)


def pins_of(text: str | None) -> Pins:
    """A run row's stored pins (None: it read no resources)."""
    return json.loads(text) if text else {}
