"""USPS Tracking API v3 (``GET /tracking/v3/tracking/{trackingNumber}``, OAuth) behind ``CarrierAdapter``.

USPS names a package's state by ``statusCategory`` (Pre-Shipment, Accepted, In Transit, Out for
Delivery, Delivered, Alert, Delivery Attempt, Available for Pickup, Return to Sender) with
``status`` in words, the estimate by ``expectedDeliveryTimeStamp`` (and a predicted window), and
the handover in the latest event's ``eventType`` ("Delivered, Left with Neighbor").
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from contracts.carrier import Carrier, Delivery, Handover, ShipmentStatus
from services.carrier.adapters.http import (
    CarrierHttp,
    ClientCredentials,
    NotFound,
    Refused,
    Unreadable,
    offset,
    parse_time,
)
from services.carrier.domain import TrackingReport, handover_in, reason_in

CATEGORIES: dict[str, ShipmentStatus] = {
    "pre-shipment": ShipmentStatus.LABEL_CREATED,
    "accepted": ShipmentStatus.IN_TRANSIT,
    "in transit": ShipmentStatus.IN_TRANSIT,
    "available for pickup": ShipmentStatus.IN_TRANSIT,
    "out for delivery": ShipmentStatus.OUT_FOR_DELIVERY,
    "delivered": ShipmentStatus.DELIVERED,
    "alert": ShipmentStatus.EXCEPTION,
    "delivery attempt": ShipmentStatus.EXCEPTION,
    "return to sender": ShipmentStatus.RETURNED_TO_SENDER,
}


def parse(data: Any) -> TrackingReport:
    """A Tracking v3 answer in the normalized model."""
    try:
        if error := data.get("error"):
            if str(error.get("code")) == "404":
                raise NotFound(error.get("message") or "USPS does not know this tracking number")
            raise Unreadable(f"USPS error {error.get('code')}: {error.get('message')}")
        return _report(data)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise Unreadable(f"not a USPS Tracking v3 answer (missing {exc})") from None


def _report(data: dict) -> TrackingReport:
    events = data.get("trackingEvents") or []
    last = events[0] if events else {}
    words = data.get("status") or data.get("statusSummary") or data["statusCategory"]
    text = f"{words} {data.get('statusSummary') or ''}".lower()
    status = CATEGORIES.get(str(data["statusCategory"]).lower(), ShipmentStatus.UNKNOWN)
    if status is ShipmentStatus.EXCEPTION:
        if "lost" in text or "unable to locate" in text:
            status = ShipmentStatus.LOST
        elif "return to sender" in text or "returned to sender" in text:
            status = ShipmentStatus.RETURNED_TO_SENDER
        elif "delay" in text or "arriving late" in text:
            status = ShipmentStatus.DELAYED
    elif status is ShipmentStatus.IN_TRANSIT and ("delay" in text or "arriving late" in text):
        status = ShipmentStatus.DELAYED
    delivered = status is ShipmentStatus.DELIVERED
    tz = offset(last.get("GMTOffset"))
    return TrackingReport(
        status=status,
        carrier_status=str(words)[:500],
        reason=reason_in(words, data.get("statusSummary"))
        if status in (ShipmentStatus.DELAYED, ShipmentStatus.EXCEPTION)
        else None,
        estimated_delivery_from=parse_time(data.get("predictedDeliveryWindowStartTime"), tz),
        estimated_delivery_by=parse_time(
            data.get("predictedDeliveryWindowEndTime") or data.get("expectedDeliveryTimeStamp"), tz
        ),
        delivered_at=parse_time(last.get("eventTimestamp"), tz) if delivered else None,
        delivery=_delivery(last) if delivered else None,
        last_event_at=parse_time(last.get("eventTimestamp"), tz),
        last_location=", ".join(filter(None, [last.get("eventCity"), last.get("eventState")])) or None,
    )


def _delivery(event: dict) -> Delivery:
    where, who = event.get("eventType"), event.get("name")
    handover = handover_in(where) or (Handover.RECIPIENT if who else Handover.OTHER)
    return Delivery(
        handover=handover,
        received_by=who or None,
        location=where or None,
        signed=handover is Handover.RECIPIENT and bool(who),
    )


class UspsTracking:
    """USPS's Tracking API v3 over HTTP."""

    carrier = Carrier.USPS

    def __init__(
        self, base_url: str, client_id: str, client_secret: str, timeout_s: float, max_body_bytes: int
    ) -> None:
        self.http = CarrierHttp(Carrier.USPS, base_url, timeout_s, max_body_bytes)
        self.token = ClientCredentials(self.http, "/oauth2/v3/token", client_id, client_secret, "json")

    async def track(self, tracking_number: str) -> TrackingReport:
        path = f"/tracking/v3/tracking/{quote(tracking_number, safe='')}"
        for _ in range(2):  # a second time only after a stale token was dropped
            answer = await self.http.send("GET", path, params={"expand": "DETAIL"}, headers=await self.token.header())
            if answer.status != 401:
                break
            self.token.forget()
        if answer.status == 404:
            raise NotFound("USPS does not know this tracking number")
        if answer.status != 200:
            raise Refused(f"USPS refused the request (HTTP {answer.status})")
        return parse(answer.json())

    async def aclose(self) -> None:
        await self.http.aclose()
