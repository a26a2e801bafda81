"""Blueprints: a step ``uses: ./blueprints/etl.yaml`` imports another workflow file's steps.

The step's id is the alias: the blueprint's step ``extract`` becomes ``etl__extract``
(``SEPARATOR``), so ids depend only on the alias and the blueprint, never on the rest of the
caller. The alias itself stays a step: a ``noop`` that needs the blueprint's exit steps (those
no other step of it needs) and hands on the blueprint's ``outputs`` as its own, so
``needs: [etl]`` waits for the whole blueprint and ``steps.etl.outputs.rows`` reads its result.
The alias's ``needs`` make the blueprint's entry steps wait; its ``with:`` gives the params the
blueprint declares (``${{ params.x }}`` inside reads them, in the caller's context).

Everything is expanded and checked before anything runs: a blueprint is first loaded as a
workflow of its own (nested blueprints expanded the same way), then the caller with every
blueprint imported. A problem inside a blueprint is reported at the blueprint file's line and
column, followed by the ``uses:`` line(s) that brought it in.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from lockstep.errors import Diagnostic, SpecError
from lockstep.spec.blueprint_children import rebase_children, unreachable_children
from lockstep.spec.blueprint_files import (
    MAX_DEPTH,
    MAX_FILES,
    SEPARATOR,
    BlueprintFiles,
    BlueprintUnreadable,
    BlueprintUse,
    PublishedBlueprints,
    display_path,
    header_uses,
    is_any_blueprint,
    is_published,
    resolve_path,
)
from lockstep.spec.blueprint_import import check_params, import_steps, mapping
from lockstep.spec.expressions import secret_reference
from lockstep.spec.load import (
    LoadedSpec,
    check_data,
    load_spec,
    parse_mapping,
    sort_diagnostics,
)
from lockstep.spec.validate import validate_data
from lockstep.spec.yamlsafe import Position, YamlDocument, nearest_position, pointer

#: the keys a step that uses a blueprint may have; the rest belongs in the blueprint
ALIAS_KEYS = ("uses", "with", "needs", "description")
#: workflow keys a blueprint cannot carry: they belong to a whole run, not to a part of one
RUN_ONLY_KEYS = ("finally", "sources", "triggers", "notify", "timeout", "definitions")
_MAX_ID = 63


@dataclass(frozen=True)
class Origin:
    """Where an imported step was written, to report its problems there."""

    file: str
    positions: dict[str, Position]
    ptr: str  # the step's pointer in that file
    used_at: tuple[str, ...]  # the ``uses:`` lines that brought it in, innermost first
    drop: str = ""  # a part of the expanded pointer the origin lacks (the alias's ``/with``)

    def locate(self, rest: str, message: str) -> Diagnostic:
        ptr = self.ptr + (rest.removeprefix(self.drop) if self.drop else rest)
        line, col = nearest_position(self.positions, ptr)
        return Diagnostic(use_site(message, self.used_at), self.file, line, col, ptr)


@dataclass
class Expansion:
    file: str
    positions: dict[str, Position]
    data: dict[str, Any]
    uses: list[BlueprintUse] = field(default_factory=list)
    origins: dict[str, Origin] = field(default_factory=dict)

    def origin(self, sid: str, used_at: str) -> Origin:
        """Where step ``sid`` of this expansion was written, seen through ``used_at``."""
        inner = self.origins.get(sid)
        if inner is None:
            return Origin(self.file, self.positions, pointer("steps", sid), (used_at,))
        return replace(inner, used_at=(*inner.used_at, used_at))


def use_site(message: str, where: tuple[str, ...]) -> str:
    if not where:
        return message
    joined = ", ".join(f"used at {w}" for w in where)
    if message.endswith(")") and "(used at " in message:
        return f"{message[:-1]}, {joined})"
    return f"{message} ({joined})"


def load_expanded(
    doc: YamlDocument,
    file: str,
    path: str,
    files: BlueprintFiles | None,
    max_bytes: int,
    *,
    published: PublishedBlueprints | None = None,
    owner: str | None = None,
    published_later: bool = False,
) -> LoadedSpec:
    """The workflow ``doc`` with every blueprint it uses expanded, checked as a whole; its text
    is the expanded workflow, headed by the blueprints it read (path or ``D@<number>``, and
    sha256). A use with no source here stays as written (``published_later``: a published
    one is expanded by the server, where the text is sent)."""
    expander = Expander(files, max_bytes, published, owner, published_later)
    expansion = expander.expand(doc, file, (path,))
    text = expanded_text(expansion.data, expansion.uses, path)
    size = len(text.encode())
    if size > max_bytes:
        raise SpecError([Diagnostic(
            f"with its blueprints expanded the workflow is {size} bytes, over the limit of "
            f"{max_bytes}; use fewer or smaller blueprints", file)])  # fmt: skip
    again = load_spec(text, file, max_bytes=max_bytes, published_later=published_later)
    return replace(again, blueprints=tuple(expansion.uses))


def expanded_text(
    data: Mapping[str, Any], uses: list[BlueprintUse], path: str, *, unit: str = "steps"
) -> str:
    """The expanded workflow (or pipeline: ``unit`` nodes) as YAML: what a version stores and
    a run executes."""
    head = [
        f"# {path} with its blueprints expanded by lockstep "
        f"(their {unit} are <alias>{SEPARATOR}<{unit[:-1]}>)",
        *(f"# blueprint {u.alias}: {u.path} sha256:{u.digest}" for u in uses),
    ]
    body = yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    return "\n".join(head) + "\n" + body


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


class Expander:
    def __init__(
        self,
        files: BlueprintFiles | None,
        max_bytes: int,
        published: PublishedBlueprints | None = None,
        owner: str | None = None,
        published_later: bool = False,
    ) -> None:
        self.files = files
        self.max_bytes = max_bytes
        self.published = published
        self.owner = owner  # the definition being loaded, if any (a use of it is a cycle)
        self.published_later = published_later
        #: the published versions read, ``D@<number>`` -> ``D``
        self.versions: dict[str, str] = {}
        self.read_count = 0
        self.read_bytes = 0

    def expand(self, doc: YamlDocument, file: str, chain: tuple[str, ...]) -> Expansion:
        """``doc`` with its blueprints imported and checked; ``SpecError`` lists every problem."""
        data: dict[str, Any] = dict(doc.data)
        out = Expansion(file, doc.positions, data)
        diagnostics: list[Diagnostic] = []
        steps, finals = mapping(data.get("steps")), mapping(data.get("finally"))
        for sid, step in finals.items():
            if isinstance(step, dict) and is_any_blueprint(step.get("uses")):
                line, col = nearest_position(doc.positions, pointer("finally", sid, "uses"))
                diagnostics.append(Diagnostic(
                    "blueprints can only be used in 'steps', not in 'finally'", file, line, col,
                    pointer("finally", sid, "uses")))  # fmt: skip
        if chain[-1] in self.versions:  # a published blueprint, far from its repository
            diagnostics += unreachable_children(chain[-1], steps, doc.positions, file)
        aliases = {
            s for s, v in steps.items() if isinstance(v, dict) and is_any_blueprint(v.get("uses"))
        }
        stand_ins = {s: _stand_in(v) if s in aliases else v for s, v in steps.items()}
        # what the caller writes on an alias (its with: expressions, its needs) is checked in
        # the caller's own terms, as if the alias were a noop step
        caller_side = validate_data({**data, "steps": stand_ins}, doc.positions, file)
        owners: dict[str, str | None] = {s: None for s in [*steps, *finals]}
        imported: dict[str, Any] = {}
        for sid, step in steps.items():
            if sid not in aliases:
                imported[sid] = step
                continue
            prefix = pointer("steps", sid)
            problems = [
                d for d in caller_side if d.path == prefix or d.path.startswith(prefix + "/")
            ]
            got = None if problems else self._use(sid, step, out, chain, owners, problems)
            diagnostics += problems
            if got is None:
                imported[sid] = stand_ins[sid]  # keeps the caller's references to it meaningful
            else:
                imported.update(got)
        data["steps"] = imported
        if diagnostics:
            raise SpecError(sort_diagnostics(diagnostics))
        _, found = check_data(data, doc.positions, file, published_later=self.published_later)
        for diag in found:
            sid = diag.path.split("/")[2] if diag.path.startswith("/steps/") else ""
            origin = out.origins.get(sid.replace("~1", "/").replace("~0", "~"))
            if origin is None:
                diagnostics.append(diag)
            else:
                rest = diag.path[len(pointer("steps", sid)) :]
                diagnostics.append(origin.locate(rest, diag.message))
        if diagnostics:
            raise SpecError(sort_diagnostics(diagnostics))
        return out

    # -- one use

    def _use(
        self,
        alias: str,
        step: dict[str, Any],
        out: Expansion,
        chain: tuple[str, ...],
        owners: dict[str, str | None],
        problems: list[Diagnostic],
    ) -> dict[str, Any] | None:
        ref = str(step["uses"])

        def fail(message: str, *at: str | int) -> None:
            ptr = pointer("steps", alias, *(at or ("uses",)))
            line, col = nearest_position(out.positions, ptr)
            problems.append(Diagnostic(message, out.file, line, col, ptr))

        for key in step:
            if key not in ALIAS_KEYS:
                fail(f"a step that uses a blueprint takes only {', '.join(ALIAS_KEYS)}; "
                     f"move '{key}' into the blueprint or onto another step", key)  # fmt: skip
        source = (self._published if is_published(ref) else self._file)(ref, chain, out, fail)
        if source is None:
            return None
        if isinstance(source, Keep):
            return {alias: step}
        target, raw, shown, nested = source
        # the expansion must fit the size limit of one workflow; stop reading long before
        self.read_bytes += len(raw)
        if self.read_bytes > 2 * self.max_bytes:
            fail(f"the blueprints used add up to more than {2 * self.max_bytes} bytes; "
                 "use fewer or smaller blueprints")  # fmt: skip
            return None
        line, col = nearest_position(out.positions, pointer("steps", alias, "uses"))
        used_at = f"{out.file}:{line}:{col}"
        try:
            _, _, doc = parse_mapping(raw, shown, self.max_bytes, "a blueprint is a workflow: "
                                      "a mapping with keys such as 'name' and 'steps'")  # fmt: skip
            sub = self.expand(doc, shown, (*chain, target))
        except SpecError as err:
            problems += [
                replace(d, message=use_site(d.message, (used_at,))) for d in err.diagnostics
            ]
            return None
        for key in RUN_ONLY_KEYS:
            if sub.data.get(key):
                problems.append(Origin(sub.file, sub.positions, "", (used_at,)).locate(
                    pointer(key), f"a blueprint cannot have '{key}' (it belongs to a whole "
                    "run); remove it from the blueprint"))  # fmt: skip
        if target not in self.versions:
            for sid, message in rebase_children(sub.data["steps"], target, chain[-1]):
                problems.append(sub.origin(sid, used_at).locate("/workflow", message))
        values = check_params(ref, step.get("with"), sub.data.get("params"), fail)
        if problems:
            return None
        steps = import_steps(alias, step, sub.data, values)
        for sid in steps:
            if sid != alias and len(sid) > _MAX_ID:
                fail(f"imported step id '{sid}' is longer than {_MAX_ID} characters; "
                     "use a shorter alias")  # fmt: skip
            elif sid != alias and sid in owners:
                other = owners[sid]
                by = f"the step imported by alias '{other}'" if other else "a step of this file"
                fail(f"blueprint alias '{alias}' imports step id '{sid}', which is already "
                     f"{by}; rename the alias or that step")  # fmt: skip
        if problems:
            return None
        for sid in steps:
            owners.setdefault(sid, alias)
        out.uses.append(BlueprintUse(alias, target, hashlib.sha256(raw).hexdigest()))
        out.uses += [replace(u, alias=alias + SEPARATOR + u.alias) for u in (*sub.uses, *nested)]
        for sid in steps:
            if sid == alias:
                out.origins[sid] = Origin(sub.file, sub.positions, "/outputs", (used_at,), "/with")
                continue
            out.origins[sid] = sub.origin(sid[len(alias) + len(SEPARATOR) :], used_at)
        return steps

    # -- where a blueprint comes from

    def _file(self, ref: str, chain: tuple[str, ...], out: Expansion, fail: Any) -> _Source:
        """A blueprint file of the caller's repository: its path, bytes and display name."""
        if chain[-1] in self.versions:  # its stored text was expanded when it was published
            fail(
                f"published blueprint {chain[-1]} still uses the file '{ref}', which was "
                "not expanded when it was published; publish it again from its repository"
            )
            return None
        if self.files is None:
            return _KEEP  # checked as written: the loader says where files are expanded
        try:
            target = resolve_path(chain[-1], ref)
        except ValueError as err:
            fail(f"{err}; use a path inside the repository, e.g. './blueprints/etl.yaml'")
            return None
        if target in chain:
            fail("blueprint cycle: " + " -> ".join([*chain, target]))
            return None
        if not self._may_read(chain, fail):
            return None
        try:
            raw = self.files.read(target)
        except BlueprintUnreadable as err:
            fail(f"cannot use blueprint '{ref}': {err}")
            return None
        return target, raw, display_path(out.file, ref), ()

    def _published(self, ref: str, chain: tuple[str, ...], out: Expansion, fail: Any) -> _Source:
        """A published definition's version, resolved once, here: ``D@<number>``, its stored
        text (already expanded) and the blueprints that text says it expanded."""
        if self.published is None:
            return _KEEP  # the server expands it where the workflow arrives
        if not self._may_read(chain, fail):
            return None
        try:
            got = self.published.read(ref)
        except BlueprintUnreadable as err:
            fail(f"cannot use blueprint '{ref}': {err}")
            return None
        target = f"{got.definition}@{got.number}"
        inner = header_uses(got.text)
        above = {self.versions[c] for c in chain if c in self.versions}
        above |= {self.owner} if self.owner else set()
        if got.definition in above:
            fail("blueprint cycle: " + " -> ".join([*chain, target]))
            return None
        looping = [u.path for u in inner if u.definition in above]
        if looping:
            fail("blueprint cycle: " + " -> ".join([*chain, target, looping[0]]))
            return None
        self.versions[target] = got.definition
        return target, got.text.encode(), target, tuple(inner)

    def _may_read(self, chain: tuple[str, ...], fail: Any) -> bool:
        if len(chain) > MAX_DEPTH:
            fail(f"blueprints nest deeper than {MAX_DEPTH} levels: " + " -> ".join(chain))
            return False
        self.read_count += 1
        if self.read_count > MAX_FILES:
            fail(f"a workflow may use at most {MAX_FILES} blueprints")
            return False
        return True


class Keep:
    """A use left as written: no source to expand it from here."""


_KEEP = Keep()
#: where a blueprint came from: its name in chains, bytes, display name, nested uses
_Source = tuple[str, bytes, str, tuple[BlueprintUse, ...]] | Keep | None


def _stand_in(step: dict[str, Any]) -> dict[str, Any]:
    """An alias as the noop step it stays after expansion, for the caller-side checks. A
    secret may be a param (it is checked where the blueprint puts it: an env value)."""
    stand_in = {k: v for k, v in step.items() if k in ALIAS_KEYS} | {"uses": "noop"}
    given = step.get("with")
    if isinstance(given, dict):
        stand_in["with"] = {k: None if secret_reference(v) else v for k, v in given.items()}
    return stand_in
