"""Git triggers: when a scan (a poll, or the rescan a push webhook asks for) sees a branch or
tag of a repository move to a new commit, each registered ``kind: git`` trigger of the
repository's definitions whose globs match that ref fires, once per new commit, for every
instance following the ref — at exactly that commit (selector ``D@<sha>``), so the run is
locked to it even if the ref moves again before the run starts.

A definition with no instance at all runs itself at the commit instead (the file as it is at
that commit). An instance pinned to a commit or a version never moves, so never fires.

Fires are recorded (``Dispatcher.accept``) before the scan records the refs it saw — those refs
are the "seen" marker — and handled after: a scan that dies in between is seen again by the
next one, and the fire key (instance or ref, and commit) keeps it to one fire.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from lockstep.errors import InvalidRequest, LockstepError, Unavailable
from lockstep.records import Cause, CauseKind
from lockstep.registry.selectors import parse_selector
from lockstep.services.instances import InstanceService
from lockstep.services.registry import RegistryService
from lockstep.services.triggers import FireRecord, Registered, TriggerService
from lockstep.services.triggers import fire_status as status
from lockstep.triggers.dispatch import Dispatcher, Event

if TYPE_CHECKING:
    # the spec's models load with the first scan that has git triggers, not with every
    # process that builds the services (a `runs list` does)
    from lockstep.spec.triggers import GitTrigger

log = logging.getLogger(__name__)

BRANCH = "refs/heads/"
TAG = "refs/tags/"


@dataclass(frozen=True)
class Move:
    """A ref the scan saw at a new commit (``before`` None: the ref is new)."""

    ref: str  # the full name, refs/heads/main or refs/tags/v1.0
    before: str | None
    after: str

    @property
    def short(self) -> str:
        return self.ref.removeprefix(BRANCH).removeprefix(TAG)

    @property
    def is_tag(self) -> bool:
        return self.ref.startswith(TAG)


def moves(before: dict[str, str], after: dict[str, str]) -> list[Move]:
    """The branches and tags at another commit than before (new ones too; deleted: none)."""
    return [
        Move(ref, before.get(ref), sha)
        for ref, sha in sorted(after.items())
        if ref.startswith((BRANCH, TAG)) and before.get(ref) != sha
    ]


def listens(trigger: GitTrigger, move: Move) -> bool:
    """Whether ``trigger``'s globs match the moved ref. No globs at all: every branch; only
    ``tags``: tags only (as GitHub's ``on: push``). Globs are the repository's (fnmatch: ``*``
    also matches ``/``)."""
    every_branch = [] if trigger.tags else ["*"]
    patterns = trigger.tags if move.is_tag else (trigger.branches or every_branch)
    return any(fnmatch.fnmatchcase(move.short, p) for p in patterns)


def follows(definition: str, ref: str, move: Move) -> bool:
    """Whether an instance of ``definition`` on ``ref`` moves with ``move``: a branch or tag
    name (or full ref name) that is the moved ref. A version number, a ``$TAG`` or a commit
    pins the instance: it names no ref that moves."""
    try:
        if parse_selector(f"{definition}@{ref}").kind != "ref":
            return False
    except InvalidRequest:
        return False
    return move.ref == ref if ref.startswith("refs/") else move.short == ref


def event_data(repository: str, move: Move, instance: str | None) -> dict[str, Any]:
    """What a git trigger's params and filter read under ``git.``."""
    return {
        "ref": move.ref,
        "branch": None if move.is_tag else move.short,
        "tag": move.short if move.is_tag else None,
        "commit": move.after,
        "before": move.before,
        "repository": repository,
        "instance": instance,
    }


class GitTriggers:
    """The scanner's ``RefListener``: records the fires a scan's moves make, then hands them
    to the dispatcher."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        triggers: TriggerService,
        instances: InstanceService,
        registry: RegistryService,
    ) -> None:
        self._dispatcher = dispatcher
        self._triggers = triggers
        self._instances = instances
        self._registry = registry

    async def record(
        self, project: str, repository: str, before: dict[str, str], after: dict[str, str]
    ) -> list[FireRecord]:
        moved = moves(before, after)
        if not moved:
            return []
        fires = await self._resource_fires(project, repository, moved)
        listening = await self._listening(project, repository)
        if not listening:
            return fires
        instances = await self._instances.list(project)
        for registered, spec in listening:
            own = [i for i in instances if i["definition"] == registered.definition]
            if registered.instance is not None:  # an instance's own trigger: that one only
                own = [i for i in own if i["name"] == registered.instance]
            for move in moved:
                if not listens(spec, move):
                    continue
                if own:
                    names = [
                        str(i["name"])
                        for i in own
                        if follows(registered.definition, str(i["ref"]), move)
                    ]
                else:
                    names = [""]  # no instance: the definition itself at the commit
                for name in names:
                    event = _event(registered, repository, move, name or None)
                    try:
                        fire, _ = await self._dispatcher.accept(registered, event)
                    except Unavailable:
                        raise  # the database is away: the scan is not recorded, seen again
                    except LockstepError as exc:
                        # e.g. the definition archived meanwhile: this fire cannot be, but it
                        # must not hold back the repository's scans for ever
                        log.warning(
                            "trigger.git_fire_refused",
                            extra={"trigger": registered.trigger, "error": str(exc)},
                        )
                        continue
                    fires.append(fire)
        return fires

    async def _resource_fires(
        self, project: str, repository: str, moved: list[Move]
    ) -> list[FireRecord]:
        """Fires of the project's resource triggers watching a ref of ``repository`` (a
        repository a workflow's ``sources:`` reads, whatever definitions it holds): one per
        ref and new commit, with the old and new commit under ``resource``."""
        fires: list[FireRecord] = []
        for registered in await self._triggers.of_kind(project, "resource"):
            watch = registered.spec.get("repository") or {}
            if watch.get("name") != repository:
                continue
            pattern = str(watch.get("ref") or "main")
            for move in moved:
                if not (fnmatch.fnmatchcase(move.short, pattern) or move.ref == pattern):
                    continue
                data = {
                    "kind": "ref",
                    "repository": repository,
                    "ref": move.short,
                    "old": move.before,
                    "new": move.after,
                }
                event = Event(
                    key=f"ref:{repository}:{move.ref}:{move.after}",
                    data=data,
                    cause=Cause(kind=CauseKind.RESOURCE, trigger=registered.trigger),
                )
                try:
                    fire, _ = await self._dispatcher.accept(registered, event)
                except Unavailable:
                    raise  # the database is away: the scan is not recorded, seen again
                except LockstepError as exc:  # never holds back the repository's scans
                    log.warning(
                        "trigger.ref_fire_refused",
                        extra={"trigger": registered.trigger, "error": str(exc)},
                    )
                    continue
                fires.append(fire)
        return fires

    async def handle(self, fires: list[FireRecord]) -> None:
        """Decide each fire still accepted (a fire seen again may be decided already); one
        that cannot be (the engine away) stays accepted for the sweep at the next start."""
        for fire in fires:
            if fire.status != status.ACCEPTED:
                continue
            try:
                await self._dispatcher.handle(fire)
            except Unavailable as exc:
                log.warning("trigger.git_fire_waiting", extra={"fire": fire.id, "error": str(exc)})
            except LockstepError as exc:  # one fire must never stop the others or the scan
                log.warning("trigger.git_fire_failed", extra={"fire": fire.id, "error": str(exc)})

    async def _listening(
        self, project: str, repository: str
    ) -> list[tuple[Registered, GitTrigger]]:
        """The project's registered git triggers of definitions that live in ``repository``."""
        from lockstep.spec.triggers import GitTrigger

        registered = await self._triggers.of_kind(project, "git")
        if not registered:
            return []
        here = {
            d.name for d in await self._registry.definitions(project) if d.repository == repository
        }
        out: list[tuple[Registered, GitTrigger]] = []
        for row in registered:
            if row.definition not in here:
                continue
            try:
                out.append((row, GitTrigger.model_validate(row.spec)))
            except ValidationError:
                log.warning(
                    "trigger.git_spec_unreadable",
                    extra={"trigger": row.trigger, "definition": row.definition},
                )
        return out


def _event(registered: Registered, repository: str, move: Move, instance: str | None) -> Event:
    # one fire per instance (or, without one, per ref) and commit; instance names have no '/'
    # and full ref names always have one, so the two kinds of key never meet
    return Event(
        key=f"{instance or move.ref}:{move.after}",
        data=event_data(repository, move, instance),
        cause=Cause(kind=CauseKind.GIT, trigger=registered.trigger),
        selector=f"{registered.definition}@{move.after}",
        instance=instance,
    )
