"""Read models built from the log (own commits and inbox), rebuildable from the store at any time.

Live, the log follower hands each new entry to ``Projector.apply`` in position order. A rebuild
drops the read model and replays the whole log (commits and consumed events, merged by position)
through the same ``apply``: one code path for both.
"""

from __future__ import annotations

import copy
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any, Protocol, cast

from pymongo import ASCENDING, DeleteOne, InsertOne, ReplaceOne, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, PyMongoError

from contracts.envelope import Envelope, Event, UnknownEventType
from services.kernel.batching import DUPLICATE_KEY
from services.kernel.eventstore import EventStore
from services.kernel.indexes import ensure_collections
from services.kernel.outage import served_from_memory, store_unavailable
from services.kernel.resilience import TtlCache

Progress = Callable[[int], None]


class Projection(Protocol):
    """A read model: ``apply`` must be idempotent (an entry can be applied again after a crash)."""

    name: str
    #: The event types ``apply`` acts on (None: it looks at every event). Only these are handed to
    #: it; an event no projection of the service acts on is not listed as pending work at all.
    events: tuple[type[Event], ...] | None

    async def setup(self) -> None: ...

    async def apply(self, envelope: Envelope, event: Event) -> None: ...

    async def reset(self) -> None: ...


class Projector:
    """Applies log entries to the service's projections."""

    def __init__(self, store: EventStore, projections: Iterable[Projection]) -> None:
        self.store, self.projections = store, {p.name: p for p in projections}
        # What is neither published nor projected is no work for the log follower: the store and
        # the inbox list no pending entry for it (2 store commands and a follower's round fewer).
        store.projected = self.wants
        self._wanted: dict[str, bool] = {}  # asked at every append and record: answered once a type

    def wants(self, ce_type: str) -> bool:
        """Whether a projection acts on events of this CloudEvents type."""
        if (known := self._wanted.get(ce_type)) is not None:
            return known
        try:
            cls = self.store.registry.event_class(ce_type)
        except UnknownEventType:
            cls = None  # not modelled here: ``apply`` skips it as well
        wanted = self._wanted[ce_type] = cls is not None and any(_acts_on(p, cls) for p in self.projections.values())
        return wanted

    async def setup(self) -> None:
        for projection in self.projections.values():
            await projection.setup()

    def forget(self) -> None:
        """Drop what projections hold in memory (the follower took its lease anew)."""
        for projection in self._documents():
            projection.forget()

    async def flush(self) -> None:
        """Write what the projections saved since the last flush (end of a follower round)."""
        for projection in self._documents():
            await projection.flush()

    def _documents(self) -> list[DocumentProjection]:
        return [p for p in self.projections.values() if isinstance(p, DocumentProjection)]

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
                if _acts_on(projection, type(event)):
                    await projection.apply(envelope, event)

    async def log_size(self) -> int:
        """Entries a rebuild will read, as the store estimates them: own commits plus consumed events.

        From the collections' statistics, not by counting: FerretDB counts a collection by reading
        every document (1.1 s for 2,000 commits, as long as the rebuild's own read of them).
        """

        async def size(name: str) -> int:
            try:
                return int((await self.store.db.command("collStats", name)).get("count", 0))
            except PyMongoError:  # a store without collStats (or the collection missing)
                return await self.store.db[name].estimated_document_count()

        return await size("commits") + await size("inbox")

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
            if count % batch_size == 0:
                await self.flush()
            if progress and count % 100 == 0:
                progress(100)
        await self.flush()
        self.forget()  # what the rebuild knew to be absent holds no longer once others may write
        if progress:
            progress(count % 100)
        return count

    async def _whole_log(self, batch_size: int) -> AsyncIterator[list[Envelope]]:
        """Every entry's envelopes, commits and inbox merged by position.

        One sorted cursor per collection, read to its end: the store scans and sorts each once.
        (Paging with ``position > last`` made FerretDB, which pushes only ``_id`` equality down,
        scan and sort the whole collection for every page: a rebuild quadratic in the log's size.)
        """

        def entries(name: str) -> AsyncIterator[dict[str, Any]]:
            cursor = self.store.db[name].find({}).sort("position", ASCENDING).batch_size(batch_size)
            return aiter(cursor)

        # collection -> (its next document, its cursor)
        heads: dict[str, tuple[dict[str, Any], AsyncIterator[dict[str, Any]]]] = {}
        for name in ("commits", "inbox"):
            cursor = entries(name)
            if (doc := await anext(cursor, None)) is not None:
                heads[name] = (doc, cursor)
        while heads:
            name = min(heads, key=lambda n: heads[n][0]["position"])
            doc, cursor = heads[name]
            if (following := await anext(cursor, None)) is None:
                del heads[name]
            else:
                heads[name] = (following, cursor)
            yield (
                [Envelope.model_validate(e) for e in doc["events"]]
                if name == "commits"
                else [Envelope.model_validate(doc["envelope"])]
            )


#: Documents a ``DocumentProjection.scan`` reads in its one batch (a larger answer goes on in more).
SCAN_BATCH = 10_000
#: How long a document read by ``shown`` may be shown again while the store is away (kept
#: meanwhile: the ``held_max`` read last).
LAST_SHOWN_TTL_S = 3600.0


def _acts_on(projection: Projection, cls: type[Event]) -> bool:
    events = getattr(projection, "events", None)  # (a projection that does not say sees every event)
    return events is None or issubclass(cls, events)


class DocumentProjection:
    """A read model of one document per key in its own collection, read by ``_id`` only.

    Subclasses set ``name`` (also the collection's) and write ``apply``; the follower is the
    only writer, so ``apply`` may read a document (``view``), change it, and give it back
    (``save``). Saved documents are written together when the follower's round ends (``flush``:
    one bulk write per read model, however many events of the round changed a document), before
    the round's pending entries are deleted: a crash in between re-applies them, and ``apply``
    skips what a document already holds. The documents are also held in memory, so that the next
    event for the same key is not read back: valid while this process holds the follower's lease,
    and dropped (``forget``) whenever it takes the lease anew.

    A work list whose documents others change too (notify's outgoing messages, which the courier
    updates and deletes) is written with ``create`` and ``remove`` instead, never ``view``/``save``
    on the same key: nothing is held, and the round's creates and removes go in the same flush.
    A document that only gathers values (intake's customer views: the complaints and orders of an
    identifier) is written with ``add_to_sets``, which reads nothing: a key seen for the first time
    cost the round a lookup that found nothing, one after the other in the follower's round.
    """

    name: str
    #: The event types ``apply`` acts on (None: every event); see ``Projection``.
    events: tuple[type[Event], ...] | None = None
    #: Other collections it writes besides ``name`` (created at start with it).
    also: tuple[str, ...] = ()
    #: Documents held per projection between rounds (least recently used out).
    held_max = 2000
    #: Keys remembered after a ``reset`` (ids only) so that a rebuild reads no document back.
    known_keys_max = 1_000_000

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.views = db[self.name]
        self._held: OrderedDict[str, dict[str, Any] | None] = OrderedDict()
        self._dirty: set[str] = set()
        #: ``create``/``remove`` since the last flush: each key's net write, one a key, so that the
        #: round's writes go unordered in one bulk (one command per kind of write).
        self._writes: dict[str, tuple[str, dict[str, Any] | None]] = {}
        #: ``add_to_sets`` since the last flush: key -> field -> the values to add (each once).
        self._additions: dict[str, dict[str, list[Any]]] = {}
        #: After ``reset`` (a rebuild): the keys saved since, so that any other key is known to be
        #: absent without a read. None: unknown, read what is not held.
        self._saved_since_reset: set[str] | None = None
        #: What ``shown`` read lately: shown again while the store is away (a copy, not the truth).
        self._last_shown: TtlCache[dict[str, Any]] = TtlCache(LAST_SHOWN_TTL_S, self.held_max)

    async def setup(self) -> None:
        # read by _id only: no index to create; its collections exist before any load (kernel/indexes.py)
        await ensure_collections(self.views.database, [self.name, *self.also])

    async def reset(self) -> None:
        self.forget()
        await self.views.drop()
        self._saved_since_reset = set()

    async def scan(self, query: dict[str, Any], fields: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """The documents matching ``query`` (a scan on FerretDB: for pages and figures, not hot
        paths), read in one batch of up to ``SCAN_BATCH``: a request that gives up halfway leaves
        no cursor open in the store, where it would hold one of FerretDB's SQLite connections
        until it expires (ADR 0032)."""
        return await self.views.find(query, fields).batch_size(SCAN_BATCH).to_list()

    async def get(self, key: str) -> dict[str, Any] | None:
        """The stored document (for readers: another replica's follower may be the writer)."""
        return await self.views.find_one({"_id": key})

    async def shown(self, key: str) -> dict[str, Any] | None:
        """The stored document, for an answer to a person; while the store is away, the copy this
        process read lately for such an answer, if any (the answer then says it is stale:
        kernel/outage.py), else the outage goes on up (a 503). Never for a decision or a write:
        those read the store (``get``), whatever it costs."""
        try:
            doc = await self.get(key)
        except PyMongoError as exc:
            if not store_unavailable(exc) or (kept := self._last_shown.get(key, time.monotonic())) is None:
                raise
            served_from_memory(f"{self.name} {key}")
            return copy.deepcopy(kept)
        if doc is not None:
            self._last_shown.put(key, copy.deepcopy(doc), time.monotonic())
        return doc

    async def view(self, key: str, first: bool = False) -> dict[str, Any] | None:
        """For ``apply``: the document as the follower last saved it (a copy to change), else read.

        ``first``: the event is the first of all for this key in the log's order (a complaint's
        ComplaintFiled, for a document per complaint): no document can hold an earlier one, so
        none is read. Applied again after a crash, it is again the first of its round, which
        applies the events after it again as well (their pending entries were not deleted).
        """
        if key in self._held:
            self._held.move_to_end(key)
        elif first or (self._saved_since_reset is not None and key not in self._saved_since_reset):
            return None  # nothing to read: a new key, or a dropped model nothing wrote this key of since
        else:
            self._held[key] = await self.views.find_one({"_id": key})
        return copy.deepcopy(self._held[key])

    async def save(self, key: str, view: dict[str, Any]) -> None:
        """For ``apply``: the changed document, written at the end of the round (``flush``)."""
        self._held[key] = copy.deepcopy(view)
        self._held.move_to_end(key)
        self._dirty.add(key)
        if self._saved_since_reset is not None:
            self._saved_since_reset.add(key)
            if len(self._saved_since_reset) > self.known_keys_max:
                self._saved_since_reset = None  # too many to keep in memory: read what is not held

    def create(self, key: str, doc: dict[str, Any]) -> None:
        """For ``apply``: insert ``doc`` at the round's end unless a document of ``key`` is there
        (an entry applied again after a crash leaves it as others changed it since)."""
        kind = self._writes.get(key, ("none", None))[0]
        if kind in ("create", "replace"):
            return  # created earlier in the round: that document stays, as an insert would keep it
        # after a remove in the same round the document is gone: this one replaces whatever is there
        self._writes[key] = ("replace" if kind == "remove" else "create", doc)

    def remove(self, key: str) -> None:
        """For ``apply``: delete the document of ``key`` at the round's end (a create earlier in
        the round is then no write at all, but the document may be there from before)."""
        self._writes[key] = ("remove", None)

    def add_to_sets(self, key: str, values: dict[str, list[Any]]) -> None:
        """For ``apply``: add ``values`` to the array fields of the document of ``key`` at the
        round's end (each value kept once; the document and its fields made if missing), without
        reading it. Adding twice is adding once, so an entry applied again after a crash changes
        nothing. Never on a key this projection also writes with ``save``, ``create`` or ``remove``."""
        fields = self._additions.setdefault(key, {})
        for field, new in values.items():
            kept = fields.setdefault(field, [])
            kept += [value for value in new if value not in kept]
        self._held.pop(key, None)

    async def flush(self) -> None:
        """Write the documents saved since the last flush, in one bulk write; then the round's
        creates, removes and additions, in one more (one command per kind of write)."""
        await self._flush_saved()
        if not self._writes and not self._additions:
            return
        writes: list[InsertOne[dict[str, Any]] | DeleteOne | ReplaceOne[dict[str, Any]] | UpdateOne] = [
            _write(key, *net) for key, net in self._writes.items()
        ]
        writes += [
            UpdateOne({"_id": key}, {"$addToSet": {f: {"$each": v} for f, v in fields.items()}}, upsert=True)
            for key, fields in self._additions.items()
        ]
        self._writes.clear()  # written or not: a failed round is applied again, and writes them again
        self._additions.clear()
        try:
            await self.views.bulk_write(writes, ordered=False)
        except BulkWriteError as exc:
            # a create whose document is there (applied before) is what it should be: the rest is written
            if any(error.get("code") not in DUPLICATE_KEY for error in exc.details.get("writeErrors", [])):
                raise

    async def _flush_saved(self) -> None:
        if self._dirty:
            # A key saved (dirty) holds its document, never None (what ``view`` holds for an absent one).
            writes = [
                ReplaceOne({"_id": key}, cast(dict[str, Any], self._held[key]), upsert=True) for key in self._dirty
            ]
            try:
                await self.views.bulk_write(writes, ordered=False)
            except BaseException:
                self.forget()  # some may be written, some not: read them again
                raise
            self._dirty.clear()
        while len(self._held) > self.held_max:
            self._held.popitem(last=False)

    def forget(self) -> None:
        """Hold nothing: another writer may have changed the documents."""
        self._held.clear()
        self._dirty.clear()
        self._writes.clear()
        self._additions.clear()
        self._saved_since_reset = None


def _write(
    key: str, kind: str, doc: dict[str, Any] | None
) -> InsertOne[dict[str, Any]] | DeleteOne | ReplaceOne[dict[str, Any]]:
    if kind == "remove":
        return DeleteOne({"_id": key})
    document = {**cast(dict[str, Any], doc), "_id": key}
    return InsertOne(document) if kind == "create" else ReplaceOne({"_id": key}, document, upsert=True)
