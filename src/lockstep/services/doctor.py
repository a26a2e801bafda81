"""``lockstep doctor``: a deployment checked end to end from the server's side — the engine and
its namespace, the database's migrations, a live worker in every pool, workers' versions,
clocks (this server's against the database's and each live worker's), and the artifact store
written, read back and cleaned up — each check one line saying what was seen or what to fix."""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from lockstep import __version__
from lockstep.errors import LockstepError
from lockstep.services.runs import RunService
from lockstep.storage import migrate
from lockstep.storage import workers as worker_store
from lockstep.storage.blobs import BlobStore
from lockstep.storage.database import Database

PROBE = b"lockstep doctor probe\n"
#: clocks further apart than this fail the check: attempts are timed by their worker, leases
#: and "last seen" by the server, schedules by the engine
CLOCK_TOLERANCE_S = 5.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def _ms(began: float) -> str:
    return f"{(time.perf_counter() - began) * 1000:.0f} ms"


class Doctor:
    def __init__(
        self,
        *,
        db: Database,
        runs: RunService,
        blobs: BlobStore,
        address: str,
        namespace: str,
        transport: str = "",
    ) -> None:
        self._db = db
        self._runs = runs
        self._blobs = blobs
        self._address = address
        self._namespace = namespace
        #: how the engine is reached (TLS, API key set or not): never the key itself
        self._transport = transport

    async def checks(self) -> list[Check]:
        found = [await self._engine(), await self._database(), await self._store()]
        # live and lately lost workers: a pool whose workers left long ago is no longer asked for
        workers = await self._db.call(worker_store.list_workers)
        clocks = await self._clocks(workers)
        return [*found, *self._pools(workers), self._versions(workers), clocks]

    async def _engine(self) -> Check:
        # imported here: the API is imported by light reads, which must not load the engine
        from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest

        began = time.perf_counter()
        try:
            client = self._runs.engine
            await asyncio.wait_for(client.service_client.check_health(), 10)
            request = DescribeNamespaceRequest(namespace=self._namespace)
            await asyncio.wait_for(client.workflow_service.describe_namespace(request), 10)
        except LockstepError as exc:
            return Check("engine", False, str(exc))
        except Exception as exc:  # the engine's own errors, whatever their kind
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            return Check(
                "engine",
                False,
                f"Temporal at {self._address}, namespace {self._namespace!r}: {why}; check "
                "LOCKSTEP_TEMPORAL_ADDRESS, LOCKSTEP_TEMPORAL_NAMESPACE and that the cluster is up",
            )
        where = f"Temporal at {self._address}, namespace {self._namespace!r}"
        where += f" ({self._transport})" if self._transport else ""
        return Check("engine", True, f"{where} answers ({_ms(began)})")

    async def _database(self) -> Check:
        began = time.perf_counter()

        try:
            got = await self._db.call(lambda s: migrate.current_revisions(s.connection()))
        except Exception as exc:
            return Check("database", False, f"cannot read it: {exc}; check LOCKSTEP_DATABASE_URL")
        if got != {migrate.HEAD_REVISION}:
            seen = ", ".join(sorted(got)) or "none"
            return Check(
                "database",
                False,
                f"at migration {seen}, this server expects {migrate.HEAD_REVISION}; "
                "start this version's server once to migrate it",
            )
        return Check("database", True, f"migrated to {migrate.HEAD_REVISION} ({_ms(began)})")

    async def _store(self) -> Check:
        key = f"doctor/{uuid.uuid4().hex}"
        try:
            await self._blobs.put_stream(key, iter([PROBE]), max_bytes=len(PROBE))
            with self._blobs.open(key) as f:
                back = f.read()
            self._blobs.delete(key)
        except Exception as exc:
            return Check(
                "artifact store",
                False,
                f"cannot write and read back a probe: {exc}; check LOCKSTEP_ARTIFACTS and "
                "its credentials",
            )
        if back != PROBE:
            return Check("artifact store", False, "a probe read back different bytes")
        return Check("artifact store", True, "a probe was written, read back and removed")

    def _pools(self, workers: list[dict[str, Any]]) -> list[Check]:
        pools = sorted({w["pool"] for w in workers})
        if not pools:
            return [Check("workers", False, "no worker is live; start `lockstep worker`")]
        checks = []
        for pool in pools:
            live = [w for w in workers if w["pool"] == pool and w["state"] == "live"]
            if live:
                slots = sum(w["capacity"] for w in live)
                checks.append(
                    Check(f"pool {pool}", True, f"{len(live)} live worker(s), {slots} slots")
                )
            else:
                last = max(w["last_seen"] for w in workers if w["pool"] == pool)
                checks.append(
                    Check(
                        f"pool {pool}",
                        False,
                        f"no live worker (last seen {last}); start `lockstep worker --pool {pool}`",
                    )
                )
        return checks

    def _versions(self, workers: list[dict[str, Any]]) -> Check:
        odd = [w for w in workers if w["state"] == "live" and w["version"] != __version__]
        if odd:
            named = ", ".join(f"{w['identity']} ({w['version']})" for w in odd[:5])
            return Check(
                "versions", False, f"server {__version__}, workers differ: {named}; upgrade them"
            )
        return Check("versions", True, f"every live worker runs {__version__}")

    async def _clocks(self, workers: list[dict[str, Any]]) -> Check:
        try:
            db_skew = await self._db.call(_database_behind_s)
        except Exception as exc:  # the database's own errors: said by its check already
            return Check("clocks", False, f"cannot read the database's clock: {exc}")
        far = abs(db_skew) > CLOCK_TOLERANCE_S
        off = [f"the database's clock is {_apart(-db_skew)}"] if far else []
        live = [w for w in workers if w["state"] == "live" and w["clock_skew_ms"] is not None]
        off += [
            f"worker {w['identity']}'s clock is {_apart(w['clock_skew_ms'] / 1000)}"
            for w in live
            if abs(w["clock_skew_ms"]) > CLOCK_TOLERANCE_S * 1000
        ][:5]
        if off:
            return Check(
                "clocks",
                False,
                f"{'; '.join(off)}; sync the hosts' clocks (NTP, e.g. chrony)",
            )
        return Check(
            "clocks",
            True,
            f"this server, the database and {len(live)} live worker(s) agree within "
            f"{CLOCK_TOLERANCE_S:g} s",
        )


def _apart(seconds: float) -> str:
    """How a clock ``seconds`` ahead of this server's (negative: behind) reads."""
    return f"{abs(seconds):.1f} s {'ahead of' if seconds > 0 else 'behind'} this server's"


def _database_behind_s(s: Session) -> float:
    """This server's clock minus the database's, in seconds (SQLite: the same host's)."""
    theirs = s.execute(select(func.current_timestamp())).scalar_one()
    if isinstance(theirs, str):  # SQLite answers text, in UTC
        theirs = datetime.fromisoformat(theirs)
    if theirs.tzinfo is None:
        theirs = theirs.replace(tzinfo=UTC)
    return (datetime.now(UTC) - theirs).total_seconds()
