"""The carrier service's read model: the complaints whose packages are still on their way (for re-checks).

One small document per complaint, kept only while it has a package in transit or an order still
to look up, so that the periodic re-check's scan of the collection stays short. Every change is
a set operation, so applying an entry again after a crash changes nothing.
"""

from __future__ import annotations

from contracts.carrier import (
    CarrierQueryFailed,
    FailureCode,
    ShipmentStatus,
    ShipmentStatusReported,
    ShipmentsWatched,
    WatchEnded,
)
from contracts.envelope import Envelope, Event
from services.kernel.projections import DocumentProjection
from services.kernel.staff import StaffDirectory

FINAL = {ShipmentStatus.DELIVERED, ShipmentStatus.RETURNED_TO_SENDER, ShipmentStatus.LOST}
#: Failures that asking again cannot cure: no re-check for those packages.
HOPELESS = {FailureCode.UNKNOWN_CARRIER, FailureCode.MALFORMED_TRACKING_NUMBER}


class OpenWatches(DocumentProjection):
    """``_id`` complaint id; ``in_transit`` its unfinished tracking numbers; ``order_pending`` whether
    its order could not be looked up yet."""

    name = "open_watches"
    events = (ShipmentsWatched, ShipmentStatusReported, CarrierQueryFailed, WatchEnded)

    async def apply(self, envelope: Envelope, event: Event) -> None:
        match event:
            case ShipmentsWatched():
                await self.views.replace_one(
                    {"_id": event.complaint_id},
                    {
                        "_id": event.complaint_id,
                        "order_pending": False,
                        "in_transit": [p.tracking_number for p in event.packages],
                    },
                    upsert=True,
                )
            case ShipmentStatusReported() if event.status in FINAL:
                await self._finish(event.complaint_id, event.tracking_number)
            case CarrierQueryFailed() if event.code in HOPELESS:
                await self._finish(event.complaint_id, event.tracking_number)
            case CarrierQueryFailed() if event.tracking_number is None:
                await self.views.update_one(
                    {"_id": event.complaint_id},
                    {"$set": {"order_pending": True}, "$setOnInsert": {"in_transit": []}},
                    upsert=True,
                )
            case WatchEnded():
                await self.views.delete_one({"_id": event.complaint_id})

    async def _finish(self, complaint_id: str, tracking_number: str) -> None:
        view = await self.get(complaint_id)
        if view is None:
            return
        left = [n for n in view["in_transit"] if n != tracking_number]
        if left or view.get("order_pending"):
            await self.views.update_one({"_id": complaint_id}, {"$set": {"in_transit": left}})
        else:
            await self.views.delete_one({"_id": complaint_id})

    async def all(self) -> list[str]:
        """Every complaint to re-check (a scan: the collection holds only open ones)."""
        return [doc["_id"] for doc in await self.scan({}, {"_id": 1})]


PROJECTIONS = [OpenWatches, StaffDirectory]
