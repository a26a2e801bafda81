"""The server side of the engine's activities: the recorder that writes the engine's state
changes, the cache look-up, loading outputs stored by reference, and a short backoff sleep.

They run as local activities of the control worker, next to the metadata DB; the activity
names are the interpreter's own.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import activity

from lockstep.clock import format_ts
from lockstep.engine.events import EventBatch
from lockstep.engine.interpreter import (
    CACHE_ACTIVITY,
    LOAD_ACTIVITY,
    RECORD_ACTIVITY,
    WAIT_ACTIVITY,
)
from lockstep.engine.types import CacheHit, CacheQuery, OutputLoad
from lockstep.outputs_by_reference import load, owned
from lockstep.storage import cache
from lockstep.storage.blobs import BlobStore
from lockstep.storage.database import Database
from lockstep.storage.recorder import apply_events


@activity.defn(name=WAIT_ACTIVITY)
async def wait_briefly(seconds: float) -> str:
    """A retry backoff shorter than Temporal's timer tick, slept on the interpreter's worker
    as a local activity; returns when it ended."""
    await asyncio.sleep(seconds)
    return format_ts()


class Recorder:
    """Writes the engine's state changes to the metadata DB; runs next to the DB."""

    def __init__(self, db: Database, blobs: BlobStore) -> None:
        self._db = db
        self._blobs = blobs

    @activity.defn(name=RECORD_ACTIVITY)
    async def record(self, batch: EventBatch) -> None:
        await self._db.call(lambda s: apply_events(s, batch.run_id, batch.events))

    @activity.defn(name=CACHE_ACTIVITY)
    async def cache_lookup(self, query: CacheQuery) -> CacheHit | None:
        return await self._db.call(lambda s: cache.lookup(s, query.project, query.key, query.ttl_s))

    @activity.defn(name=LOAD_ACTIVITY)
    async def load_outputs(self, query: OutputLoad) -> dict[str, Any]:
        """Values stored by reference that an expression in the engine must read; a key
        that is not the project's own is not read (its marker stays data)."""
        return {
            key: await asyncio.to_thread(load, self._blobs, key, query.project)
            for key in query.keys
            if owned(key, query.project)
        }
