"""A named lease in the store: the one holder of a role among a service's replicas (the log follower,
the courier, each periodic task), taken over when its holder stops renewing it."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from services.kernel.clock import as_utc

log = logging.getLogger(__name__)

#: Every lease of a service's database (created at start by ``Runtime.start``).
COLLECTION = "leases"


class Lease:
    """A named lease in the store: held by one owner until it expires or is released.

    Built only from operations that are atomic on FerretDB too (an insert against the unique
    ``_id``; an update or delete whose filter names the owner or the expiry), because FerretDB
    applies ``findAndModify`` as an unguarded read-modify-write.
    """

    def __init__(self, db: AsyncDatabase[dict[str, Any]], name: str, ttl_s: float) -> None:
        self._leases, self.name, self.ttl = db[COLLECTION], name, timedelta(seconds=ttl_s)
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        #: Counts the times this owner took the lease anew (not renewals): whoever caches what
        #: only the holder writes must drop that cache when the generation changes.
        self.generation = 0
        self._expires: datetime | None = None  # of the lease we hold, as last written
        #: While another owner holds the lease: no new look before this (the follower asks at
        #: every append it is woken by). The holder's expiry, or a sixth of the lifetime if that
        #: is sooner: a lease left by a crash is taken as it expires, one released at a holder's
        #: stop within a sixth of the lifetime, one look a time.
        self._next_attempt: datetime | None = None

    def held(self) -> bool:
        """Whether this owner holds the lease, as far as it knows: its expiry, counted from
        before the write that set it, is still ahead (the store's copy ends no sooner)."""
        return self._expires is not None and self._expires > datetime.now(UTC)

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another owner holds an unexpired one.

        A lease held with more than half its time left is not renewed: one store round trip per
        half lease, not one per call (the follower calls this every round).
        """
        now = datetime.now(UTC)
        if self._expires is not None and self._expires - now > self.ttl / 2:
            return True
        if self._expires is not None:
            if await self.renew():
                return True
        elif self._next_attempt is not None and now < self._next_attempt:
            return False
        else:
            holder = await self._leases.find_one({"_id": self.name})
            if holder is not None and (expires := as_utc(holder["expires"])) > now:
                self._next_attempt = min(expires, now + self.ttl / 6)
                return False
        await self._leases.delete_one({"_id": self.name, "expires": {"$lt": now}})
        try:
            await self._leases.insert_one({"_id": self.name, "owner": self.owner, "expires": now + self.ttl})
        except DuplicateKeyError:
            self._next_attempt = now + self.ttl / 6
            return False
        self._expires, self._next_attempt, self.generation = now + self.ttl, None, self.generation + 1
        return True

    async def renew(self) -> bool:
        """Push the expiry of the lease this owner holds a lifetime ahead; False if it is lost
        (another owner took it after it expired)."""
        now = datetime.now(UTC)
        renewed = await self._leases.update_one(
            {"_id": self.name, "owner": self.owner}, {"$set": {"expires": now + self.ttl}}
        )
        self._expires = now + self.ttl if renewed.matched_count else None
        return self._expires is not None

    async def keep(self) -> None:
        """Renew the lease every third of its lifetime while it is held: a task beside the
        holder's work (cancel it to end), so that a round longer than the lease (a follower's
        round of 500 entries took 5.7 s in a burst) does not let it lapse. A renewal that fails
        is left to the next; if none succeeds, the lease expires, as a crashed holder's does."""
        while True:
            await asyncio.sleep(self.ttl.total_seconds() / 3)
            if self._expires is not None:
                try:
                    await self.renew()
                except PyMongoError as exc:
                    log.debug("lease %s not renewed: %s", self.name, exc)

    async def release(self) -> None:
        self._expires = None
        await self._leases.delete_one({"_id": self.name, "owner": self.owner})
