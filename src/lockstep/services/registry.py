"""Connecting repositories and scanning them into definitions and versions."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy.orm import Session

from lockstep.engine.types import SourceCheckout
from lockstep.errors import InvalidRequest, LockstepError
from lockstep.registry.git import ls_remote
from lockstep.registry.mirror import MirrorCache
from lockstep.registry.scanner import ScanResult, scan
from lockstep.registry.urls import url_with_secret
from lockstep.secrets.crypto import SecretBox
from lockstep.services import hooks
from lockstep.settings import Settings
from lockstep.spec.git_names import GitError, RemoteUrl, parse_remote
from lockstep.storage import registry as store
from lockstep.storage import secrets as secret_store
from lockstep.storage.database import Database
from lockstep.storage.registry import DefinitionInfo
from lockstep.storage.rows import RepositoryRow
from lockstep.storage.trigger_fires import FireRecord

if TYPE_CHECKING:
    from lockstep.spec.blueprint_fetch import ReadPublished
    from lockstep.spec.models import SourceSpec

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_PATTERN = re.compile(r"^[A-Za-z0-9._/*?\[\]-]{1,200}$")


def default_name(remote: RemoteUrl) -> str:
    tail = remote.url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git").lower()
    return re.sub(r"[^a-z0-9._-]+", "-", tail).strip("-.") or "repo"


@dataclass(frozen=True)
class RepositoryInfo:
    """A connected repository as users see it (never its webhook secret)."""

    name: str
    url: str
    branches: list[str]
    tags: list[str]
    credentials: str | None
    poll_s: int
    created_at: str
    scanned_at: str | None
    error: str | None

    @classmethod
    def of(cls, row: RepositoryRow) -> RepositoryInfo:
        return cls(
            name=row.name,
            url=row.url,
            branches=store_list(row.branches_json),
            tags=store_list(row.tags_json),
            credentials=row.credentials,
            poll_s=row.poll_s,
            created_at=row.created_at,
            scanned_at=row.scanned_at,
            error=row.error,
        )


class RefListener(Protocol):
    """Hears the refs a scan saw move (``triggers/git``; services cannot import triggers/).

    ``record`` runs before the scan is recorded: the refs a scan records are the "seen"
    marker, so what a move fires is written first, and a scan that dies in between is seen
    again by the next one (a fire is recorded once per key). ``handle`` runs after."""

    async def record(
        self, project: str, repository: str, before: dict[str, str], after: dict[str, str]
    ) -> list[FireRecord]: ...

    async def handle(self, fires: list[FireRecord]) -> None: ...


class RegistryService:
    def __init__(self, *, settings: Settings, db: Database, box: SecretBox, root: Path) -> None:
        self._settings = settings
        self._db = db
        self._box = box
        self.mirrors = MirrorCache(root)
        self._scan_locks: dict[tuple[str, str], asyncio.Lock] = {}
        #: set by the control plane: git triggers fire on the moves a scan sees
        self.ref_listener: RefListener | None = None
        #: a project's resolver of ``uses: DEF@SELECTOR`` in scanned files (wired by the server)
        self.published: Callable[[str], ReadPublished] | None = None

    def _remote(self, url: str) -> RemoteUrl:
        return parse_remote(
            url, allow_http=self._settings.git_allow_http, allow_file=self._settings.git_allow_file
        )

    async def add(
        self,
        project: str,
        *,
        url: str,
        name: str | None,
        branches: list[str],
        tags: list[str],
        credentials: str | None,
        poll_s: int,
    ) -> tuple[RepositoryInfo, str]:
        """Connect a repository; returns it and its webhook secret (shown this once)."""
        remote = self._remote(url)  # refused before git ever runs
        name = name or default_name(remote)
        if not _NAME.fullmatch(name):
            raise InvalidRequest(f"invalid repository name '{name}'; use a-z, 0-9, '.', '_', '-'")
        for pattern in [*branches, *tags]:
            if not _PATTERN.fullmatch(pattern) or pattern.startswith("-"):
                raise InvalidRequest(f"invalid ref pattern '{pattern}'")
        if credentials is not None:
            await self._require_secret(project, credentials, f"repository '{name}'")
        hook_secret = "whsec_" + secrets.token_urlsafe(24)
        sealed = self._box.encrypt(project, f"webhook:{name}", hook_secret)
        row = await self._db.call(
            lambda s: store.add_repository(
                s,
                project,
                name=name,
                url=remote.url,
                branches=branches,
                tags=tags,
                credentials=credentials,
                poll_s=poll_s,
                webhook_secret=sealed,
            )
        )
        return RepositoryInfo.of(row), hook_secret

    async def scan(
        self, project: str, name: str, *, if_changed: bool = False
    ) -> tuple[RepositoryInfo, ScanResult | None]:
        # one scan of a repository at a time: a slow poll finishing after a newer manual scan
        # would otherwise record an older view of the remote over it
        async with self._scan_locks.setdefault((project, name), asyncio.Lock()):
            return await self._scan(project, name, if_changed=if_changed)

    async def _scan(
        self, project: str, name: str, *, if_changed: bool
    ) -> tuple[RepositoryInfo, ScanResult | None]:
        """Scan one repository now. A git failure is recorded on the repository (and returned
        as None), never raised: one broken remote must not stop the others. ``if_changed``:
        an unchanged remote (same refs as last time) costs one ref listing and no fetch."""
        repo = await self._db.call(lambda s: store.get_repository(s, project, name))
        previous = json.loads(repo.refs_json) if if_changed and repo.refs_json else None
        result: ScanResult | None = None
        error: str | None = None
        try:
            remote = self._remote(repo.url)
            auth_url = await self._auth_url(project, repo, remote)
            result = await scan(
                remote,
                self.mirrors,
                branches=store_list(repo.branches_json),
                tags=store_list(repo.tags_json),
                previous=previous,
                auth_url=auth_url,
                allow_file=self._settings.git_allow_file,
                timeout_s=self._settings.git_timeout,
                read_published=self.published(project) if self.published is not None else None,
            )
        except GitError as exc:
            error = str(exc)
        except LockstepError as exc:
            error = str(exc)
        final = result or ScanResult(refs={}, changed=False)
        fires: list[FireRecord] = []
        if self.ref_listener is not None and final.changed and repo.refs_json:
            # the first scan of a repository is no push: nothing it sees has moved
            # (a failure here raises: the refs stay unrecorded and the next scan tries again)
            fires = await self.ref_listener.record(
                project, name, json.loads(repo.refs_json), final.refs
            )

        def _record(s: Session) -> RepositoryInfo:
            row = store.get_repository(s, project, name)
            store.record_scan(s, row, final, error=error)
            return RepositoryInfo.of(row)

        info = await self._db.call(_record)
        if fires and self.ref_listener is not None:
            await self.ref_listener.handle(fires)
        return info, result

    async def repositories(self, project: str) -> list[RepositoryInfo]:
        rows = await self._db.call(lambda s: store.list_repositories(s, project))
        return [RepositoryInfo.of(r) for r in rows]

    async def remove(self, project: str, name: str) -> None:
        await self._db.call(lambda s: store.remove_repository(s, project, name))

    async def definitions(self, project: str) -> list[DefinitionInfo]:
        return await self._db.call(lambda s: store.list_definitions(s, project))

    async def definition(self, project: str, name: str) -> DefinitionInfo:
        return await self._db.call(lambda s: store.get_definition(s, project, name))

    async def hook_candidates(self) -> list[tuple[RepositoryRow, str]]:
        rows = await self._db.call(store.all_active_repositories)
        return [
            (r, self._box.decrypt(r.project_id, f"webhook:{r.name}", r.webhook_secret))
            for r in rows
            if r.webhook_secret
        ]

    async def _require_secret(self, project: str, name: str, user: str) -> None:
        absent = await self._db.call(lambda s: secret_store.missing(s, project, [name]))
        if absent:
            raise InvalidRequest(
                f"credentials secret '{name}' of {user} is not set in project '{project}'; "
                "set it with `lockstep secrets set`"
            )

    async def _auth_url(self, project: str, repo: RepositoryRow, remote: RemoteUrl) -> str | None:
        return await self._secret_url(project, repo.credentials, remote)

    async def _secret_url(self, project: str, secret: str | None, remote: RemoteUrl) -> str | None:
        if secret is None:
            return None
        values = await self._db.call(
            lambda s: secret_store.resolve(s, self._box, project, [secret])
        )
        return url_with_secret(remote, values[secret])

    async def resolve_sources(
        self, project: str, sources: list[SourceSpec]
    ) -> list[SourceCheckout]:
        """Lock every ``sources:`` entry to a commit, now: one ref listing per remote, and a
        fetch into the mirror cache only when the remote moved (workers check out from it)."""
        locked: list[SourceCheckout] = []
        for source in sources:
            remote = self._remote(source.repo)
            if source.credentials is not None:
                await self._require_secret(project, source.credentials, f"source '{source.path}'")
            auth_url = await self._secret_url(project, source.credentials, remote)
            timeout = self._settings.git_timeout
            allow_file = self._settings.git_allow_file
            refs = await ls_remote(
                remote, auth_url=auth_url, allow_file=allow_file, timeout_s=timeout
            )
            mirror = await self.mirrors.sync(
                remote, refs, auth_url=auth_url, allow_file=allow_file, timeout_s=timeout
            )
            try:
                sha = await self.mirrors.resolve(mirror, source.ref)
            except GitError as exc:
                raise InvalidRequest(f"source '{source.path}' ({remote.display}): {exc}") from None
            locked.append(
                SourceCheckout(
                    repo=remote.url,
                    ref=source.ref,
                    sha=sha,
                    path=source.path,
                    credentials=source.credentials,
                )
            )
        return locked


def store_list(text: str) -> list[str]:
    value = json.loads(text)
    return [str(v) for v in value] if isinstance(value, list) else []


class Poller:
    """Rescans each repository when its poll interval has passed (and on webhooks)."""

    def __init__(self, registry: RegistryService, db: Database, *, tick_s: float = 1.0) -> None:
        self._registry = registry
        self._db = db
        self._tick_s = tick_s
        self._tasks: set[asyncio.Task[Any]] = set()

    async def run(self) -> None:
        while True:
            try:
                await self.poll_once()
            except Exception:  # a poll must never kill the server; the next tick retries
                log.exception("registry.poll_failed")
            await asyncio.sleep(self._tick_s)

    async def poll_once(self) -> None:
        now = datetime.now(UTC)
        for repo in await self._db.call(store.all_active_repositories):
            last = datetime.fromisoformat(repo.scanned_at) if repo.scanned_at else None
            if last is None or (now - last).total_seconds() >= repo.poll_s:
                await self._registry.scan(repo.project_id, repo.name, if_changed=True)

    async def push(self, body: bytes, headers: Mapping[str, str]) -> int:
        """A push webhook delivery: the repositories it proves itself for are rescanned in the
        background; returns how many. Unauthenticated when it proves itself for none."""
        rows = hooks.accepted(await self._registry.hook_candidates(), body, headers)
        self.rescan_soon(rows)
        return len(rows)

    def rescan_soon(self, rows: list[RepositoryRow]) -> None:
        """Webhook deliveries are acknowledged at once and processed here, in the background."""
        for row in rows:
            task = asyncio.create_task(self._registry.scan(row.project_id, row.name))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
