"""Australia Post Shipping and Tracking API (``GET /shipping/v1/track``, API key) behind ``CarrierAdapter``.

Tracking results → trackable items → events, newest first. The item's ``status`` names its state
in words ("In transit", "On Board for Delivery", "Delivered", "Possible delay", "Unsuccessful
Delivery", "Article damaged" …); the latest event says where a delivered item was left. An
``expected_delivery`` window (``from``/``to``) is read when the answer carries one; the public
tracking answer often has none, and then no estimate is given.
"""

from __future__ import annotations

from typing import Any

from contracts.carrier import Carrier, Delivery, Handover, ShipmentStatus
from services.carrier.adapters.http import CarrierHttp, NotFound, Refused, Unreadable, parse_time
from services.carrier.domain import TrackingReport, handover_in, reason_in

STATUSES: dict[str, ShipmentStatus] = {
    "created": ShipmentStatus.LABEL_CREATED,
    "initiated": ShipmentStatus.LABEL_CREATED,
    "sealed": ShipmentStatus.LABEL_CREATED,
    "in transit": ShipmentStatus.IN_TRANSIT,
    "awaiting collection": ShipmentStatus.IN_TRANSIT,
    "on board for delivery": ShipmentStatus.OUT_FOR_DELIVERY,
    "delivered": ShipmentStatus.DELIVERED,
    "delivered in full": ShipmentStatus.DELIVERED,
    "possible delay": ShipmentStatus.DELAYED,
    "to be re-delivered": ShipmentStatus.DELAYED,
    "unsuccessful delivery": ShipmentStatus.EXCEPTION,
    "cannot be delivered": ShipmentStatus.EXCEPTION,
    "article damaged": ShipmentStatus.EXCEPTION,
    "held by courier": ShipmentStatus.EXCEPTION,
    "returned to sender": ShipmentStatus.RETURNED_TO_SENDER,
    "lost": ShipmentStatus.LOST,
}


def parse(data: Any) -> TrackingReport:
    """A tracking answer for one tracking id in the normalized model."""
    try:
        result = data["tracking_results"][0]
        if errors := result.get("errors"):
            names = "; ".join(f"{e.get('code')} {e.get('name')}" for e in errors)
            if any(str(e.get("code")) in ("ESB-10001", "ESB-10002") for e in errors):
                raise NotFound(names)
            raise Unreadable(f"Australia Post error: {names}")
        return _report(result["trackable_items"][0])
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise Unreadable(f"not an Australia Post tracking answer (missing {exc})") from None


def _report(item: dict) -> TrackingReport:
    events = item.get("events") or []
    last = events[0] if events else {}
    words = item["status"]
    text = f"{words} {last.get('description', '')}"
    status = STATUSES.get(str(words).lower(), ShipmentStatus.UNKNOWN)
    if status is ShipmentStatus.IN_TRANSIT and "delay" in str(last.get("description", "")).lower():
        status = ShipmentStatus.DELAYED
    delivered = status is ShipmentStatus.DELIVERED
    expected = item.get("expected_delivery") or {}
    return TrackingReport(
        status=status,
        carrier_status=" — ".join(filter(None, [words, last.get("description")]))[:500],
        reason=reason_in(text) if status in (ShipmentStatus.DELAYED, ShipmentStatus.EXCEPTION) else None,
        estimated_delivery_from=parse_time(expected.get("from")),
        estimated_delivery_by=parse_time(expected.get("to")),
        delivered_at=parse_time(last.get("date")) if delivered else None,
        delivery=_delivery(last) if delivered else None,
        last_event_at=parse_time(last.get("date")),
        last_location=last.get("location"),
    )


def _delivery(event: dict) -> Delivery:
    where, who = event.get("description"), event.get("signer_name")
    handover = handover_in(where) or (Handover.RECIPIENT if who else Handover.OTHER)
    return Delivery(handover=handover, received_by=who or None, location=where or None, signed=bool(who))


class AusPostTracking:
    """Australia Post's tracking API over HTTP (HTTP Basic with the API key, and the account number)."""

    carrier = Carrier.AUSPOST

    def __init__(
        self, base_url: str, api_key: str, password: str, account_number: str, timeout_s: float, max_body_bytes: int
    ) -> None:
        self.http = CarrierHttp(Carrier.AUSPOST, base_url, timeout_s, max_body_bytes)
        self.auth, self.account_number = (api_key, password), account_number

    async def track(self, tracking_number: str) -> TrackingReport:
        answer = await self.http.send(
            "GET",
            "/shipping/v1/track",
            params={"tracking_ids": tracking_number},
            auth=self.auth,
            headers={"account-number": self.account_number},
        )
        if answer.status == 404:
            raise NotFound("Australia Post does not know this tracking number")
        if answer.status != 200:
            raise Refused(f"Australia Post refused the request (HTTP {answer.status})")
        return parse(answer.json())

    async def aclose(self) -> None:
        await self.http.aclose()
