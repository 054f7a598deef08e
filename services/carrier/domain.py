"""What happened to the parcels: tracking-number rules, the per-complaint watch, order summaries, alerts.

Pure: no clock, no I/O. A carrier's answer arrives here already normalized (``TrackingReport``,
built by the adapters); this module decides what is news and says it in words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from functools import reduce
from typing import assert_never

from pydantic import AwareDatetime, Field

from contracts.carrier import (
    Carrier,
    CarrierQueryFailed,
    CheckTrigger,
    Delivery,
    ExceptionReason,
    FailureCode,
    Handover,
    OrderShipmentSummarized,
    PackageLine,
    PackageRef,
    ShipmentExceptionDetected,
    ShipmentStatus,
    ShipmentStatusReported,
    ShipmentsWatched,
    WatchEnded,
)
from contracts.envelope import Event
from services.kernel.domain import Aggregate, Value
from services.kernel.errors import DomainError


def watch_stream(complaint_id: str) -> str:
    """The stream of one complaint's packages: what is watched, and what was reported."""
    return f"watch-{complaint_id}"


def alerts_stream(order_id: str) -> str:
    """The stream of the exceptions carriers pushed for one order."""
    return f"alerts-{order_id}"


class NotWatched(DomainError):
    code = "not_watched"
    status = 404

    def __init__(self, complaint_id: str) -> None:
        super().__init__(f"complaint: complaint {complaint_id!r} has no order or tracking numbers we know of")


# --- tracking numbers ----------------------------------------------------------------------------

#: Each carrier's tracking-number formats, and how to say them when one does not match.
FORMATS: dict[Carrier, tuple[re.Pattern[str], str]] = {
    Carrier.UPS: (re.compile(r"^1Z[0-9A-Z]{16}$"), "1Z followed by 16 letters or digits"),
    Carrier.FEDEX: (re.compile(r"^(\d{12}|\d{15}|\d{20}|\d{22})$"), "12, 15, 20 or 22 digits"),
    Carrier.USPS: (
        re.compile(r"^(9[2-5]\d{18,32}|420\d{5}9[2-5]\d{18,24}|[A-Z]{2}\d{9}US)$"),
        "an IMpb barcode (92…95 and 20-34 digits) or an S10 number ending in US",
    ),
    Carrier.AUSPOST: (
        re.compile(r"^([A-Z0-9]{4}\d{8,19}|[A-Z]{2}\d{9}AU)$"),
        "an article id (4 letters or digits, then 8-19 digits) or an S10 number ending in AU",
    ),
}
#: The carrier of a bare tracking number that matches no carrier's format.
UNRECOGNISED = "unrecognised"
#: The order in which a bare tracking number is tried against the formats (most specific first).
GUESS_ORDER = (Carrier.UPS, Carrier.USPS, Carrier.FEDEX, Carrier.AUSPOST)


def normalize_tracking_number(raw: str) -> str:
    """As carriers print it, without the spaces and dashes people paste with it."""
    return re.sub(r"[\s-]", "", raw).upper()


def supported_carrier(name: str) -> Carrier | None:
    try:
        return Carrier(name.strip().lower().replace(" ", "").replace("_", ""))
    except ValueError:
        return {"australiapost": Carrier.AUSPOST, "unitedstatespostalservice": Carrier.USPS}.get(
            name.strip().lower().replace(" ", "").replace("_", "")
        )


def format_problem(carrier: Carrier, tracking_number: str) -> str | None:
    """Why ``tracking_number`` cannot be one of ``carrier``'s, or None if it can."""
    pattern, rule = FORMATS[carrier]
    if pattern.fullmatch(tracking_number):
        return None
    shown = tracking_number if len(tracking_number) <= 40 else tracking_number[:40] + "…"
    return f"tracking number {shown!r} is not a {carrier.value} tracking number ({rule})"


def guess_carrier(tracking_number: str) -> Carrier | None:
    """The carrier whose format a bare tracking number matches, if any."""
    return next((c for c in GUESS_ORDER if FORMATS[c][0].fullmatch(tracking_number)), None)


# --- the normalized answer of a carrier ------------------------------------------------------------

STILL_STOPPABLE = {
    ShipmentStatus.LABEL_CREATED,
    ShipmentStatus.IN_TRANSIT,
    ShipmentStatus.DELAYED,
    ShipmentStatus.EXCEPTION,
}


def can_still_stop(status: ShipmentStatus) -> bool:
    """Whether a package in this status can, as a rule, still be intercepted or cancelled.

    Carriers intercept until the package is on the van; a carrier that says more precisely
    (FedEx's delivery-option eligibility) overrides this rule.
    """
    return status in STILL_STOPPABLE


class TrackingReport(Value):
    """One carrier's answer about one package, in the platform's words."""

    status: ShipmentStatus
    carrier_status: str = Field(max_length=500)
    reason: ExceptionReason | None = None
    estimated_delivery_from: AwareDatetime | None = None
    estimated_delivery_by: AwareDatetime | None = None
    delivered_at: AwareDatetime | None = None
    delivery: Delivery | None = None
    last_event_at: AwareDatetime | None = None
    last_location: str | None = Field(None, max_length=200)
    #: None: the carrier did not say; ``can_still_stop`` decides.
    can_intercept: bool | None = None

    def stoppable(self) -> bool:
        return can_still_stop(self.status) if self.can_intercept is None else self.can_intercept

    def news(self) -> tuple[object, ...]:
        """What makes a report worth telling again: not a new scan of the same state."""
        return (
            self.status,
            self.reason,
            self.estimated_delivery_from,
            self.estimated_delivery_by,
            self.delivery,
            self.stoppable(),
        )


def unreadable(carrier_status: str) -> TrackingReport:
    """The report of a package whose carrier answered something we could not read."""
    return TrackingReport(status=ShipmentStatus.UNKNOWN, carrier_status=carrier_status[:500], can_intercept=False)


#: Words carriers use for the cause of a delay or exception, first match wins.
REASON_WORDS: tuple[tuple[ExceptionReason, tuple[str, ...]], ...] = (
    (ExceptionReason.WEATHER, ("weather", "storm", "snow", "flood", "natural disaster")),
    (ExceptionReason.CUSTOMS, ("customs", "clearance", "import", "duty")),
    (ExceptionReason.DAMAGE, ("damage",)),
    (ExceptionReason.ADDRESS, ("address", "incorrect", "insufficient", "moved")),
    (
        ExceptionReason.RECIPIENT_UNAVAILABLE,
        ("no one", "not available", "unavailable", "closed", "attempted", "unsuccessful", "nobody", "absent"),
    ),
    (
        ExceptionReason.OPERATIONAL,
        ("operational", "mechanical", "missed", "late", "capacity", "volume", "network", "possible delay"),
    ),
)


def reason_in(*texts: str | None) -> ExceptionReason:
    """The reason a carrier's words give for a delay or exception (``other`` if none)."""
    words = " ".join(t.lower() for t in texts if t)
    return next((reason for reason, cues in REASON_WORDS if any(c in words for c in cues)), ExceptionReason.OTHER)


#: Words carriers use for where a package was left, first match wins.
HANDOVER_WORDS: tuple[tuple[Handover, tuple[str, ...]], ...] = (
    (Handover.NEIGHBOUR, ("neighbo",)),
    (
        Handover.PICKUP_POINT,
        (
            "locker",
            "access point",
            "pickup point",
            "post office",
            "collection point",
            "hold at location",
            "awaiting collection",
            "parcel shop",
        ),
    ),
    (Handover.MAILBOX, ("mailbox", "mail box", "letterbox", "letter box", "po box", "mail room", "mailroom")),
    (
        Handover.SAFE_PLACE,
        ("safe place", "front door", "porch", "back door", "side door", "garage", "patio", "doorstep", "left at"),
    ),
    (
        Handover.RECIPIENT,
        ("recipient", "individual", "resident", "receptionist", "front desk", "in person", "signed for", "addressee"),
    ),
)


def handover_in(*texts: str | None) -> Handover | None:
    """Where the carrier's words say a package was left, if they say."""
    words = " ".join(t.lower() for t in texts if t)
    return next((h for h, cues in HANDOVER_WORDS if any(c in words for c in cues)), None)


# --- the watch of one complaint's packages --------------------------------------------------------


class Tracked(Value):
    """A package the carrier answered for."""

    package: PackageRef
    carrier: Carrier
    report: TrackingReport


class Failed(Value):
    """A package whose carrier could not be asked, or did not answer."""

    package: PackageRef
    code: FailureCode
    reason: str = Field(min_length=1, max_length=500)
    attempts: int = Field(ge=0)


class WatchShipments(Value):
    """Start watching a complaint's packages (a repeat for the same complaint changes nothing)."""

    complaint_id: str = Field(min_length=1)
    order_id: str | None = None
    packages: tuple[PackageRef, ...]
    items_total: int = Field(ge=0)


class RecordCheck(Value):
    """Record what the carriers answered: news becomes events, repeats do not."""

    complaint_id: str = Field(min_length=1)
    trigger: CheckTrigger
    outcomes: tuple[Tracked | Failed, ...]


class RecordOrderLookupFailed(Value):
    """The order system could not list the complaint's packages."""

    complaint_id: str = Field(min_length=1)
    order_id: str = Field(min_length=1)
    code: FailureCode
    reason: str = Field(min_length=1, max_length=500)
    attempts: int = Field(ge=0)
    trigger: CheckTrigger


class EndWatch(Value):
    """The complaint was resolved: stop re-checking its packages."""


class PackageState(Value):
    ref: PackageRef
    report: TrackingReport | None = None
    failure: FailureCode | None = None

    def status(self) -> ShipmentStatus:
        return self.report.status if self.report else ShipmentStatus.UNKNOWN


class Watch(Value):
    """What the service knows of one complaint's packages."""

    complaint_id: str | None = None
    order_id: str | None = None
    packages: dict[str, PackageState] = {}
    items_total: int = 0
    watching: bool = False
    ended: bool = False
    order_failure: FailureCode | None = None

    def in_transit(self) -> list[PackageState]:
        """The packages a periodic re-check should ask about again."""
        final = {ShipmentStatus.DELIVERED, ShipmentStatus.RETURNED_TO_SENDER, ShipmentStatus.LOST}
        return [p for p in self.packages.values() if p.status() not in final]


def report_of(event: ShipmentStatusReported) -> TrackingReport:
    return TrackingReport(**event.model_dump(include=set(TrackingReport.model_fields)))


def evolve_watch(state: Watch, event: Event) -> Watch:
    match event:
        case ShipmentsWatched():
            return state.model_copy(
                update={
                    "complaint_id": event.complaint_id,
                    "order_id": event.order_id,
                    "watching": True,
                    "items_total": event.items_total,
                    "order_failure": None,
                    "packages": {p.tracking_number: PackageState(ref=p) for p in event.packages},
                }
            )
        case ShipmentStatusReported():
            package = state.packages[event.tracking_number]
            return _with(state, package.model_copy(update={"report": report_of(event), "failure": None}))
        case CarrierQueryFailed() if event.tracking_number in state.packages:
            return _with(state, state.packages[event.tracking_number].model_copy(update={"failure": event.code}))
        case CarrierQueryFailed():
            return state.model_copy(
                update={"complaint_id": event.complaint_id, "order_id": event.order_id, "order_failure": event.code}
            )
        case WatchEnded():
            return state.model_copy(update={"ended": True})
    return state


def _with(state: Watch, package: PackageState) -> Watch:
    return state.model_copy(update={"packages": {**state.packages, package.ref.tracking_number: package}})


#: Every command a watch takes (checked exhaustively below: ``assert_never``).
WatchCommand = WatchShipments | RecordOrderLookupFailed | RecordCheck | EndWatch


def decide_watch(state: Watch, command: WatchCommand, now: datetime) -> list[Event]:
    match command:
        case WatchShipments():
            if state.watching:
                return []
            return [
                ShipmentsWatched(
                    complaint_id=command.complaint_id,
                    order_id=command.order_id,
                    packages=list(command.packages),
                    items_total=command.items_total,
                    watched_at=now,
                )
            ]
        case RecordOrderLookupFailed():
            if state.watching or state.order_failure == command.code:
                return []
            return [
                CarrierQueryFailed(
                    complaint_id=command.complaint_id,
                    order_id=command.order_id,
                    code=command.code,
                    reason=command.reason,
                    attempts=command.attempts,
                    trigger=command.trigger,
                    failed_at=now,
                )
            ]
        case RecordCheck():
            if not state.watching:
                raise NotWatched(command.complaint_id)
            news = [e for o in command.outcomes if (e := _news(state, o, command.trigger, now))]
            if not news:
                return []
            after = reduce(evolve_watch, news, state)
            return [*news, summarize(after, now)]
        case EndWatch():
            return (
                []
                if state.ended or not state.complaint_id
                else [WatchEnded(complaint_id=state.complaint_id, ended_at=now)]
            )
        case _:
            assert_never(command)


def _news(state: Watch, outcome: Tracked | Failed, trigger: CheckTrigger, now: datetime) -> Event | None:
    """The event an outcome is worth, if it says something not said before."""
    known = state.packages.get(outcome.package.tracking_number)
    package = outcome.package
    if isinstance(outcome, Failed):
        if known is not None and known.failure == outcome.code:
            return None
        return CarrierQueryFailed(
            complaint_id=state.complaint_id,
            order_id=state.order_id,
            carrier=package.carrier,
            tracking_number=package.tracking_number,
            code=outcome.code,
            reason=outcome.reason,
            attempts=outcome.attempts,
            trigger=trigger,
            failed_at=now,
        )
    if known is not None and known.report is not None and known.report.news() == outcome.report.news():
        return None
    report = outcome.report.model_dump(exclude={"can_intercept"})
    return ShipmentStatusReported(
        complaint_id=state.complaint_id,
        order_id=state.order_id,
        carrier=outcome.carrier,
        tracking_number=package.tracking_number,
        **report,
        can_intercept=outcome.report.stoppable(),
        items=package.items,
        item_count=package.item_count,
        trigger=trigger,
        checked_at=now,
    )


# --- the summary: the whole order in one sentence --------------------------------------------------

#: The order in which the summary names the undelivered, and how it says each.
PHRASES: dict[ShipmentStatus, str] = {
    ShipmentStatus.DELAYED: "delayed",
    ShipmentStatus.EXCEPTION: "held up",
    ShipmentStatus.OUT_FOR_DELIVERY: "out for delivery",
    ShipmentStatus.IN_TRANSIT: "in transit",
    ShipmentStatus.LABEL_CREATED: "not yet handed to the carrier",
    ShipmentStatus.RETURNED_TO_SENDER: "returned to sender",
    ShipmentStatus.LOST: "lost",
    ShipmentStatus.UNKNOWN: "of unknown status",
}


def summarize(watch: Watch, now: datetime) -> OrderShipmentSummarized:
    """ "6 of 8 items delivered, 2 delayed: weather, new estimate tomorrow 18:00"."""
    lines = [
        PackageLine(
            carrier=p.ref.carrier,
            tracking_number=p.ref.tracking_number,
            status=p.status(),
            items=p.ref.items,
            item_count=p.ref.item_count,
            estimated_delivery_by=p.report.estimated_delivery_by if p.report else None,
            can_intercept=p.report.stoppable() if p.report else False,
        )
        for p in watch.packages.values()
    ]
    by_items = any(line.items for line in lines)
    total = (watch.items_total or sum(line.item_count for line in lines)) if by_items else len(lines)
    count = (lambda group: sum(line.item_count for line in group)) if by_items else len
    delivered = count([line for line in lines if line.status is ShipmentStatus.DELIVERED])
    unit = "item" if by_items else "package"
    parts = [
        f"all {total} {unit}s delivered"
        if delivered == total and total > 1
        else f"{delivered} of {total} {unit}{'s' if total != 1 else ''} delivered"
    ]
    for status, phrase in PHRASES.items():
        group = [line for line in lines if line.status is status]
        for reason, subgroup in _by_reason(watch, group):
            parts.append(_clause(count(subgroup), phrase, reason, subgroup, status, now))
    return OrderShipmentSummarized(
        complaint_id=watch.complaint_id,
        order_id=watch.order_id,
        summary=", ".join(parts),
        items_total=total,
        items_delivered=delivered,
        packages=lines,
        summarized_at=now,
    )


def _by_reason(watch: Watch, lines: list[PackageLine]) -> Iterable[tuple[ExceptionReason | None, list[PackageLine]]]:
    groups: dict[ExceptionReason | None, list[PackageLine]] = {}
    for line in lines:
        report = watch.packages[line.tracking_number].report
        groups.setdefault(report.reason if report else None, []).append(line)
    return groups.items()


def _clause(
    n: int, phrase: str, reason: ExceptionReason | None, lines: list[PackageLine], status: ShipmentStatus, now: datetime
) -> str:
    clause = f"{n} {phrase}"
    if reason is not None and status in (ShipmentStatus.DELAYED, ShipmentStatus.EXCEPTION):
        clause += f": {reason.value.replace('_', ' ')}"
    estimates = [line.estimated_delivery_by for line in lines if line.estimated_delivery_by]
    if estimates and status in (ShipmentStatus.DELAYED, ShipmentStatus.IN_TRANSIT, ShipmentStatus.OUT_FOR_DELIVERY):
        new = "new estimate" if status is ShipmentStatus.DELAYED else "estimate"
        clause += f", {new} {when(max(estimates), now)}"
    return clause


def when(moment: datetime, now: datetime) -> str:
    """A time as a person says it, in the moment's own offset (the destination's local time)."""
    local_now = now.astimezone(moment.tzinfo)
    days = (moment.date() - local_now.date()).days
    clock = moment.strftime("%H:%M")
    if days == 0:
        return f"today {clock}"
    if days == 1:
        return f"tomorrow {clock}"
    if 1 < days < 7:
        return f"{moment.strftime('%A')} {clock}"
    return f"{moment.day} {moment.strftime('%b')} {clock}"


# --- alerts pushed by carriers: the exceptions of an order -----------------------------------------

ALERTING = {ShipmentStatus.EXCEPTION, ShipmentStatus.DELAYED, ShipmentStatus.RETURNED_TO_SENDER, ShipmentStatus.LOST}


class RaiseAlert(Value):
    """A carrier pushed news about a package of an order; an exception becomes an alert."""

    order_id: str = Field(min_length=1)
    customer_id: str = Field(min_length=1)
    carrier: Carrier
    package: PackageRef
    report: TrackingReport


class Alerts(Value):
    """The last alert raised per package of one order."""

    last: dict[str, tuple[object, ...]] = {}


def evolve_alerts(state: Alerts, event: Event) -> Alerts:
    if isinstance(event, ShipmentExceptionDetected):
        key = (event.status, event.reason, event.estimated_delivery_by)
        return state.model_copy(update={"last": {**state.last, event.tracking_number: key}})
    return state


def decide_alerts(state: Alerts, command: RaiseAlert, now: datetime) -> list[Event]:
    report = command.report
    if report.status not in ALERTING:
        return []
    if state.last.get(command.package.tracking_number) == (report.status, report.reason, report.estimated_delivery_by):
        return []  # the carrier pushed the same news again
    return [
        ShipmentExceptionDetected(
            order_id=command.order_id,
            customer_id=command.customer_id,
            carrier=command.carrier,
            tracking_number=command.package.tracking_number,
            status=report.status,
            reason=report.reason,
            carrier_status=report.carrier_status,
            estimated_delivery_by=report.estimated_delivery_by,
            items=command.package.items,
            can_intercept=report.stoppable(),
            detected_at=now,
        )
    ]


WATCH = Aggregate(Watch(), evolve_watch, decide_watch)
ALERTS = Aggregate(Alerts(), evolve_alerts, decide_alerts)
