"""``uses: DEF@SELECTOR``: where spec text reaches the server (a run's submit, a draft, a
publish, a scan), a published definition of the same project is resolved once, through the
version service's one selector resolution, and its stored text (already expanded) imported.

Resolving a git selector may load that commit's file, which may use published blueprints in
turn: the selectors being resolved in this task are kept, so a loop through commits that were
never scanned (``a@x`` uses ``b@x`` uses ``a@x``) ends with an error naming it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from lockstep.errors import InvalidRequest, NotFound, SpecError
from lockstep.registry.selectors import parse_selector
from lockstep.services.selectors import SelectorResolver
from lockstep.spec.blueprint_fetch import ReadPublished
from lockstep.spec.blueprint_files import MAX_DEPTH, BlueprintUnreadable, PublishedBlueprint

#: a project's reader of published blueprints (what the launcher and the scanner are given)
PublishedReaders = Callable[[str], ReadPublished]

_RESOLVING: ContextVar[tuple[str, ...]] = ContextVar("lockstep_resolving", default=())


def published_readers(versions: SelectorResolver) -> PublishedReaders:
    def reader(project: str) -> ReadPublished:
        async def read(selector: str) -> PublishedBlueprint:
            above = _RESOLVING.get()
            if selector in above or len(above) >= MAX_DEPTH:
                raise BlueprintUnreadable("blueprint cycle: " + " -> ".join([*above, selector]))
            token = _RESOLVING.set((*above, selector))
            try:
                got = await versions.resolve(project, parse_selector(selector))
            except (NotFound, InvalidRequest) as exc:
                # a definition of another project is simply not found in this one
                raise BlueprintUnreadable(str(exc)) from None
            except SpecError as exc:  # the commit it names has an invalid file
                first = exc.diagnostics[0] if exc.diagnostics else exc
                raise BlueprintUnreadable(f"{selector} is invalid: {first}") from None
            finally:
                _RESOLVING.reset(token)
            return PublishedBlueprint(got.definition, got.number, got.text)

        return read

    return reader
