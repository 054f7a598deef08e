"""The periodic re-check: the in-transit packages of open complaints are asked about again.

``tick(now)`` does one round and is what tests call, with the time they choose; ``run`` calls it
every interval. A round's causes are derived from the complaint and the round's slot of time, so
two replicas ticking in the same slot append once; a lease keeps the second from asking the
carriers at all.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from contracts.carrier import CheckTrigger
from services.carrier.application import Shipments
from services.carrier.projections import OpenWatches
from services.kernel.eventstore import Cause, derived_id
from services.kernel.outbox import Lease

log = logging.getLogger(__name__)


class Rechecks:
    def __init__(self, shipments: Shipments, watches: OpenWatches, lease: Lease, interval_s: float,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.shipments, self.watches, self.lease, self.interval_s = shipments, watches, lease, interval_s
        self.clock, self.sleep = clock, sleep

    async def tick(self, now: datetime) -> int:
        """Re-check every open complaint once for the slot ``now`` falls in; returns how many."""
        slot = str(int(now.timestamp() // self.interval_s))
        done = 0
        for complaint_id in await self.watches.all():
            cause = Cause.of_request(derived_id("recheck", complaint_id, slot), "recheck")
            try:
                await self.shipments.recheck(complaint_id, CheckTrigger.RECHECK, cause)
                done += 1
            except Exception:  # one complaint's trouble must not stop the round for the others
                log.exception("re-check failed", extra={"fields": {"complaint_id": complaint_id}})
        return done

    async def run(self) -> None:
        """Tick every ``interval_s`` while holding the lease (one replica re-checks at a time)."""
        while True:
            await self.sleep(self.interval_s)
            try:
                if await self.lease.acquire():
                    await self.tick(self.clock())
            except Exception:
                log.exception("re-check round failed; trying again next interval")
