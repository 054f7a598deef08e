"""A named lease in the store: the one holder of a role among a service's replicas (the log follower,
the courier, each periodic task), taken over when its holder stops renewing it."""

from __future__ import annotations

import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

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
        #: While another owner holds the lease: no new attempt before this (the follower asks at
        #: every append it is woken by: three commands each for nothing, measured at 2-5 per
        #: complaint on a second instance). A tenth of the lifetime: a lease released at a holder's
        #: stop is taken within that, one left by a crash within that of its expiry.
        self._next_attempt: datetime | None = None

    async def acquire(self) -> bool:
        """Take or renew the lease; False while another owner holds an unexpired one.

        A lease held with more than half its time left is not renewed: one store round trip per
        half lease, not one per call (the follower calls this every round).
        """
        now = datetime.now(UTC)
        if self._expires is not None and self._expires - now > self.ttl / 2:
            return True
        if self._next_attempt is not None and now < self._next_attempt:
            return False
        renewed = await self._leases.update_one(
            {"_id": self.name, "owner": self.owner}, {"$set": {"expires": now + self.ttl}}
        )
        if renewed.matched_count:
            self._expires = now + self.ttl
            return True
        self._expires = None
        await self._leases.delete_one({"_id": self.name, "expires": {"$lt": now}})
        try:
            await self._leases.insert_one({"_id": self.name, "owner": self.owner, "expires": now + self.ttl})
        except DuplicateKeyError:
            self._next_attempt = now + self.ttl / 10
            return False
        self._expires, self._next_attempt, self.generation = now + self.ttl, None, self.generation + 1
        return True

    async def release(self) -> None:
        self._expires = None
        await self._leases.delete_one({"_id": self.name, "owner": self.owner})
