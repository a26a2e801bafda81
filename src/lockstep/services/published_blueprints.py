"""``uses: DEF@SELECTOR``: where spec text reaches the server (a run's submit, a draft, a
publish, a scan), a published definition of the same project is resolved once, through the
version service's one selector resolution, and its stored text (already expanded) imported.
"""

from __future__ import annotations

from collections.abc import Callable

from lockstep.errors import InvalidRequest, NotFound
from lockstep.registry.selectors import parse_selector
from lockstep.services.versions import VersionService
from lockstep.spec.blueprint_fetch import ReadPublished
from lockstep.spec.blueprint_files import BlueprintUnreadable, PublishedBlueprint

#: a project's reader of published blueprints (what the launcher and the scanner are given)
PublishedReaders = Callable[[str], ReadPublished]


def published_readers(versions: VersionService) -> PublishedReaders:
    def reader(project: str) -> ReadPublished:
        async def read(selector: str) -> PublishedBlueprint:
            try:
                got = await versions.resolve(project, parse_selector(selector))
            except (NotFound, InvalidRequest) as exc:
                # a definition of another project is simply not found in this one
                raise BlueprintUnreadable(str(exc)) from None
            return PublishedBlueprint(got.definition, got.number, got.text)

        return read

    return reader
