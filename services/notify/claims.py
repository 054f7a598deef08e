"""Claims on outside effects (a call, an SMS): whoever inserts the effect's id first performs it.

An insert against the unique ``_id`` is atomic on FerretDB as on MongoDB, unlike an update, so
two paths (the consumer's handler and the ticker, two replicas, two couriers) can never both win
the same claim. A claim is written before the provider is called and never removed once the
effect may have happened; a claim left by a holder that died is taken over after ``expiry``,
and the new holder asks the provider again with the same idempotency key, so the provider
answers with the first result instead of acting twice (docs/adr/0015).
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta

from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.kernel.clock import as_utc
from services.kernel.eventstore import derived_id


class Won(enum.Enum):
    """How a path won an effect's claim (both are true: ``if await claims.claim(...)``)."""

    #: Nobody claimed it before: nobody performed it, or recorded its outcome.
    NEW = "new"
    #: Its holder stopped (or is slow) before recording the outcome: it may have happened.
    TAKEN_OVER = "taken over"


class Claims:
    def __init__(self, db: AsyncDatabase, expiry: timedelta) -> None:
        self.claims, self.expiry = db["claims"], expiry

    async def claim(self, effect: str) -> Won | None:
        """Won when this path may perform ``effect`` now: its claim is new, or its holder stopped
        before recording the outcome (the claim expired). None while another path holds it."""
        now = datetime.now(UTC)  # the wall clock: expiry is about a holder being alive, not business time
        try:
            await self.claims.insert_one({"_id": effect, "at": now})
            return Won.NEW
        except DuplicateKeyError:
            held = await self.claims.find_one({"_id": effect})
        if held is None or as_utc(held["at"]) + self.expiry > now:
            return None
        # Taking over is not atomic on FerretDB; two takers at once are still one effect, because
        # both send the same idempotency key.
        await self.claims.update_one({"_id": effect, "at": held["at"]}, {"$set": {"at": now}})
        return Won.TAKEN_OVER

    async def release(self, effect: str) -> None:
        """The provider refused: nothing happened, the next attempt may claim it again at once."""
        await self.claims.delete_one({"_id": effect})


def idempotency_key(effect: str) -> str:
    """The key the provider sees for ``effect``: the same effect always sends the same key."""
    return derived_id("idempotency", effect)
