"""Read models built from the log (own commits and inbox), rebuildable from the store at any time.

Live, the log follower hands each new entry to ``Projector.apply`` in position order. A rebuild
drops the read model and replays the whole log (commits and consumed events, merged by position)
through the same ``apply``: one code path for both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

from pymongo import ASCENDING
from pymongo.asynchronous.database import AsyncDatabase

from contracts.envelope import Envelope, Event, UnknownEventType
from services.kernel.eventstore import EventStore

Progress = Callable[[int], None]


class Projection(Protocol):
    """A read model: ``apply`` must be idempotent (an entry can be applied again after a crash)."""

    name: str

    async def setup(self) -> None: ...

    async def apply(self, envelope: Envelope, event: Event) -> None: ...

    async def reset(self) -> None: ...


class Projector:
    """Applies log entries to the service's projections."""

    def __init__(self, store: EventStore, projections: Iterable[Projection]) -> None:
        self.store, self.projections = store, {p.name: p for p in projections}

    async def setup(self) -> None:
        for projection in self.projections.values():
            await projection.setup()

    async def apply(self, envelopes: Iterable[Envelope], names: Iterable[str] | None = None) -> None:
        """Apply one log entry's events to every projection (or to ``names``)."""
        targets = [self.projections[n] for n in (names or self.projections)]
        if not targets:
            return
        for envelope in envelopes:
            try:
                event = self.store.registry.decode(envelope.type, envelope.data)
            except UnknownEventType:
                continue  # a type this service does not model: nothing to project
            for projection in targets:
                await projection.apply(envelope, event)

    async def log_size(self) -> int:
        """Entries a rebuild will read: own commits plus consumed events."""
        return (await self.store.commits.count_documents({})
                + await self.store.db["inbox"].count_documents({}))

    async def rebuild(self, name: str, progress: Progress | None = None, batch_size: int = 500) -> int:
        """Drop the read model and apply the whole log again; returns the entries read.

        Run it with the service stopped: a running follower could apply an entry to the model
        while it is being dropped.
        """
        projection = self.projections[name]
        await projection.reset()
        await projection.setup()
        count = 0
        async for envelopes in self._whole_log(batch_size):
            await self.apply(envelopes, [name])
            count += 1
            if progress and count % 100 == 0:
                progress(100)
        if progress:
            progress(count % 100)
        return count

    async def _whole_log(self, batch_size: int):
        """Every entry's envelopes, commits and inbox merged by position."""
        sources = {"commits": self.store.commits, "inbox": self.store.db["inbox"]}
        after = {name: -1 for name in sources}
        buffers: dict[str, list[dict]] = {name: [] for name in sources}
        exhausted: set[str] = set()
        while True:
            for name, collection in sources.items():
                if not buffers[name] and name not in exhausted:
                    batch = await collection.find({"position": {"$gt": after[name]}}).sort(
                        "position", ASCENDING).limit(batch_size).to_list()
                    buffers[name] = batch
                    if len(batch) < batch_size:
                        exhausted.add(name)
                    if batch:
                        after[name] = batch[-1]["position"]
            live = [n for n in sources if buffers[n]]
            if not live:
                return
            name = min(live, key=lambda n: buffers[n][0]["position"])
            doc = buffers[name].pop(0)
            yield ([Envelope.model_validate(e) for e in doc["events"]] if name == "commits"
                   else [Envelope.model_validate(doc["envelope"])])


class DocumentProjection:
    """A read model of one document per key in its own collection, read by ``_id`` only.

    Subclasses set ``name`` (also the collection's) and write ``apply``; the follower is the
    only writer, so ``apply`` may read a document, change it, and write it back.
    """

    name: str

    def __init__(self, db: AsyncDatabase) -> None:
        self.views = db[self.name]

    async def setup(self) -> None:
        pass  # read by _id only: no index to create

    async def reset(self) -> None:
        await self.views.drop()

    async def get(self, key: str) -> dict[str, Any] | None:
        return await self.views.find_one({"_id": key})
