"""The periodic re-check: the in-transit packages of open complaints are asked about again.

``tick(now)`` does one round and is what tests call, with the time they choose; ``round`` is what
kernel/periodic.py runs every interval, under a lease that keeps a second replica from asking the
carriers at all. A round's causes are derived from the complaint and the round's slot of time, so
two replicas ticking in the same slot (a lease that changed hands mid-round) append once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from contracts.carrier import CheckTrigger
from services.carrier.application import Shipments
from services.carrier.projections import OpenWatches
from services.kernel.eventstore import Cause, derived_id

log = logging.getLogger(__name__)


class Rechecks:
    def __init__(
        self,
        shipments: Shipments,
        watches: OpenWatches,
        interval_s: float,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.shipments, self.watches, self.interval_s, self.clock = shipments, watches, interval_s, clock

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

    async def round(self) -> None:
        await self.tick(self.clock())
