"""Cycles of ``workflow:`` steps seen before a tag moves: when tag T of definition A is about to
name version N, follow the ``workflow:`` steps of N, of the versions their selectors name now
(A's own T, and a bare ``A`` when T is ``$LIVE``, as N), and so on; reaching A@N again means
each run would start another without end. What cannot be seen here (a branch's future
commits, ``./path`` children, a selector that does not resolve) is left to the run-time depth
limit (``services/child_runs``)."""

from __future__ import annotations

from lockstep.errors import InvalidRequest, LockstepError
from lockstep.registry.selectors import parse_selector
from lockstep.services.versions import VersionService

LIVE = "$LIVE"
#: the most versions one check walks (a project's graph is small; a bound all the same)
_MAX_VISITS = 500


class ChildCycles:
    def __init__(self, versions: VersionService) -> None:
        self._versions = versions

    async def check_tag_move(self, project: str, definition: str, tag: str, number: int) -> None:
        """Refuse the move (one line naming the chain) when it closes a cycle of children."""
        path = await self._cycle(project, definition, tag, number)
        if path:
            raise InvalidRequest(
                f"workflow: steps would run each other without end: {' → '.join(path)}; "
                f"{tag} did not move"
            )

    async def _cycle(self, project: str, definition: str, tag: str, number: int) -> list[str]:
        start = (definition, number)
        path: list[str] = [f"{definition}@{number}"]
        seen: set[tuple[str, int]] = set()

        async def walk(node: tuple[str, int]) -> bool:
            for selector in await self._children_of(project, node, start, tag):
                target = await self._target(project, selector, start, tag)
                if target is None:
                    continue
                if target == start:
                    path.append(f"{target[0]}@{target[1]}")
                    return True
                if target in seen or len(seen) >= _MAX_VISITS:
                    continue
                seen.add(target)
                path.append(f"{target[0]}@{target[1]}")
                if await walk(target):
                    return True
                path.pop()
            return False

        return path if await walk(start) else []

    async def _children_of(
        self, project: str, node: tuple[str, int], start: tuple[str, int], tag: str
    ) -> list[str]:
        from lockstep.spec.documents import load_workflow
        from lockstep.spec.load import LoadedSpec

        try:
            got = await self._versions.resolve(project, f"{node[0]}@{node[1]}")
            loaded = load_workflow(got.text, got.file)
        except LockstepError:
            return []
        if not isinstance(loaded, LoadedSpec):
            return []  # a state machine has no workflow: steps
        steps = loaded.spec.all_steps().values()
        return [s.workflow for s in steps if s.workflow and not s.workflow.startswith(".")]

    async def _target(
        self, project: str, selector: str, start: tuple[str, int], tag: str
    ) -> tuple[str, int] | None:
        """The version ``selector`` names once the tag has moved (None: not knowable here)."""
        try:
            sel = parse_selector(selector)
        except LockstepError:
            return None
        if sel.definition == start[0] and (
            (sel.kind == "tag" and sel.value == tag) or (sel.kind == "default" and tag == LIVE)
        ):
            return start
        if sel.kind == "ref":
            return None  # a branch moves by itself: the depth limit guards it
        try:
            got = await self._versions.resolve(project, selector)
        except LockstepError:
            return None
        return got.definition, got.number
