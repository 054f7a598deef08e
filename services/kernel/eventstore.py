"""The event log: one commit document per command per stream, on PyMongo's async API.

A commit holds the events one command produced for one stream. Its ``version`` is the stream's
revision after it (commits are counted, so the unique key ``<stream>@<version>`` catches every
concurrent writer, whatever number of events each one carries). One document per commit makes
the append atomic without multi-document transactions, which FerretDB lacks. Every commit and
every consumed event (see ``consumer.Inbox``) takes a ``position`` (see ``next_position``), so
the whole log can be replayed in order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import random
import time
import uuid
import zlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from bson import Binary, CodecOptions
from bson.errors import InvalidDocument
from opentelemetry import trace
from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from contracts.envelope import Envelope, Event, Registry
from services.kernel import meters
from services.kernel.batching import InsertBatcher
from services.kernel.indexes import ensure_collections, ensure_indexes
from services.kernel.states import HotStates
from services.kernel.telemetry import current_traceparent, parent_context

#: A read from a stream's start that read this many commits one by one (or a quarter of what the
#: stream's digest held) keeps them all as the stream's digest (``EventStore._keep_digest``).
DIGEST_AFTER = 16

#: Namespace of every id derived from a cause (uuid5): stable forever, never change it.
ID_NAMESPACE = uuid.UUID("7d0c6d52-2f8e-4a57-9a44-6c1de0b9e3a1")

_tracer = trace.get_tracer("services.kernel.eventstore")
log = logging.getLogger(__name__)


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
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Commit:
        return cls(
            id=doc["commit_id"],
            stream_id=doc["stream_id"],
            version=doc["version"],
            position=doc["position"],
            recorded_at=doc["recorded_at"],
            events=tuple(Envelope.model_validate(e) for e in doc["events"]),
            metadata=doc.get("metadata", {}),
        )


class EventStore:
    """Appends commits, reads streams and the whole log; wakes listeners after each append.

    Every hot-path read and write names a document by ``_id``: FerretDB on SQLite pushes only
    ``_id`` equality down to SQLite and scans the whole collection for any other filter. So a
    commit's ``_id`` is ``<stream>@<version>`` (a unique key that is also the concurrency check),
    and the entries still to be published or projected are listed in a small ``pending``
    collection (one document each, written before the commit and deleted once carried out).
    """

    def __init__(self, db: AsyncDatabase[dict[str, Any]], source: str, registry: Registry) -> None:
        self.db, self.source, self.registry = db, source, registry
        self.commits, self.pending = db["commits"], db["pending"]
        #: The hot inserts, grouped across concurrent writers (kernel/batching.py).
        self.inserts = {name: InsertBatcher(db[name]) for name in ("commits", "pending", "inbox")}
        #: A copy of each long stream's commits from its first, in one document, for reads from the
        #: start (``read_stream``): a cache, which may be dropped at any time.
        self.digests = db["stream_digests"]
        self._listeners: list[Callable[[], None]] = []
        self._last_position = 0
        #: The latest state this process folded of each stream (kernel/commands.py ``execute``).
        self.states = HotStates()
        #: Pending entries this process wrote (id -> the commit, or the consumed envelopes) that
        #: the log follower has not carried out yet: it need not read them back (bounded; one that
        #: fell out, or was written by another replica, is read from the store).
        self.written: OrderedDict[str, Commit | list[Envelope]] = OrderedDict()
        # (stream, version) -> position of commits this process wrote or read lately: saves the
        # lookup of the previous commit's position on the next append to the same stream.
        self._positions: OrderedDict[tuple[str, int], int] = OrderedDict()
        #: Whether a projection of the service acts on events of a CloudEvents type (the runtime's
        #: Projector sets it). A commit of private events none acts on is nobody's pending work.
        self.projected: Callable[[str], bool] = lambda ce_type: True
        #: Pending entries this process listed and is still writing the commit or inbox record of.
        self.in_flight: set[str] = set()

    async def setup(self) -> None:
        """Create the indexes the log relies on (idempotent)."""
        await ensure_collections(self.db, ["commits", "pending", "stream_digests", "snapshots"])
        await ensure_indexes(
            self.commits,
            [IndexModel("commit_id", unique=True, name="commit_id")],  # a cause appends once
            for_queries=[
                IndexModel("position", name="position"),  # read_all, rebuilds
                IndexModel([("stream_id", ASCENDING), ("version", ASCENDING)], name="stream_version"),
            ],
        )

    def on_append(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` (synchronously, cheaply) after every successful append."""
        self._listeners.append(listener)

    def notify(self) -> None:
        """Tell the log follower that there is something pending."""
        for listener in self._listeners:
            listener()

    def next_position(self, after: int = 0) -> int:
        """A position later than ``after`` and than any this process gave before.

        Positions come from the clock (nanoseconds), not from a counter document: FerretDB
        applies ``$inc`` as read-modify-write and loses concurrent increments. A stream's next
        commit is placed after its previous one (``after``), so per-stream order never depends
        on clocks agreeing; across streams, replay follows wall-clock order.
        """
        self._last_position = max(time.time_ns(), after + 1, self._last_position + 1)
        return self._last_position

    def envelope(self, event: Event, event_id: str, cause: Cause, now: datetime) -> Envelope:
        """Wrap a domain event in its CloudEvent, with the trace and correlation of its cause."""
        return envelope(self.source, event, event_id, cause, now)

    async def append(
        self, stream_id: str, expected_version: int, events: Sequence[Event], cause: Cause, now: datetime | None = None
    ) -> Commit | None:
        """Append ``events`` as one commit at ``expected_version + 1``.

        Returns the commit (the earlier one if this cause was already appended: a repeat is a
        no-op), ``None`` when there is nothing to append, and raises ``ConcurrencyConflict`` when
        another commit took that version.
        """
        if not events:
            return None
        now = now or datetime.now(UTC)
        commit_id = commit_id_of(stream_id, cause)
        key = stream_key(stream_id, expected_version + 1)
        with _tracer.start_as_current_span(
            "eventstore.append",
            context=parent_context(cause.traceparent),
            attributes={"complaints.stream_id": stream_id, "complaints.commit_id": commit_id},
        ):
            position = self.next_position(await self._position_of(stream_id, expected_version))
            doc = commit_document(self.source, stream_id, expected_version + 1, position, events, cause, now)
            # Pending first: a crash after it leaves an entry the follower drops as an orphan;
            # the other order could leave a commit that is never published. Its age is the wall
            # clock's, never the caller's ``now`` (an injected or replayed time): the follower
            # would otherwise take an entry whose commit is a moment away for a day-old orphan,
            # delete it, and the commit would never be projected or published.
            entry = self._entry(commit_id, key, position, events)
            listed = entry is not None
            with self.writing(commit_id):
                # Whether this attempt listed the entry; else it is the earlier commit's of this
                # cause, still pending, and stays as it is (``earlier``).
                listed_here, earlier = False, None
                if entry is not None:
                    try:
                        await self.inserts["pending"].insert_one(entry)
                        listed_here = True
                    except DuplicateKeyError:
                        if (earlier := await self._listed_commit(commit_id)) is None:
                            # Left by an attempt of this cause that conflicted: listed again, at the
                            # end of the insertion order the follower reads in (see follower.py).
                            await self.pending.delete_one({"_id": commit_id})
                            await self.pending.insert_one(entry)
                            listed_here = True
                try:
                    # With ``earlier`` found, the unique ``commit_id`` refuses this: a commit is
                    # never written without its entry.
                    await self.inserts["commits"].insert_one(doc)
                except DuplicateKeyError:
                    existing = await self.commits.find_one({"_id": key})
                    if listed_here:  # either way the entry just listed points at no commit of this attempt
                        await self.pending.delete_one({"_id": commit_id, "ref": key})
                    if existing is None or existing["commit_id"] == commit_id:
                        # This cause was appended before (at this or an earlier version). The key
                        # taken was the ``_id`` (``existing``) or else the unique ``commit_id``.
                        earlier = existing or earlier or await self.commits.find_one({"commit_id": commit_id})
                        return Commit.from_doc(cast(dict[str, Any], earlier))
                    raise ConcurrencyConflict(stream_id, expected_version) from None
        return self._stored(doc, listed)

    def _entry(self, commit_id: str, key: str, position: int, events: Sequence[Event]) -> dict[str, Any] | None:
        """The pending entry of a commit, or None when nobody has work in it: it is not public
        and no projection of the service acts on its events."""
        public = any(type(e).public for e in events)
        if not public and not any(self.projected(type(e).ce_type()) for e in events):
            return None
        return {
            "_id": commit_id,
            "kind": "commit",
            "ref": key,
            "position": position,
            "created_at": datetime.now(UTC),
            "published": not public,
        }

    def _stored(self, doc: dict[str, Any], listed: bool) -> Commit:
        """A commit just written: remembered, counted, and handed to the follower if listed."""
        self._remember(doc["stream_id"], doc["version"], doc["position"])
        commit = Commit.from_doc(doc)
        for event in commit.events:
            meters.events_appended.add(1, {"type": event.type})
        if listed:
            self.wrote(commit.id, commit)
            self.notify()
        return commit

    async def append_run(
        self, stream_id: str, expected_version: int, run: Sequence[tuple[Sequence[Event], Cause, datetime]]
    ) -> list[Commit]:
        """Append commits in a row, at ``expected_version + 1``, ``+ 2`` …: one write of their
        pending entries and one ordered write of the commits, whatever their number (the commands
        queued on a hot stream, kernel/commands.py).

        Returns the commits written: a prefix of ``run``, which stops before the first that is not
        new at its version (another commit took the version, or its cause was appended before:
        its pending entry or its ``commit_id`` is there). The caller takes the rest one by one, where
        ``append`` tells which it was. Every element of ``run`` has events.
        """
        with (
            _tracer.start_as_current_span(
                "eventstore.append_run", attributes={"complaints.stream_id": stream_id, "complaints.commits": len(run)}
            ),
            ExitStack() as writing,
        ):
            docs, entries, position = [], [], await self._position_of(stream_id, expected_version)
            for n, (events, cause, now) in enumerate(run, start=1):
                commit_id, key = commit_id_of(stream_id, cause), stream_key(stream_id, expected_version + n)
                position = self.next_position(position)
                # In its cause's trace, as ``append`` makes it: the events carry that trace on.
                with _tracer.start_as_current_span(
                    "eventstore.append",
                    context=parent_context(cause.traceparent),
                    attributes={"complaints.stream_id": stream_id, "complaints.commit_id": commit_id},
                ):
                    doc = commit_document(self.source, stream_id, expected_version + n, position, events, cause, now)
                docs.append(doc)
                entries.append(self._entry(commit_id, key, position, events))
                writing.enter_context(self.writing(commit_id))
            # Pending first, as in ``append``. An entry that is there already is this cause's from
            # an earlier attempt: the run ends before it, and the entry stays.
            outcomes = await asyncio.gather(
                *(self.inserts["pending"].insert_one(e) for e in entries if e is not None), return_exceptions=True
            )
            listed_here, upto, failure = [False] * len(entries), len(entries), None
            for n, outcome in zip((n for n, e in enumerate(entries) if e is not None), outcomes, strict=True):
                if outcome is None:
                    listed_here[n] = True
                elif isinstance(outcome, DuplicateKeyError):
                    upto = min(upto, n)
                else:
                    failure = failure or outcome
            written = 0
            if failure is None and upto:
                try:
                    await self.commits.insert_many(docs[:upto], ordered=True)
                    written = upto
                except BulkWriteError as exc:  # ordered: the commits before the one refused are written
                    written = exc.details.get("nInserted", 0)
            # The entries listed here for commits not written point at nothing (the store's failure
            # too: what it did write of them would be an orphan, dropped by the follower later).
            await asyncio.gather(
                *(
                    self.pending.delete_one({"_id": e["_id"], "ref": e["ref"]})
                    for n, e in enumerate(entries)
                    if e is not None and listed_here[n] and n >= written
                ),
                return_exceptions=failure is not None,
            )
            if failure is not None:
                raise failure
            return [self._stored(doc, entry is not None) for doc, entry in zip(docs[:written], entries, strict=False)]

    async def _listed_commit(self, commit_id: str) -> dict[str, Any] | None:
        """The stored commit the pending entry ``commit_id`` points at, if that is this commit id's."""
        entry = await self.pending.find_one({"_id": commit_id}, {"ref": 1})
        doc = await self.commits.find_one({"_id": entry["ref"]}) if entry is not None else None
        return doc if doc is not None and doc["commit_id"] == commit_id else None

    @contextmanager
    def writing(self, entry_id: str) -> Iterator[None]:
        """While this process writes what the pending entry ``entry_id`` stands for: the follower
        leaves the entry to the round the write's end wakes. Taken up before, it was looked up in
        the store, found missing or just written (about one lookup a complaint in routing and
        notify under the burst), and an entry whose write outlasted the orphan age was dropped."""
        self.in_flight.add(entry_id)
        try:
            yield
        finally:
            self.in_flight.discard(entry_id)

    def wrote(self, entry_id: str, target: Commit | list[Envelope]) -> None:
        """Hand the follower what the pending entry ``entry_id`` stands for, now that it is stored."""
        self.written[entry_id] = target
        while len(self.written) > 10_000:
            self.written.popitem(last=False)

    def _remember(self, stream_id: str, version: int, position: int) -> None:
        self._positions[(stream_id, version)] = position
        if len(self._positions) > 10_000:
            self._positions.popitem(last=False)

    async def _position_of(self, stream_id: str, version: int) -> int:
        """Position of the stream's commit at ``version`` (0 before the first commit)."""
        if version == 0:
            return 0
        if (known := self._positions.get((stream_id, version))) is not None:
            return known
        doc = await self.commits.find_one({"_id": stream_key(stream_id, version)}, {"position": 1})
        return doc["position"] if doc else 0

    async def read_stream(self, stream_id: str, after_version: int = 0) -> list[Commit]:
        """The stream's commits after ``after_version``, in order.

        By ``_id`` only (FerretDB on SQLite answers nothing else from an index): single commits,
        in windows of lookups sent at once that double (1, 2, 4 … 32) until one finds the
        stream's end, so a stream that has not moved costs one lookup. A read from the start
        takes the stream's digest as well, if one was kept (see ``_keep_digest``), and then only
        the commits after it.
        """
        commits = [Commit.from_doc(doc) for doc in await self._stream_documents(stream_id, after_version)]
        if commits:
            self._remember(stream_id, commits[-1].version, commits[-1].position)
        return commits

    async def _stream_documents(self, stream_id: str, after_version: int) -> list[dict[str, Any]]:
        """The commit documents of ``read_stream``."""
        if after_version > 0:
            return await self._commits_after(stream_id, after_version)
        # Most streams read from their start are new ones (a complaint's, a call's: counted in a
        # burst, 9 in 10 of these reads found nothing): their first commit alone says so.
        first = await self.commits.find_one({"_id": stream_key(stream_id, 1)})
        if first is None:
            return []
        digest = await self.digests.find_one({"_id": stream_id})
        kept = digest_commits(digest, self.digests.codec_options) if digest is not None else [first]
        if any(doc["version"] != i + 1 for i, doc in enumerate(kept)):
            raise RuntimeError(f"stream {stream_id!r}: its digest disagrees with its commits")
        tail = await self._commits_after(stream_id, len(kept), window=1 if digest is not None else 2)
        docs = kept + tail
        if len(tail) >= max(DIGEST_AFTER, len(kept) // 4):  # written again as the stream grows by a quarter
            await self._keep_digest(stream_id, docs)
        return docs

    async def _commits_after(self, stream_id: str, version: int, window: int = 1) -> list[dict[str, Any]]:
        """The stream's commit documents after ``version``, by ``_id``, in doubling windows."""
        docs, version = [], version + 1
        while True:
            # Up to the first one missing (None): documents only.
            found = cast(
                list[dict[str, Any]],
                list(
                    itertools.takewhile(
                        lambda doc: doc is not None,
                        await asyncio.gather(
                            *(
                                self.commits.find_one({"_id": stream_key(stream_id, v)})
                                for v in range(version, version + window)
                            )
                        ),
                    )
                ),
            )
            docs += found
            if len(found) < window:
                return docs
            version, window = version + window, min(window * 2, 32)

    async def _keep_digest(self, stream_id: str, docs: list[dict[str, Any]]) -> None:
        """Keep ``docs``, the stream's commits from its first, as its digest: one document, so that
        the next read from the start costs two lookups and a few, not one per commit.

        A digest is true for ever (commits never change, versions have no gaps), so readers that
        race may each write theirs: whichever stays is a true start of the stream, and a shorter
        one only leaves more commits to read one by one; one that is not written (too large, the
        store busy) costs only that. The commits are one compressed JSON value: FerretDB decodes
        a document field by field, at about the cost of a whole commit per stored commit
        (measured: 190 ms for 256 commits kept as an array, 9 ms as one compressed value), and
        Python's json reads them back in less than half the time BSON's decoder takes.
        """
        try:
            commits = [{**doc, "recorded_at": doc["recorded_at"].isoformat()} for doc in docs]
            digest = {
                "_id": stream_id,
                "upto": len(docs),
                "encoding": "json+zlib",
                "commits": Binary(zlib.compress(json.dumps(commits, separators=(",", ":")).encode())),
            }
            await self.digests.replace_one({"_id": stream_id, "upto": {"$lt": len(docs)}}, digest, upsert=True)
        except DuplicateKeyError:
            pass  # a longer digest is there already
        except (PyMongoError, InvalidDocument, TypeError) as exc:  # TypeError: a value JSON cannot hold
            log.info("stream digest not kept", extra={"fields": {"stream_id": stream_id, "error": str(exc)[:200]}})

    async def load(self, stream_id: str, after_version: int = 0) -> tuple[list[Event], int]:
        """The stream's events after ``after_version``, decoded (old versions upcast), and its
        current version."""
        docs = await self._stream_documents(stream_id, after_version)
        if not docs:
            return [], after_version
        self._remember(stream_id, docs[-1]["version"], docs[-1]["position"])
        # From the stored envelopes' type and data: no envelope model built on the way.
        return [self.registry.decode(e["type"], e["data"]) for doc in docs for e in doc["events"]], docs[-1]["version"]

    async def read_all(self, after_position: int = 0, batch_size: int = 500) -> AsyncIterator[Commit]:
        """Every commit in position order (for replay and rebuilds; scans on FerretDB)."""
        while True:
            cursor = self.commits.find({"position": {"$gt": after_position}})
            batch = await cursor.sort("position", ASCENDING).limit(batch_size).to_list()
            for doc in batch:
                yield Commit.from_doc(doc)
            if len(batch) < batch_size:
                return
            after_position = batch[-1]["position"]


def envelope(source: str, event: Event, event_id: str, cause: Cause, now: datetime) -> Envelope:
    """A domain event in its CloudEvent, with the trace and correlation of its cause."""
    return Envelope(
        id=event_id,
        type=event.ce_type(),
        source=source,
        subject=event.subject(),
        time=now,
        correlationid=cause.correlation_id,
        causationid=cause.id,
        traceparent=current_traceparent() or cause.traceparent,
        data=event.model_dump(mode="json"),
    )


def commit_id_of(stream_id: str, cause: Cause) -> str:
    """The id of the commit ``cause`` makes on the stream: the same cause, the same commit."""
    return derived_id("commit", cause.handler, cause.id, stream_id)


def commit_document(
    source: str, stream_id: str, version: int, position: int, events: Sequence[Event], cause: Cause, now: datetime
) -> dict[str, Any]:
    """A commit as every store keeps it; its events' ids follow from its id, so from the cause."""
    commit_id = commit_id_of(stream_id, cause)
    return {
        "_id": stream_key(stream_id, version),
        "commit_id": commit_id,
        "stream_id": stream_id,
        "version": version,
        "position": position,
        "recorded_at": now,
        "events": [
            envelope(source, e, derived_id(commit_id, str(i)), cause, now).model_dump(mode="json")
            for i, e in enumerate(events)
        ],
        "metadata": {"handler": cause.handler, "cause": cause.id, "correlation_id": cause.correlation_id},
    }


def stream_key(stream_id: str, version: int) -> str:
    """The ``_id`` of a stream's commit at ``version``."""
    return f"{stream_id}@{version}"


def digest_commits(digest: dict[str, Any], codec: CodecOptions[dict[str, Any]]) -> list[dict[str, Any]]:
    """The commit documents of a stream's digest (``EventStore._keep_digest``), as the client
    decodes documents (``recorded_at`` tz-aware or not, as its codec says)."""
    commits: list[dict[str, Any]] = json.loads(zlib.decompress(digest["commits"]))
    for doc in commits:
        recorded_at = datetime.fromisoformat(doc["recorded_at"])
        doc["recorded_at"] = recorded_at if codec.tz_aware else recorded_at.replace(tzinfo=None)
    return commits


async def retry_on_conflict(attempt: Callable[[], Any], tries: int = 10) -> Any:
    """Run ``attempt`` (load → decide → append) again on fresh state after a conflict.

    The pause is random (full jitter, growing to 0.3 s) so that writers who collided do not
    collide again in lockstep: one hot stream (routing's roster) has several writers at once.
    """
    for n in range(tries):
        try:
            return await attempt()
        except ConcurrencyConflict:
            if n == tries - 1:
                meters.conflicts.add(1, {"outcome": "gave_up"})
                raise
            meters.conflicts.add(1, {"outcome": "retried"})
            await asyncio.sleep(random.uniform(0, min(0.3, 0.005 * 2**n)))
