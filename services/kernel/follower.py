"""The log follower: the one task, under a lease, that carries new log entries outward.

Appends and inbox records list themselves in the small ``pending`` collection. Each round the
follower takes the first pending entries as stored, in position order (ADR 0041), publishes the
commits' public events (the outbox relay), applies every entry to the projections, and deletes
the entry. One task under one lease means that no two writers race on one document (FerretDB
applies updates as unguarded read-modify-write). Woken right after each append or inbox record,
and polling as well (recovery after a crash or a lost lease).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import KafkaException
from pymongo import DeleteOne
from pymongo.errors import PyMongoError

from contracts.envelope import Envelope
from services.kernel import meters
from services.kernel.clock import as_utc
from services.kernel.eventstore import Commit, EventStore
from services.kernel.lease import Lease
from services.kernel.outbox import OutboxRelay
from services.kernel.projections import Projector

log = logging.getLogger(__name__)

#: A pending entry whose commit or inbox record is still missing after this long was left by a
#: writer that crashed or lost a race; younger ones may simply not be written yet.
ORPHAN_AFTER = timedelta(seconds=60)


class LogFollower:
    def __init__(
        self,
        store: EventStore,
        relay: OutboxRelay,
        projector: Projector,
        lease: Lease,
        poll_interval_s: float = 0.5,
        batch_size: int = 500,
    ) -> None:
        self.store, self.relay, self.projector, self.lease = store, relay, projector, lease
        self.poll_interval_s, self.batch_size = poll_interval_s, batch_size
        self._wake = asyncio.Event()
        self._stopping = False
        #: How long the oldest entry the last busy round carried out had waited (0 once none
        #: waits): what an append now waits before it is published (kernel/lag.py).
        self.waited_s = 0.0
        store.on_append(self._wake.set)

    async def _resolve(self, entry: dict[str, Any]) -> list[Envelope] | Commit | None:
        """The commit or the consumed envelope a pending entry stands for; None if not there."""
        if (written := self.store.written.get(entry["_id"])) is not None:
            return written  # written by this process: known to be stored, no need to read it
        if entry["kind"] == "commit":
            doc = await self.store.commits.find_one({"_id": entry["ref"]})
            return Commit.from_doc(doc) if doc and doc["commit_id"] == entry["_id"] else None
        doc = await self.store.db["inbox"].find_one({"_id": entry["ref"]})
        return [Envelope.model_validate(doc["envelope"])] if doc else None

    async def follow_once(self) -> int:
        """Carry out one batch of pending entries if this replica holds the lease (taking it if it
        is free); returns how many were completed."""
        if not await self._lease():
            return 0
        # The first entries as stored (insertion order), sorted here: FerretDB pushes a bare
        # limit down to SQLite and reads only those rows, whereas a sort by position read and
        # sorted the whole collection on every round — 2.0 s a round at 21,000 entries behind,
        # so a backlog slowed the very rounds that would clear it (intake in the 10,000-calls
        # run). Insertion order keeps each stream's entries in version order (an append lists its
        # entry only after the previous commit is stored); MongoDB's natural order of an ordinary
        # collection is its insertion order too.
        entries = await self.store.pending.find({}).limit(self.batch_size).to_list()
        entries.sort(key=lambda entry: entry["position"])
        meters.record_backlog(len(entries))
        if not entries:
            self.waited_s = 0.0
        now, resolved = datetime.now(UTC), []
        for entry in entries:
            if entry["_id"] in self.store.in_flight:
                continue  # this process is still writing it: the write's end wakes the next round
            target = await self._resolve(entry)
            if target is None:
                if now - entry["created_at"] > ORPHAN_AFTER:
                    await self.store.pending.delete_one({"_id": entry["_id"]})
                continue
            resolved.append((entry, target))
        to_publish = [t for e, t in resolved if isinstance(t, Commit) and not e["published"]]
        published = set()
        if to_publish:
            with meters.timed(meters.publish_duration, {}):
                published = await self.relay.publish(to_publish)
        done = []
        for entry, target in resolved:
            if isinstance(target, Commit) and not entry["published"] and target.id not in published:
                continue  # not acknowledged: stays pending, published again next round
            await self.projector.apply(target.events if isinstance(target, Commit) else target)
            done.append(entry["_id"])
        if not self.lease.held():
            # The lease lapsed during the round (its keeper could not renew it): another replica
            # may follow by now. Write nothing; the entries stay pending for the holder.
            self.projector.forget()
            return 0
        await self.projector.flush()  # the read models' writes first: then the entries may go
        if done:
            # One command of deletes by _id (each one looked up by its key), not ``_id: {$in: …}``,
            # which FerretDB answers by reading the whole collection.
            await self.store.pending.bulk_write([DeleteOne({"_id": entry_id}) for entry_id in done], ordered=False)
            for entry_id in done:
                self.store.written.pop(entry_id, None)
            carried = set(done)
            oldest = min(as_utc(entry["created_at"]) for entry, _ in resolved if entry["_id"] in carried)
            self.waited_s = max(0.0, (datetime.now(UTC) - oldest).total_seconds())
        return len(done)

    async def _lease(self) -> bool:
        """Take or keep the lease; on taking it anew, drop what the projections held, since
        another replica may have written them meanwhile."""
        generation = self.lease.generation
        if not await self.lease.acquire():
            return False
        if self.lease.generation != generation:
            self.projector.forget()
        return True

    async def run(self) -> None:
        """Follow the log until ``halt``; the projections must be set up (``Runtime.start`` does it
        before the service takes traffic, so their collections are never created under load)."""
        keeper = asyncio.create_task(self.lease.keep(), name="log-follower-lease")
        try:
            while not self._stopping:
                self._wake.clear()  # before the round: an append during it wakes the next one
                try:
                    while not self._stopping and await self.follow_once() >= self.batch_size:
                        pass  # a long backlog: batch after batch, as long as the lease is ours
                except (PyMongoError, KafkaException) as exc:
                    log.warning("log follower round failed; retrying", extra={"fields": {"error": str(exc)}})
                try:
                    await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
                except TimeoutError:
                    pass
        finally:
            keeper.cancel()

    def halt(self) -> None:
        """Let ``run()`` return after its current round."""
        self._stopping = True
        self._wake.set()

    async def drain(self) -> None:
        """At shutdown: carry out what is pending, then free the lease for another replica."""
        try:
            while await self.follow_once():
                pass
            await self.lease.release()
        except (PyMongoError, KafkaException) as exc:
            log.warning(
                "pending entries left at stop; the next follower carries them out",
                extra={"fields": {"error": str(exc)}},
            )
