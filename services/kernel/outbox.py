"""The outbox relay and the lease: publishing committed events to the service's topic, at least once.

Driven by the log follower (``follower.py``), which holds the lease. A commit leaves the pending
list only after the broker acknowledged every one of its events; a crash in between publishes
it again, and consumers drop the repeat by event id.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta

from confluent_kafka import KafkaException
from faststream.confluent import KafkaBroker
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from contracts.envelope import to_kafka
from services.kernel.eventstore import Commit
from services.kernel.kafka import publish

log = logging.getLogger(__name__)


class Lease:
    """A named lease in the store: held by one owner until it expires or is released.

    Built only from operations that are atomic on FerretDB too (an insert against the unique
    ``_id``; an update or delete whose filter names the owner or the expiry), because FerretDB
    applies ``findAndModify`` as an unguarded read-modify-write.
    """

    def __init__(self, db: AsyncDatabase, name: str, ttl_s: float) -> None:
        self._leases, self.name, self.ttl = db["leases"], name, timedelta(seconds=ttl_s)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: Counts the times this owner took the lease anew (not renewals): whoever caches what
        #: only the holder writes must drop that cache when the generation changes.
        self.generation = 0
        self._expires: datetime | None = None  # of the lease we hold, as last written

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another owner holds an unexpired one.

        A lease held with more than half its time left is not renewed: one store round trip per
        half lease, not one per call (the follower calls this every round).
        """
        now = datetime.now(UTC)
        if self._expires is not None and self._expires - now > self.ttl / 2:
            return True
        renewed = await self._leases.update_one({"_id": self.name, "owner": self.owner},
                                                {"$set": {"expires": now + self.ttl}})
        if renewed.matched_count:
            self._expires = now + self.ttl
            return True
        self._expires = None
        await self._leases.delete_one({"_id": self.name, "expires": {"$lt": now}})
        try:
            await self._leases.insert_one({"_id": self.name, "owner": self.owner,
                                           "expires": now + self.ttl})
        except DuplicateKeyError:
            return False
        self._expires, self.generation = now + self.ttl, self.generation + 1
        return True

    async def release(self) -> None:
        self._expires = None
        await self._leases.delete_one({"_id": self.name, "owner": self.owner})


class OutboxRelay:
    """Publishes the public events of commits to the service's topic, in the order given."""

    def __init__(self, broker: KafkaBroker, topic: str, public: Callable[[str], bool]) -> None:
        self.broker, self.topic, self.public = broker, topic, public

    async def publish(self, commits: list[Commit]) -> set[str]:
        """Publish the public events of ``commits``; the ids of those fully acknowledged.

        Every event is queued first (``no_confirm``), in order, and the acknowledgements are
        awaited together: one round trip to the broker per round, not one per event.
        """
        pending = []
        try:
            for commit in commits:
                events = [e for e in commit.events if self.public(e.type)]
                pending.append((commit.id, [await publish(self.broker, self.topic, *to_kafka(e), no_confirm=True)
                                            for e in events]))
        except KafkaException as exc:  # refused before queuing (e.g. too large): later ones wait
            log.warning("the producer refused an event; its commit and the later ones stay pending",
                        extra={"fields": {"commit_id": commit.id, "error": str(exc)}})
        done: set[str] = set()
        for commit_id, futures in pending:
            results = await asyncio.gather(*futures, return_exceptions=True)
            failed = [r for r in results if isinstance(r, Exception)]
            if failed:
                log.warning("delivery failed; the commit stays pending",
                            extra={"fields": {"commit_id": commit_id, "error": str(failed[0])}})
                continue
            done.add(commit_id)
        return done
