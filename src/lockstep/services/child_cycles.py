"""Cycles of ``workflow:`` steps seen before they can run: when a draft of A is published as
version N, or tag T of A is about to name version N, follow the ``workflow:`` steps of N, of
the versions their selectors name then (``A@N`` itself; A's own T, and a bare ``A`` when T is
``$LIVE``, for a tag move; a bare ``A`` without ``$LIVE``, the latest version, for a publish),
and so on; reaching A@N again means each run would start another without end. What cannot be
seen here (a branch's future commits, ``./path`` children, a selector that does not resolve)
is left to the run-time depth limit (``services/child_runs``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from lockstep.errors import InvalidRequest, LockstepError, NotFound
from lockstep.registry.selectors import LIVE, Selector, parse_selector

if TYPE_CHECKING:
    from lockstep.services.versions import VersionService
    from lockstep.spec.documents import Loaded

#: the most versions one check walks (a project's graph is small; a bound all the same)
_MAX_VISITS = 500
#: whether a selector names the version being checked (once it is published or tagged)
_IsStart = Callable[[Selector], bool]


class ChildCycles:
    def __init__(self, versions: VersionService) -> None:
        self._versions = versions

    async def check_tag_move(self, project: str, definition: str, tag: str, number: int) -> None:
        """Refuse the move (one line naming the chain) when it closes a cycle of children."""

        def is_start(sel: Selector) -> bool:
            return sel.definition == definition and (
                (sel.kind == "tag" and sel.value == tag) or (sel.kind == "default" and tag == LIVE)
            )

        start = (definition, number)
        first = await self._children_of(project, start)
        path = await self._cycle(project, start, first, is_start)
        if path:
            raise InvalidRequest(
                f"workflow: steps would run each other without end: {' → '.join(path)}; "
                f"{tag} did not move"
            )

    async def check_publish(
        self, project: str, definition: str, number: int, loaded: Loaded
    ) -> None:
        """Refuse publishing ``loaded`` as version ``number`` of ``definition`` (one line
        naming the chain) when its children would run it again."""
        first = child_selectors(loaded)
        if not first:
            return
        try:
            await self._versions.resolve(project, f"{definition}@{LIVE}")
            live = True
        except NotFound:
            live = False

        def is_start(sel: Selector) -> bool:
            return sel.definition == definition and (
                (sel.kind == "number" and int(sel.value) == number)
                or (sel.kind == "default" and not live)
            )

        start = (definition, number)
        path = await self._cycle(project, start, first, is_start)
        if path:
            raise InvalidRequest(
                f"workflow: steps would run each other without end: {' → '.join(path)}; "
                f"'{definition}' was not published"
            )

    async def _cycle(
        self, project: str, start: tuple[str, int], first: list[str], is_start: _IsStart
    ) -> list[str]:
        path: list[str] = [f"{start[0]}@{start[1]}"]
        seen: set[tuple[str, int]] = set()

        async def walk(selectors: list[str]) -> bool:
            for selector in selectors:
                target = await self._target(project, selector, start, is_start)
                if target is None:
                    continue
                if target == start:
                    path.append(f"{target[0]}@{target[1]}")
                    return True
                if target in seen or len(seen) >= _MAX_VISITS:
                    continue
                seen.add(target)
                path.append(f"{target[0]}@{target[1]}")
                if await walk(await self._children_of(project, target)):
                    return True
                path.pop()
            return False

        return path if await walk(first) else []

    async def _children_of(self, project: str, node: tuple[str, int]) -> list[str]:
        from lockstep.spec.documents import load_workflow

        try:
            got = await self._versions.resolve(project, f"{node[0]}@{node[1]}")
            return child_selectors(load_workflow(got.text, got.file))
        except LockstepError:
            return []

    async def _target(
        self, project: str, selector: str, start: tuple[str, int], is_start: _IsStart
    ) -> tuple[str, int] | None:
        """The version ``selector`` names once the change is made (None: not knowable here)."""
        try:
            sel = parse_selector(selector)
        except LockstepError:
            return None
        if is_start(sel):
            return start
        if sel.kind == "ref":
            return None  # a branch moves by itself: the depth limit guards it
        try:
            got = await self._versions.resolve(project, selector)
        except LockstepError:
            return None
        return got.definition, got.number


def child_selectors(loaded: Loaded) -> list[str]:
    """The selectors of a workflow's ``workflow:`` steps (``./path`` children left out)."""
    from lockstep.spec.load import LoadedSpec

    if not isinstance(loaded, LoadedSpec):
        return []  # a state machine has no workflow: steps
    steps = loaded.spec.all_steps().values()
    return [s.workflow for s in steps if s.workflow and not s.workflow.startswith(".")]
