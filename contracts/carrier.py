"""The events of the carrier service: public ones on ``complaints.carrier.v1``, private ones in its log.

One normalized status model for every carrier (FedEx, UPS, USPS, Australia Post): a subscriber
never needs to know how a carrier words "delayed by weather".
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.envelope import Event, event


class Carrier(StrEnum):
    """The carriers whose tracking APIs the platform speaks."""

    FEDEX = "fedex"
    UPS = "ups"
    USPS = "usps"
    AUSPOST = "auspost"


class ShipmentStatus(StrEnum):
    """Where a package is, the same words for every carrier.

    ``delayed``: still coming, later than promised (see the new estimate and the reason);
    ``exception``: stuck until someone acts (address problem, damage, customs …);
    ``lost``: the carrier gave up looking; ``unknown``: the carrier's answer could not be read.
    """

    LABEL_CREATED = "label_created"
    IN_TRANSIT = "in_transit"
    OUT_FOR_DELIVERY = "out_for_delivery"
    DELIVERED = "delivered"
    EXCEPTION = "exception"
    DELAYED = "delayed"
    RETURNED_TO_SENDER = "returned_to_sender"
    LOST = "lost"
    UNKNOWN = "unknown"


class ExceptionReason(StrEnum):
    """Why a package is delayed or stuck (``operational``: the carrier's own network, e.g. a missed
    connection)."""

    WEATHER = "weather"
    ADDRESS = "address"
    DAMAGE = "damage"
    CUSTOMS = "customs"
    RECIPIENT_UNAVAILABLE = "recipient_unavailable"
    OPERATIONAL = "operational"
    OTHER = "other"


class Handover(StrEnum):
    """To whom or where a delivered package was handed over."""

    RECIPIENT = "recipient"
    NEIGHBOUR = "neighbour"
    SAFE_PLACE = "safe_place"
    MAILBOX = "mailbox"
    PICKUP_POINT = "pickup_point"
    OTHER = "other"


class CheckTrigger(StrEnum):
    """What made the service ask the carrier: a new complaint, an agent, or the periodic re-check."""

    COMPLAINT = "complaint"
    AGENT = "agent"
    RECHECK = "recheck"


class FailureCode(StrEnum):
    """Why a carrier could not be asked or did not answer (the ``reason`` field says it in words)."""

    UNKNOWN_CARRIER = "unknown_carrier"
    MALFORMED_TRACKING_NUMBER = "malformed_tracking_number"
    NOT_FOUND = "not_found"
    CARRIER_UNAVAILABLE = "carrier_unavailable"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    CIRCUIT_OPEN = "circuit_open"
    ORDER_UNKNOWN = "order_unknown"
    ORDER_SYSTEM_UNAVAILABLE = "order_system_unavailable"


class Delivery(BaseModel):
    """Where and to whom a delivered package was left."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    handover: Handover = Field(
        description="Recipient, neighbour, safe place, mailbox or pickup point.", examples=[Handover.NEIGHBOUR]
    )
    received_by: str | None = Field(
        default=None,
        max_length=200,
        description="Who signed or took it, as the carrier recorded it.",
        examples=["M. JONES (NO. 14)"],
    )
    location: str | None = Field(
        default=None,
        max_length=200,
        description="Where it was left, in the carrier's words.",
        examples=["Neighbour at No. 14"],
    )
    signed: bool = Field(default=False, description="Whether a signature was taken.", examples=[True])


class PackageLine(BaseModel):
    """One package of an order as the summary sees it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    carrier: str = Field(min_length=1, description="The carrier as the order system names it.", examples=["ups"])
    tracking_number: str = Field(
        min_length=1, description="The package's tracking number.", examples=["1Z999AA10123456795"]
    )
    status: ShipmentStatus = Field(
        description="Its normalized status (unknown if the carrier could not be asked).",
        examples=[ShipmentStatus.DELAYED],
    )
    items: list[str] = Field(
        default_factory=list,
        description="SKUs in the package (empty when only the tracking number is known).",
        examples=[["ELEC-HEADPHONES-BT"]],
    )
    item_count: int = Field(ge=1, description="How many items it holds (1 when unknown).", examples=[2])
    estimated_delivery_by: AwareDatetime | None = Field(
        default=None, description="Latest estimate, if any.", examples=["2026-03-15T18:00:00Z"]
    )
    can_intercept: bool = Field(
        description="Whether it can still be intercepted, returned or cancelled before delivery.", examples=[True]
    )


@event
class ShipmentStatusReported(Event):
    """Emitted when the status of a package of a complaint is first known, and each time it changes.

    A re-check that finds nothing new emits nothing; keyed by complaint id.
    """

    type_name = "complaints.carrier.ShipmentStatusReported"

    complaint_id: str = Field(min_length=1, description="The complaint; the Kafka key.", examples=["c-2026-000042"])
    order_id: str | None = Field(
        default=None, description="The order, if the complaint named one.", examples=["114-5523190-0012345"]
    )
    carrier: Carrier = Field(description="The carrier asked.", examples=[Carrier.UPS])
    tracking_number: str = Field(
        min_length=1, description="The package's tracking number.", examples=["1Z999AA10123456795"]
    )
    status: ShipmentStatus = Field(description="The normalized status.", examples=[ShipmentStatus.DELAYED])
    carrier_status: str = Field(
        max_length=500,
        description="The carrier's own words for it.",
        examples=["A severe weather condition has delayed delivery."],
    )
    reason: ExceptionReason | None = Field(
        default=None, description="Why it is delayed or stuck, for those statuses.", examples=[ExceptionReason.WEATHER]
    )
    estimated_delivery_from: AwareDatetime | None = Field(
        default=None,
        description="Start of the carrier's delivery window, if it gives one.",
        examples=["2026-03-15T12:00:00Z"],
    )
    estimated_delivery_by: AwareDatetime | None = Field(
        default=None,
        description="The (new) estimated delivery: the end of the window.",
        examples=["2026-03-15T18:00:00Z"],
    )
    delivered_at: AwareDatetime | None = Field(
        default=None, description="When it was delivered.", examples=["2026-03-14T11:02:00Z"]
    )
    delivery: Delivery | None = Field(
        default=None,
        description="Where and to whom, once delivered.",
        examples=[
            {"handover": "neighbour", "received_by": "M. JONES", "location": "Neighbour at No. 14", "signed": True}
        ],
    )
    last_event_at: AwareDatetime | None = Field(
        default=None, description="Time of the carrier's latest scan.", examples=["2026-03-14T07:40:00Z"]
    )
    last_location: str | None = Field(
        default=None, max_length=200, description="Place of the latest scan.", examples=["Leeds, GB"]
    )
    items: list[str] = Field(
        default_factory=list,
        description="SKUs in the package, if known.",
        examples=[["ELEC-HEADPHONES-BT", "SPORT-YOGA-MAT"]],
    )
    item_count: int = Field(ge=1, description="How many items the package holds (1 when unknown).", examples=[2])
    can_intercept: bool = Field(
        description="Whether it can still be intercepted, returned or cancelled before delivery.", examples=[True]
    )
    trigger: CheckTrigger = Field(description="What made us ask.", examples=[CheckTrigger.COMPLAINT])
    checked_at: AwareDatetime = Field(description="When the carrier answered.", examples=["2026-03-14T09:12:05Z"])


@event
class OrderShipmentSummarized(Event):
    """Emitted with the status reports of a check: the whole order in one sentence and one list.

    For example "6 of 8 items delivered, 2 delayed: weather, new estimate tomorrow 18:00".
    """

    type_name = "complaints.carrier.OrderShipmentSummarized"

    complaint_id: str = Field(min_length=1, description="The complaint; the Kafka key.", examples=["c-2026-000042"])
    order_id: str | None = Field(default=None, description="The order, if known.", examples=["114-5523190-0012345"])
    summary: str = Field(
        min_length=1,
        max_length=1000,
        description="The order's state in words, times in the destination's local time, relative to the check.",
        examples=["6 of 8 items delivered, 2 delayed: weather, new estimate tomorrow 18:00"],
    )
    items_total: int = Field(
        ge=0, description="Items in the order (packages, when only tracking numbers are known).", examples=[8]
    )
    items_delivered: int = Field(ge=0, description="Of which delivered.", examples=[6])
    packages: list[PackageLine] = Field(
        description="Every package with its latest status.",
        examples=[
            [
                {
                    "carrier": "ups",
                    "tracking_number": "1Z999AA10123456795",
                    "status": "delayed",
                    "items": ["ELEC-HEADPHONES-BT"],
                    "item_count": 2,
                    "can_intercept": True,
                }
            ]
        ],
    )
    summarized_at: AwareDatetime = Field(description="When the summary was made.", examples=["2026-03-14T09:12:05Z"])


@event
class CarrierQueryFailed(Event):
    """Emitted when a package's status could not be had, with the reason; never silent.

    After the retries (429/5xx/timeouts), for an unknown carrier or a malformed tracking number,
    when the carrier's circuit is open, or when the order could not be looked up. A failure that
    repeats on a re-check is not emitted again.
    """

    type_name = "complaints.carrier.CarrierQueryFailed"

    complaint_id: str = Field(min_length=1, description="The complaint; the Kafka key.", examples=["c-2026-000042"])
    order_id: str | None = Field(default=None, description="The order, if known.", examples=["114-5523190-0012345"])
    carrier: str | None = Field(
        default=None,
        description="The carrier as given (may be one we do "
        "not speak); none when the order itself could not be looked up.",
        examples=["ups"],
    )
    tracking_number: str | None = Field(
        default=None, description="The package, if known.", examples=["1Z999AA10123456795"]
    )
    code: FailureCode = Field(description="The kind of failure.", examples=[FailureCode.CARRIER_UNAVAILABLE])
    reason: str = Field(
        min_length=1,
        max_length=500,
        description="What went wrong, for people.",
        examples=["ups answered HTTP 503 three times in a row"],
    )
    attempts: int = Field(ge=0, description="Requests made (0: none was possible).", examples=[3])
    trigger: CheckTrigger = Field(description="What made us ask.", examples=[CheckTrigger.COMPLAINT])
    failed_at: AwareDatetime = Field(description="When we gave up.", examples=["2026-03-14T09:12:06Z"])


@event
class ShipmentExceptionDetected(Event):
    """Emitted when a carrier pushes an exception, a return to sender or a revised delivery date.

    Pushed by the carrier's or an aggregator's tracking webhook, before anyone complains; intake
    opens a proactive case from it. Keyed by order id (there may be no complaint yet).
    """

    type_name = "complaints.carrier.ShipmentExceptionDetected"

    order_id: str = Field(min_length=1, description="The order; the Kafka key.", examples=["114-5523190-0012345"])
    customer_id: str = Field(min_length=1, description="The customer who placed the order.", examples=["cust-2002"])
    carrier: Carrier = Field(description="The carrier that pushed it.", examples=[Carrier.UPS])
    tracking_number: str = Field(min_length=1, description="The package.", examples=["1Z999AA10123456795"])
    status: ShipmentStatus = Field(
        description="exception, delayed, returned_to_sender or lost.", examples=[ShipmentStatus.DELAYED]
    )
    reason: ExceptionReason | None = Field(
        default=None, description="Why, if the carrier said.", examples=[ExceptionReason.WEATHER]
    )
    carrier_status: str = Field(
        max_length=500,
        description="The carrier's own words.",
        examples=["A severe weather condition has delayed delivery."],
    )
    estimated_delivery_by: AwareDatetime | None = Field(
        default=None, description="The revised estimate, if any.", examples=["2026-03-15T18:00:00Z"]
    )
    items: list[str] = Field(
        default_factory=list, description="SKUs in the package.", examples=[["ELEC-HEADPHONES-BT"]]
    )
    can_intercept: bool = Field(description="Whether it can still be intercepted or cancelled.", examples=[True])
    detected_at: AwareDatetime = Field(description="When the carrier reported it.", examples=["2026-03-14T06:55:00Z"])

    def subject(self) -> str:
        return self.order_id


# --- private: kept in the carrier service's own log, never published ---------------------------


class PackageRef(BaseModel):
    """A package to track: which carrier, which number, what is in it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    carrier: str = Field(min_length=1, description="The carrier as the order system names it.", examples=["ups"])
    tracking_number: str = Field(min_length=1, description="The tracking number.", examples=["1Z999AA10123456784"])
    items: list[str] = Field(
        default_factory=list, description="SKUs in the package.", examples=[["BOOK-9780141439518"]]
    )
    item_count: int = Field(default=1, ge=1, description="Items in it (1 when unknown).", examples=[6])


@event
class ShipmentsWatched(Event):
    """The packages of a complaint, as the order system listed them, are now watched (private)."""

    type_name = "complaints.carrier.ShipmentsWatched"
    public = False

    complaint_id: str = Field(min_length=1, description="The complaint.", examples=["c-2026-000042"])
    order_id: str | None = Field(default=None, description="The order, if any.", examples=["114-5523190-0012345"])
    packages: list[PackageRef] = Field(
        description="What to track.",
        examples=[
            [
                {
                    "carrier": "ups",
                    "tracking_number": "1Z999AA10123456784",
                    "items": ["BOOK-9780141439518"],
                    "item_count": 1,
                }
            ]
        ],
    )
    items_total: int = Field(ge=0, description="Items in the order.", examples=[8])
    watched_at: AwareDatetime = Field(description="When watching began.", examples=["2026-03-14T09:12:04Z"])


@event
class WatchEnded(Event):
    """The complaint was resolved: its packages are no longer re-checked (private)."""

    type_name = "complaints.carrier.WatchEnded"
    public = False

    complaint_id: str = Field(min_length=1, description="The complaint.", examples=["c-2026-000042"])
    ended_at: AwareDatetime = Field(description="When.", examples=["2026-03-14T09:31:20Z"])
