"""A sliding-window rate limit per key, counted in the store so that every replica shares it.

Insert-only, because the store's updates may not be atomic (FerretDB has no reliable
increment-and-check): a caller inserts its hit, then counts the key's hits in the window, and
withdraws its own hit if that count is over the limit. The last admitted hit of any set was
counted with all the others already in, so no more than ``limit`` are ever admitted. Callers racing
for more places than are left may all be refused (each counts the others' hits before they are
withdrawn): too strict at the boundary, the safe way to be wrong.

Every limit shares one collection; ``setup`` creates it and its indexes at start (from
``Runtime.start``), never at a first hit: that would be under load (kernel/indexes.py).
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from services.kernel.clock import Clock, SystemClock
from services.kernel.indexes import ensure_collections, ensure_indexes

COLLECTION = "rate_limit_hits"
#: A key's hits in its window (the count and the read of a refusal); the hits past it (the sweep).
INDEXES = (IndexModel([("key", ASCENDING), ("at", ASCENDING)], name="key_at"), IndexModel("expires", name="expires"))
#: How often one limit sweeps out the hits past their window (everyone's, of every limit).
SWEEP_EVERY = timedelta(seconds=10)


async def setup(db: AsyncDatabase[dict[str, Any]]) -> None:
    """Create the hits' collection and indexes, for every limit of ``db`` (at start: idempotent)."""
    await ensure_collections(db, [COLLECTION])
    await ensure_indexes(db[COLLECTION], INDEXES)


class RateLimit:
    """At most ``limit`` hits per ``window`` for each key of the limit called ``name``; its
    database's ``setup`` must have run (``Runtime.start`` does it)."""

    def __init__(
        self, db: AsyncDatabase[dict[str, Any]], name: str, limit: int, window: timedelta, clock: Clock | None = None
    ) -> None:
        self.hits, self.name, self.limit, self.window = db[COLLECTION], name, limit, window
        self.clock = clock or SystemClock()
        self._next_sweep = self.clock.now()

    async def hit(self, key: str) -> int | None:
        """Count a hit; None if allowed, else the whole seconds to wait (for ``Retry-After``)."""
        now, key = self.clock.now(), f"{self.name}:{key}"
        if now >= self._next_sweep:  # FerretDB 1.24 refuses TTL indexes ("not implemented yet")
            self._next_sweep = now + SWEEP_EVERY
            await self.hits.delete_many({"expires": {"$lte": now}})
        mine = {"_id": uuid.uuid4().hex, "key": key, "at": now, "expires": now + self.window}
        await self.hits.insert_one(mine)
        others = {"key": key, "at": {"$gt": now - self.window}, "_id": {"$ne": mine["_id"]}}
        # Counted, not read: a key with many hits would come back in several batches, and a request
        # that times out between two leaves its cursor open in the store, where it holds one of
        # FerretDB's few SQLite connections until the cursor expires (ADR 0032).
        if await self.hits.count_documents(others) < self.limit:
            return None
        await self.hits.delete_one({"_id": mine["_id"]})
        # Room again when the oldest of the ``limit`` most recent others leaves the window.
        newest = await (
            self.hits.find(others, {"at": 1})
            .sort("at", DESCENDING)
            .limit(self.limit)
            .batch_size(min(self.limit, 10_000))
            .to_list()
        )
        if not newest:  # withdrawn meanwhile by the callers racing this one
            return 1
        frees_room: datetime = newest[-1]["at"]
        return max(1, math.ceil((frees_room + self.window - now).total_seconds()))
