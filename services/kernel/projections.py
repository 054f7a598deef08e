"""Read models built from the log (own commits and inbox), rebuildable from the store at any time.

Each log entry carries the names of the projections that have applied it. The projector applies
the entries a projection has not seen, in position order, and marks them; it does not keep a
position watermark, because positions are taken before the insert and can become visible out of
order. Rebuilding drops the read model and the marks, then catches up with the same code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Protocol

from pymongo import ASCENDING
from pymongo.errors import PyMongoError

from contracts.envelope import Envelope, Event, UnknownEventType
from services.kernel.eventstore import EventStore

log = logging.getLogger(__name__)

Progress = Callable[[int], None]


class Projection(Protocol):
    """A read model: ``apply`` must be idempotent (an entry can be applied again after a crash)."""

    name: str

    async def setup(self) -> None: ...

    async def apply(self, envelope: Envelope, event: Event) -> None: ...

    async def reset(self) -> None: ...


class Projector:
    """Keeps projections up to date; woken after every append and every recorded inbox entry."""

    def __init__(self, store: EventStore, projections: list[Projection], batch_size: int = 500,
                 poll_interval_s: float = 1.0) -> None:
        self.store, self.projections = store, {p.name: p for p in projections}
        self.batch_size, self.poll_interval_s = batch_size, poll_interval_s
        self._sources = (store.db["commits"], store.db["inbox"])
        self._wake = asyncio.Event()
        self._stopping = False
        store.on_append(self._wake.set)

    async def pending(self, name: str) -> int:
        """How many log entries ``name`` has not applied yet."""
        return sum([await c.count_documents({"projected": {"$ne": name}}) for c in self._sources])

    async def _unapplied(self, name: str) -> AsyncIterator[tuple[str, dict, list[Envelope]]]:
        """Unapplied entries of both sources merged by position, up to where both are known."""
        commits, inbox = self._sources
        query = {"projected": {"$ne": name}}
        a = await commits.find(query).sort("position", ASCENDING).limit(self.batch_size).to_list()
        b = await inbox.find(query).sort("position", ASCENDING).limit(self.batch_size).to_list()
        limits = [batch[-1]["position"] for batch in (a, b) if len(batch) == self.batch_size]
        cut = min(limits) if limits else float("inf")
        entries = [("commits", d, [Envelope.model_validate(e) for e in d["events"]]) for d in a]
        entries += [("inbox", d, [Envelope.model_validate(d["envelope"])]) for d in b]
        for source, doc, envelopes in sorted(entries, key=lambda x: x[1]["position"]):
            if doc["position"] <= cut:
                yield source, doc, envelopes

    async def catch_up(self, name: str, progress: Progress | None = None) -> int:
        """Apply every unapplied entry to projection ``name``; returns how many entries."""
        projection, total = self.projections[name], 0
        while True:
            done: dict[str, list] = {"commits": [], "inbox": []}
            async for source, doc, envelopes in self._unapplied(name):
                for envelope in envelopes:
                    try:
                        event = self.store.registry.decode(envelope.type, envelope.data)
                    except UnknownEventType:
                        continue  # a type this service does not model: nothing to project
                    await projection.apply(envelope, event)
                done[source].append(doc["_id"])
            count = len(done["commits"]) + len(done["inbox"])
            if not count:
                return total
            for collection, ids in zip(self._sources, done.values()):
                if ids:
                    await collection.update_many({"_id": {"$in": ids}}, {"$addToSet": {"projected": name}})
            total += count
            if progress:
                progress(count)

    async def rebuild(self, name: str, progress: Progress | None = None) -> int:
        """Drop the read model and apply the whole log again."""
        await self.projections[name].reset()
        for collection in self._sources:
            await collection.update_many({}, {"$pull": {"projected": name}})
        return await self.catch_up(name, progress)

    async def run(self) -> None:
        for projection in self.projections.values():
            await projection.setup()
        while not self._stopping:
            self._wake.clear()
            try:
                for name in self.projections:
                    await self.catch_up(name)
            except PyMongoError as exc:
                log.warning("projector round failed; retrying", extra={"fields": {"error": str(exc)}})
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
            except TimeoutError:
                pass

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
