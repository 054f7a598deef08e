"""FedEx Track API (``POST /track/v1/trackingnumbers``, OAuth client credentials) behind ``CarrierAdapter``.

FedEx names a package's state by a status code (``latestStatusDetail.code``/``derivedCode``),
a delay by ``delayDetail``, the estimate by ``estimatedDeliveryTimeWindow`` or ``dateAndTimes``,
and whether it can still be intercepted by ``deliveryOptionEligibilityDetails``.
"""

from __future__ import annotations

from typing import Any

from contracts.carrier import Carrier, Delivery, Handover, ShipmentStatus
from services.carrier.adapters.http import CarrierHttp, ClientCredentials, NotFound, Refused, Unreadable, parse_time
from services.carrier.domain import TrackingReport, handover_in, reason_in

CODES: dict[str, ShipmentStatus] = {
    "OC": ShipmentStatus.LABEL_CREATED,
    "IN": ShipmentStatus.LABEL_CREATED,
    "OD": ShipmentStatus.OUT_FOR_DELIVERY,
    "DL": ShipmentStatus.DELIVERED,
    "DE": ShipmentStatus.EXCEPTION,
    "SE": ShipmentStatus.EXCEPTION,
    "CD": ShipmentStatus.EXCEPTION,
    "CA": ShipmentStatus.EXCEPTION,
    "DY": ShipmentStatus.DELAYED,
    "DD": ShipmentStatus.DELAYED,
    "RS": ShipmentStatus.RETURNED_TO_SENDER,
    "RP": ShipmentStatus.RETURNED_TO_SENDER,
}
#: FedEx has dozens of scan codes for a package on its way (AR, DP, IT, PU, AF …): all in transit.
DEFAULT = ShipmentStatus.IN_TRANSIT
#: Delivery options that stop a package before it reaches the door.
INTERCEPTS = {"RETURN_TO_SHIPPER", "REDIRECT_TO_HOLD_AT_LOCATION", "REROUTE"}


def parse(data: Any) -> TrackingReport:
    """A Track API answer (one tracking number) in the normalized model."""
    try:
        result = data["output"]["completeTrackResults"][0]["trackResults"][0]
        if error := result.get("error"):
            if "NOTFOUND" in str(error.get("code", "")).upper():
                raise NotFound(error.get("message") or "tracking number not found")
            raise Unreadable(f"FedEx error {error.get('code')}: {error.get('message')}")
        latest = result["latestStatusDetail"]
        return _report(result, latest)
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        raise Unreadable(f"not a FedEx Track API answer (missing {exc})") from None


def _report(result: dict, latest: dict) -> TrackingReport:
    code = latest.get("derivedCode") or latest["code"]
    words = latest.get("description") or latest.get("statusByLocale") or code
    ancillary = " ".join(a.get("reasonDescription", "") for a in latest.get("ancillaryDetails") or [])
    delay = latest.get("delayDetail") or {}
    status = CODES.get(code, DEFAULT)
    if status is ShipmentStatus.IN_TRANSIT and delay.get("status") == "DELAYED":
        status = ShipmentStatus.DELAYED
    if "lost" in f"{words} {ancillary}".lower() or "unable to locate" in f"{words} {ancillary}".lower():
        status = ShipmentStatus.LOST
    times = {d.get("type"): d.get("dateTime") for d in result.get("dateAndTimes") or []}
    window = (result.get("estimatedDeliveryTimeWindow") or {}).get("window") or {}
    details = result.get("deliveryDetails") or {}
    scans = result.get("scanEvents") or []
    last = scans[0] if scans else {}
    place = last.get("scanLocation") or {}
    delivered = status is ShipmentStatus.DELIVERED
    return TrackingReport(
        status=status,
        carrier_status=" — ".join(filter(None, [words, ancillary]))[:500],
        reason=reason_in(delay.get("type"), ancillary, words)
        if status in (ShipmentStatus.DELAYED, ShipmentStatus.EXCEPTION)
        else None,
        estimated_delivery_from=parse_time(window.get("begins")),
        estimated_delivery_by=parse_time(window.get("ends") or times.get("ESTIMATED_DELIVERY")),
        delivered_at=parse_time(times.get("ACTUAL_DELIVERY")) if delivered else None,
        delivery=_delivery(details) if delivered else None,
        last_event_at=parse_time(last.get("date")),
        last_location=", ".join(filter(None, [place.get("city"), place.get("countryCode")])) or None,
        can_intercept=_interceptable(details),
    )


def _delivery(details: dict) -> Delivery:
    where, who = details.get("locationDescription"), details.get("receivedByName")
    handover = handover_in(where) or (Handover.RECIPIENT if who else Handover.OTHER)
    return Delivery(
        handover=handover,
        received_by=who,
        location=where,
        signed=bool(details.get("signatureProofOfDeliveryAvailable")),
    )


def _interceptable(details: dict) -> bool | None:
    options = details.get("deliveryOptionEligibilityDetails")
    if not options:
        return None  # FedEx did not say: the general rule decides
    return any(
        o.get("option") in INTERCEPTS and o.get("eligibility") in ("ELIGIBLE", "POSSIBLY_ELIGIBLE") for o in options
    )


class FedExTracking:
    """FedEx's Track API over HTTP."""

    carrier = Carrier.FEDEX

    def __init__(
        self, base_url: str, client_id: str, client_secret: str, timeout_s: float, max_body_bytes: int
    ) -> None:
        self.http = CarrierHttp(Carrier.FEDEX, base_url, timeout_s, max_body_bytes)
        self.token = ClientCredentials(self.http, "/oauth/token", client_id, client_secret, "form")

    async def track(self, tracking_number: str) -> TrackingReport:
        body = {
            "includeDetailedScans": True,
            "trackingInfo": [{"trackingNumberInfo": {"trackingNumber": tracking_number}}],
        }
        for _ in range(2):  # a second time only after a stale token was dropped
            answer = await self.http.send(
                "POST",
                "/track/v1/trackingnumbers",
                json=body,
                headers={**await self.token.header(), "X-locale": "en_US"},
            )
            if answer.status != 401:
                break
            self.token.forget()
        if answer.status == 404:
            raise NotFound("FedEx does not know this tracking number")
        if answer.status != 200:
            raise Refused(f"FedEx refused the request (HTTP {answer.status})")
        return parse(answer.json())

    async def aclose(self) -> None:
        await self.http.aclose()
