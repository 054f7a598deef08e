"""The event log: one commit document per command per stream, on PyMongo's async API.

A commit holds the events one command produced for one stream. Its ``version`` is the stream's
revision after it (commits are counted, so a unique index on ``(stream_id, version)`` catches every
concurrent writer, whatever number of events each one carries). One document per commit makes
the append atomic without multi-document transactions, which FerretDB lacks. Every commit and
every consumed event (see ``inbox``) takes a ``position`` from one counter, so the whole log can
be replayed in order.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from pymongo import ASCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.envelope import Envelope, Event, Registry
from services.kernel.telemetry import current_traceparent

#: Namespace of every id derived from a cause (uuid5): stable forever, never change it.
ID_NAMESPACE = uuid.UUID("7d0c6d52-2f8e-4a57-9a44-6c1de0b9e3a1")

_tracer = trace.get_tracer("services.kernel.eventstore")


class ConcurrencyConflict(Exception):
    """Another writer appended to the stream first; load fresh state and decide again."""

    def __init__(self, stream_id: str, expected_version: int) -> None:
        super().__init__(f"stream {stream_id!r} moved past version {expected_version}")
        self.stream_id, self.expected_version = stream_id, expected_version


@dataclass(frozen=True)
class Cause:
    """Why a command runs: the incoming event or request, and the conversation it belongs to.

    ``id`` is the incoming event's id (or the request's idempotency key); with ``handler`` it
    fixes the ids of everything the command appends, so that doing it twice appends nothing.
    """

    id: str
    handler: str
    correlation_id: str
    traceparent: str | None = None

    @classmethod
    def of_event(cls, envelope: Envelope, handler: str) -> Cause:
        return cls(envelope.id, handler, envelope.correlationid, envelope.traceparent)

    @classmethod
    def of_request(cls, request_id: str, handler: str) -> Cause:
        return cls(request_id, handler, request_id)


def derived_id(*parts: str) -> str:
    """A deterministic id (uuid5) from the parts: the same cause always yields the same id."""
    return str(uuid.uuid5(ID_NAMESPACE, "\x1f".join(parts)))


@dataclass(frozen=True)
class Commit:
    """The events of one command for one stream, as stored."""

    id: str
    stream_id: str
    version: int
    position: int
    events: tuple[Envelope, ...]
    recorded_at: datetime
    published: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Commit:
        return cls(
            id=doc["_id"], stream_id=doc["stream_id"], version=doc["version"],
            position=doc["position"], recorded_at=doc["recorded_at"],
            events=tuple(Envelope.model_validate(e) for e in doc["events"]),
            published=doc.get("published", False), metadata=doc.get("metadata", {}),
        )


class EventStore:
    """Appends commits, reads streams and the whole log; wakes listeners after each append."""

    def __init__(self, db: AsyncDatabase, source: str, registry: Registry) -> None:
        self.db, self.source, self.registry = db, source, registry
        self.commits = db["commits"]
        self._counters = db["counters"]
        self._listeners: list[Callable[[], None]] = []

    async def setup(self) -> None:
        """Create the indexes the log relies on (idempotent)."""
        await self.commits.create_index([("stream_id", ASCENDING), ("version", ASCENDING)],
                                        unique=True, name="stream_version")
        await self.commits.create_index([("position", ASCENDING)], name="position")
        await self.commits.create_index([("published", ASCENDING), ("position", ASCENDING)],
                                        name="unpublished")

    def on_append(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (synchronously, cheaply) after every successful append."""
        self._listeners.append(listener)

    def notify(self) -> None:
        """Tell the relay and the projector that the log grew."""
        for listener in self._listeners:
            listener()

    async def next_position(self) -> int:
        doc = await self._counters.find_one_and_update(
            {"_id": "position"}, {"$inc": {"value": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        return int(doc["value"])

    def envelope(self, event: Event, event_id: str, cause: Cause, now: datetime) -> Envelope:
        """Wrap a domain event in its CloudEvent, with the trace and correlation of its cause."""
        return Envelope(
            id=event_id, type=event.ce_type(), source=self.source, subject=event.subject(),
            time=now, correlationid=cause.correlation_id, causationid=cause.id,
            traceparent=current_traceparent() or cause.traceparent,
            data=event.model_dump(mode="json"),
        )

    async def append(self, stream_id: str, expected_version: int, events: Sequence[Event],
                     cause: Cause, now: datetime | None = None) -> Commit | None:
        """Append ``events`` as one commit at ``expected_version + 1``.

        Returns the commit (the earlier one if this cause was already appended: a repeat is a
        no-op), ``None`` when there is nothing to append, and raises ``ConcurrencyConflict`` when
        another commit took that version.
        """
        if not events:
            return None
        now = now or datetime.now(UTC)
        commit_id = derived_id("commit", cause.handler, cause.id, stream_id)
        with _tracer.start_as_current_span("eventstore.append", attributes={
                "complaints.stream_id": stream_id, "complaints.commit_id": commit_id}):
            envelopes = [self.envelope(e, derived_id(commit_id, str(i)), cause, now)
                         for i, e in enumerate(events)]
            doc = {
                "_id": commit_id, "stream_id": stream_id, "version": expected_version + 1,
                "position": await self.next_position(), "recorded_at": now,
                "events": [e.model_dump(mode="json") for e in envelopes],
                "published": not any(type(e).public for e in events),
                "metadata": {"handler": cause.handler, "cause": cause.id,
                             "correlation_id": cause.correlation_id},
            }
            try:
                await self.commits.insert_one(doc)
            except DuplicateKeyError:
                # The unique _id and the unique (stream, version) both raise this; which one it
                # was decides between "already done" and "someone else was first".
                existing = await self.commits.find_one({"_id": commit_id})
                if existing is not None:
                    return Commit.from_doc(existing)
                raise ConcurrencyConflict(stream_id, expected_version) from None
        self.notify()
        return Commit.from_doc(doc)

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[Commit]:
        cursor = self.commits.find({"stream_id": stream_id, "version": {"$gt": after_version}})
        return [Commit.from_doc(d) async for d in cursor.sort("version", ASCENDING)]

    async def load(self, stream_id: str) -> tuple[list[Event], int]:
        """The stream's events decoded (old versions upcast) and its current version."""
        commits = await self.read_stream(stream_id)
        events = [self.registry.decode(e.type, e.data) for c in commits for e in c.events]
        return events, (commits[-1].version if commits else 0)

    async def read_all(self, after_position: int = 0, batch_size: int = 500) -> AsyncIterator[Commit]:
        """Every commit in position order (for replay), fetched in batches."""
        while True:
            cursor = self.commits.find({"position": {"$gt": after_position}})
            batch = await cursor.sort("position", ASCENDING).limit(batch_size).to_list()
            for doc in batch:
                yield Commit.from_doc(doc)
            if len(batch) < batch_size:
                return
            after_position = batch[-1]["position"]

    async def unpublished(self, limit: int) -> list[Commit]:
        cursor = self.commits.find({"published": False}).sort("position", ASCENDING).limit(limit)
        return [Commit.from_doc(d) async for d in cursor]

    async def mark_published(self, commit_ids: Sequence[str]) -> None:
        if commit_ids:
            await self.commits.update_many({"_id": {"$in": list(commit_ids)}},
                                           {"$set": {"published": True}})


async def retry_on_conflict(attempt: Callable[[], Any], tries: int = 5) -> Any:
    """Run ``attempt`` (load → decide → append) again on fresh state after a conflict."""
    for n in range(tries):
        try:
            return await attempt()
        except ConcurrencyConflict:
            if n == tries - 1:
                raise
            await asyncio.sleep(0.005 * (2 ** n))
