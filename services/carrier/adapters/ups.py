"""UPS Tracking API (``GET /api/track/v1/details/{inquiryNumber}``, OAuth client credentials) behind ``CarrierAdapter``.

UPS names a package's state by a status type (``currentStatus.type``: M label, P/I in transit,
O out for delivery, D delivered, X exception, RS returned to shipper), its dates as local
``YYYYMMDD``/``HHMMSS`` strings (the scan's ``gmtOffset`` places them), a rescheduled delivery
date as ``deliveryDate`` of type RDD, and the handover in ``deliveryInformation``.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from contracts.carrier import Carrier, Delivery, Handover, ShipmentStatus
from services.carrier.adapters.http import CarrierHttp, ClientCredentials, NotFound, Refused, Unreadable, offset
from services.carrier.domain import TrackingReport, handover_in, reason_in

TYPES: dict[str, ShipmentStatus] = {
    "M": ShipmentStatus.LABEL_CREATED,
    "P": ShipmentStatus.IN_TRANSIT,
    "I": ShipmentStatus.IN_TRANSIT,
    "W": ShipmentStatus.IN_TRANSIT,
    "DO": ShipmentStatus.IN_TRANSIT,
    "DD": ShipmentStatus.IN_TRANSIT,
    "O": ShipmentStatus.OUT_FOR_DELIVERY,
    "D": ShipmentStatus.DELIVERED,
    "X": ShipmentStatus.EXCEPTION,
    "MV": ShipmentStatus.EXCEPTION,
    "RS": ShipmentStatus.RETURNED_TO_SENDER,
    "NA": ShipmentStatus.UNKNOWN,
}


def parse(data: Any) -> TrackingReport:
    """A Tracking API answer (one inquiry number) in the normalized model."""
    try:
        if errors := (data.get("response") or {}).get("errors"):
            message = "; ".join(f"{e.get('code')} {e.get('message')}" for e in errors)
            if any(str(e.get("code", "")).startswith("TW") for e in errors):  # TW0001: not found
                raise NotFound(message)
            raise Unreadable(f"UPS error: {message}")
        shipment = data["trackResponse"]["shipment"][0]
        packages = shipment.get("package") or []
        if not packages:
            warnings = "; ".join(w.get("message", "") for w in shipment.get("warnings") or [])
            raise NotFound(warnings or "UPS has no package for this number")
        return _report(packages[0])
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise Unreadable(f"not a UPS Tracking API answer (missing {exc})") from None


def _report(package: dict) -> TrackingReport:
    activity = package.get("activity") or []
    last = activity[0] if activity else {}
    current = package.get("currentStatus") or last.get("status") or {}
    words = current.get("description") or current.get("simplifiedTextDescription") or "no status"
    tz = offset(last.get("gmtOffset"))
    dates = {d.get("type"): d.get("date") for d in package.get("deliveryDate") or []}
    window = package.get("deliveryTime") or {}
    status = _status(current.get("type", ""), words, "RDD" in dates)
    delivered = status is ShipmentStatus.DELIVERED
    estimate_day = dates.get("RDD") or dates.get("SDD")
    place = (last.get("location") or {}).get("address") or {}
    return TrackingReport(
        status=status,
        carrier_status=words[:500],
        reason=reason_in(words) if status in (ShipmentStatus.DELAYED, ShipmentStatus.EXCEPTION) else None,
        estimated_delivery_from=_local(estimate_day, window.get("startTime"), tz) if not delivered else None,
        estimated_delivery_by=_local(estimate_day, window.get("endTime") or "235959", tz) if not delivered else None,
        delivered_at=_local(last.get("date"), last.get("time"), tz) if delivered else None,
        delivery=_delivery(package.get("deliveryInformation") or {}) if delivered else None,
        last_event_at=_local(last.get("date"), last.get("time"), tz),
        last_location=", ".join(filter(None, [place.get("city"), place.get("countryCode") or place.get("country")]))
        or None,
    )


def _status(kind: str, words: str, rescheduled: bool) -> ShipmentStatus:
    status, text = TYPES.get(kind, ShipmentStatus.UNKNOWN), words.lower()
    if status is ShipmentStatus.IN_TRANSIT and "out for delivery" in text:
        return ShipmentStatus.OUT_FOR_DELIVERY
    if status is ShipmentStatus.EXCEPTION:
        if "lost" in text or "unable to locate" in text:
            return ShipmentStatus.LOST
        if "return" in text and ("sender" in text or "shipper" in text):
            return ShipmentStatus.RETURNED_TO_SENDER
        if rescheduled or "delay" in text:
            return ShipmentStatus.DELAYED
    return status


def _local(day: str | None, clock: str | None, tz: timezone) -> datetime | None:
    """UPS's ``YYYYMMDD`` and ``HHMMSS`` in the scan's offset."""
    if not day:
        return None
    try:
        return datetime.strptime(day + (clock or "000000")[:6].ljust(6, "0"), "%Y%m%d%H%M%S").replace(tzinfo=tz)
    except ValueError:
        raise Unreadable(f"UPS date or time not as documented: {day!r} {clock!r}") from None


def _delivery(info: dict) -> Delivery:
    where, who = info.get("location"), info.get("receivedBy")
    handover = handover_in(where) or (Handover.RECIPIENT if who else Handover.OTHER)
    return Delivery(
        handover=handover,
        received_by=who or None,
        location=where or None,
        signed=bool((info.get("signature") or {}).get("image")),
    )


class UpsTracking:
    """UPS's Tracking API over HTTP."""

    carrier = Carrier.UPS

    def __init__(
        self, base_url: str, client_id: str, client_secret: str, timeout_s: float, max_body_bytes: int
    ) -> None:
        self.http = CarrierHttp(Carrier.UPS, base_url, timeout_s, max_body_bytes)
        self.token = ClientCredentials(self.http, "/security/v1/oauth/token", client_id, client_secret, "basic")

    async def track(self, tracking_number: str) -> TrackingReport:
        path = f"/api/track/v1/details/{quote(tracking_number, safe='')}"
        for _ in range(2):  # a second time only after a stale token was dropped
            answer = await self.http.send(
                "GET",
                path,
                params={"locale": "en_US", "returnSignature": "false"},
                headers={
                    **await self.token.header(),
                    "transId": uuid.uuid4().hex,
                    "transactionSrc": "complaints-carrier",
                },
            )
            if answer.status != 401:
                break
            self.token.forget()
        if answer.status not in (200, 404):
            raise Refused(f"UPS refused the request (HTTP {answer.status})")
        return parse(answer.json())

    async def aclose(self) -> None:
        await self.http.aclose()
