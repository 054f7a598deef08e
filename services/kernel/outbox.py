"""The outbox relay: publishes unpublished commits to the service's topic, in order, at least once.

Woken right after each append (low latency) and polling as well (recovery after a crash). A
commit is marked published only after the broker acknowledged every one of its events; a crash in
between publishes it again, and consumers drop the repeat by event id. With several replicas, a
lease document lets exactly one relay at a time.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from contracts.envelope import to_kafka
from services.kernel.eventstore import Commit, EventStore
from services.kernel.kafka import AsyncProducer, DeliveryFailed

log = logging.getLogger(__name__)


class Lease:
    """A named lease in the store: held by one owner until it expires or is released."""

    def __init__(self, db: AsyncDatabase, name: str, ttl_s: float) -> None:
        self._leases, self.name, self.ttl = db["leases"], name, timedelta(seconds=ttl_s)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another owner holds an unexpired one."""
        now = datetime.now(UTC)
        try:
            await self._leases.find_one_and_update(
                {"_id": self.name, "$or": [{"owner": self.owner}, {"expires": {"$lt": now}}]},
                {"$set": {"owner": self.owner, "expires": now + self.ttl}}, upsert=True)
            return True
        except DuplicateKeyError:  # the filter missed an existing lease: someone else holds it
            return False

    async def release(self) -> None:
        await self._leases.delete_one({"_id": self.name, "owner": self.owner})


class OutboxRelay:
    """Moves committed events from the store to Kafka; one ``run()`` task per service."""

    def __init__(self, store: EventStore, producer: AsyncProducer, topic: str, lease: Lease,
                 poll_interval_s: float = 0.5, batch_size: int = 500) -> None:
        self.store, self.producer, self.topic, self.lease = store, producer, topic, lease
        self.poll_interval_s, self.batch_size = poll_interval_s, batch_size
        self._wake = asyncio.Event()
        self._stopping = False
        store.on_append(self.wake)

    def wake(self) -> None:
        self._wake.set()

    async def publish(self, commits: list[Commit]) -> list[str]:
        """Publish the public events of ``commits``; the ids of those fully acknowledged."""
        pending: list[tuple[str, list[asyncio.Future]]] = []
        public = self.store.registry.types()
        for commit in commits:
            futures = [self.producer.send(self.topic, *to_kafka(e)) for e in commit.events
                       if e.type in public and public[e.type].public]
            pending.append((commit.id, futures))
        done: list[str] = []
        for commit_id, futures in pending:
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = [r for r in results if isinstance(r, Exception)]
            if failed:
                log.warning("delivery failed; commit stays unpublished",
                            extra={"fields": {"commit_id": commit_id, "error": str(failed[0])}})
                continue
            done.append(commit_id)
        return done

    async def relay_once(self) -> int:
        """One round: publish a batch of unpublished commits and mark them. Returns how many."""
        commits = await self.store.unpublished(self.batch_size)
        if not commits:
            return 0
        done = await self.publish(commits)
        await self.store.mark_published(done)
        return len(done)

    async def run(self) -> None:
        while not self._stopping:
            self._wake.clear()  # before the round: an append during it wakes the next one
            try:
                if await self.lease.acquire():
                    while not self._stopping and await self.relay_once() >= self.batch_size:
                        await self.lease.acquire()
            except (PyMongoError, DeliveryFailed) as exc:
                log.warning("outbox relay round failed; retrying", extra={"fields": {"error": str(exc)}})
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_interval_s)
            except TimeoutError:
                pass

    def halt(self) -> None:
        """Let ``run()`` return after its current round."""
        self._stopping = True
        self._wake.set()

    async def drain(self) -> None:
        """After ``run()`` returned: publish what is committed, then free the lease for another replica."""
        try:
            if await self.lease.acquire():
                while await self.relay_once():
                    pass
            await self.lease.release()
        except (PyMongoError, DeliveryFailed) as exc:
            log.warning("outbox not drained at stop; the next relay publishes it",
                        extra={"fields": {"error": str(exc)}})
