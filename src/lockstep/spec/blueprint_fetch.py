"""Expand blueprints whose sources are read asynchronously (a mirror's commit, the registry).

The expansion is synchronous and its sources are not, so they are fetched as the expansion
asks for them: it runs, stops at the first blueprint not read yet, that one is read, and it
runs again (a workflow reads at most ``MAX_FILES`` blueprints, so this ends).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Generic, TypeVar

from lockstep.spec.blueprint_files import (
    MAX_FILES,
    BlueprintFiles,
    BlueprintUnreadable,
    PublishedBlueprint,
    PublishedBlueprints,
)

if TYPE_CHECKING:
    from lockstep.spec.documents import Loaded

T = TypeVar("T")
V = TypeVar("V")

#: reads a blueprint file by its repository path; ``BlueprintUnreadable`` says why not
ReadFile = Callable[[str], Awaitable[bytes]]
#: resolves ``DEF@SELECTOR``; ``BlueprintUnreadable`` says why not
ReadPublished = Callable[[str], Awaitable[PublishedBlueprint]]


class _NotReadYet(Exception):
    def __init__(self, fetched: _Fetched[object], name: str) -> None:
        super().__init__(name)
        self.fetched = fetched
        self.name = name


class _Fetched(Generic[V]):
    """What was read so far under each name: the value, or why it cannot be read."""

    def __init__(self, fetch: Callable[[str], Awaitable[V]]) -> None:
        self.fetch = fetch
        self.found: dict[str, V | BlueprintUnreadable] = {}

    def read(self, name: str) -> V:
        if name not in self.found:
            raise _NotReadYet(self, name)  # type: ignore[arg-type]
        got = self.found[name]
        if isinstance(got, BlueprintUnreadable):
            raise got
        return got

    async def add(self, name: str) -> None:
        try:
            self.found[name] = await self.fetch(name)
        except BlueprintUnreadable as exc:
            self.found[name] = exc


async def load_fetching(
    load: Callable[[BlueprintFiles | None, PublishedBlueprints | None], T],
    *,
    read_file: ReadFile | None = None,
    read_published: ReadPublished | None = None,
) -> T:
    """``load(files, published)`` run until every blueprint it asks for has been read."""
    files = _Fetched(read_file) if read_file is not None else None
    published = _Fetched(read_published) if read_published is not None else None
    for _ in range(MAX_FILES + 1):
        try:
            return load(files, published)
        except _NotReadYet as missing:
            await missing.fetched.add(missing.name)
    raise AssertionError("unreachable: an expansion reads at most MAX_FILES blueprints")


async def load_published(
    read: ReadPublished | None, text: str, file: str, *, max_bytes: int, owner: str | None = None
) -> Loaded:
    """Spec text as it reaches the server, its published blueprints expanded through ``read``
    (``owner``: the definition it is a version of, which may not use itself)."""
    from lockstep.spec.documents import load_workflow

    return await load_fetching(
        lambda _files, published: load_workflow(
            text, file, max_bytes=max_bytes, published=published, owner=owner
        ),
        read_published=read,
    )
