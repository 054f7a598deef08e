"""The staff's read model of a case: what the complainant filed, every service's events about it, and
the other complaints about the same order.

Unlike the customer's ``CaseViews`` it keeps internals (notes, briefs, partners' internal notes,
who acted): it is only served to agents and supervisors. Fed, like every intake projection, by
the log follower from intake's own commits and the events it records from the other topics.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from contracts.carrier import CarrierQueryFailed, OrderShipmentSummarized, ShipmentStatus, ShipmentStatusReported
from contracts.envelope import Envelope, Event
from contracts.intake import (
    CATEGORY_LABELS,
    CallbackCancelled,
    CallbackRequested,
    ClosureAnswered,
    ComplaintFiled,
    ComplaintLinked,
    CustomerMessageReceived,
)
from contracts.notify import (
    CallFailed,
    CallPlaced,
    ClosureConfirmationRequested,
    ComplaintClosedUnconfirmed,
    ComplaintReopened,
    CustomerConfirmedClosed,
    EscalationRequested,
    NotificationFailed,
    NotificationSuppressed,
    OutcomeShared,
)
from contracts.routing import (
    AgentAssigned,
    CallbackDispatched,
    CallbackQueued,
    CallConnected,
    CaseNoteAdded,
    ComplaintResolved,
    Escalated,
    PartnerAcknowledged,
    PartnerOutcomeRecorded,
    ResolutionActionRequested,
    RoutedToTeam,
    TransferredToPartner,
)
from services.kernel.projections import DocumentProjection


def _items(event: ResolutionActionRequested) -> str:
    lines = ", ".join(f"{i.sku} × {i.quantity}" for i in event.items) or "no items"
    amount = f"; {event.amount.value} {event.amount.currency}" if event.amount else ""
    return f"{event.action.value.replace('_', ' ')} on order {event.order_id}: {lines}{amount}"


def _brief(event: TransferredToPartner) -> str:
    b = event.brief
    by = f" by {b.promised_by.isoformat()}" if b.promised_by else ""
    return (
        f"Transferred to {event.team_id} by {event.by_agent_id}. Asks: {b.customer_asks} Tried: {b.tried} "
        f"Promised: {b.promised}{by}. Partner SLA due {event.sla_due_at.isoformat()}"
    )


CARRIERS = {"fedex": "FedEx", "ups": "UPS", "usps": "USPS", "auspost": "Australia Post"}


def _time(moment: datetime) -> str:
    # In the moment's own offset: the carrier gives scans and estimates in the destination's time.
    offset = moment.strftime("%z")
    return f"{moment:%d %b %Y %H:%M} " + ("UTC" if offset in ("+0000", "") else f"UTC{offset[:3]}:{offset[3:]}")


def _scan(e: ShipmentStatusReported) -> str:
    """ "UPS 1Z…: delayed (weather); last scan Leeds, GB at …; new estimate …"."""
    words = [
        f"{CARRIERS.get(e.carrier.value, e.carrier.value)} {e.tracking_number}: "
        f"{e.status.value.replace('_', ' ')}" + (f" ({e.reason.value.replace('_', ' ')})" if e.reason else "")
    ]
    if e.delivery:
        words.append(
            f"left with {e.delivery.handover.value.replace('_', ' ')}"
            + (f" ({e.delivery.received_by})" if e.delivery.received_by else "")
            + (f" at {_time(e.delivered_at)}" if e.delivered_at else "")
        )
    if e.last_location or e.last_event_at:
        words.append(
            "last scan"
            + (f" {e.last_location}" if e.last_location else "")
            + (f" at {_time(e.last_event_at)}" if e.last_event_at else "")
        )
    if e.estimated_delivery_by and e.status is not ShipmentStatus.DELIVERED:
        new = "new estimate" if e.status is ShipmentStatus.DELAYED else "estimate"
        words.append(f"{new} {_time(e.estimated_delivery_by)}")
    if e.can_intercept:
        words.append("can still be intercepted")
    return "; ".join(words)


def _query_failed(e: CarrierQueryFailed) -> str:
    what = (
        f"{CARRIERS.get(e.carrier or '', e.carrier)} about {e.tracking_number}"
        if e.tracking_number
        else f"the order system about order {e.order_id}"
        if e.order_id
        else "the carrier"
    )
    return f"Could not ask {what}: {e.reason} ({e.code.value.replace('_', ' ')})"


#: Words for staff; ``True`` marks what the complainant never sees on their own page.
STAFF_SUMMARIES: dict[type, tuple[bool, Callable[[Any], str]]] = {
    ComplaintFiled: (False, lambda e: f"Filed by {e.channel}: {CATEGORY_LABELS[e.category]}"),
    CallbackRequested: (False, lambda e: f"Callback requested to {e.phone} ({e.preferred_language})"),
    CallbackCancelled: (False, lambda e: f"Callback cancelled by the {e.by}"),
    CustomerMessageReceived: (False, lambda e: f"Message by {e.channel} from {e.sender}: {e.text[:500]}"),
    ComplaintLinked: (False, lambda e: f"{e.channel} contact from {e.sender} joined this case: {e.text[:500]}"),
    AgentAssigned: (True, lambda e: f"Assigned to {e.agent_id}: {e.reason}"),
    CallbackQueued: (False, lambda e: f"Callback queued at position {e.position} (about {e.estimated_wait_s} s)"),
    CallbackDispatched: (True, lambda e: f"Callback dispatched to {e.agent_id}, dialling {e.phone}"),
    TransferredToPartner: (True, _brief),
    PartnerAcknowledged: (True, lambda e: f"{e.team_id} acknowledged (by {e.by})"),
    CaseNoteAdded: (True, lambda e: f"Note by {e.author}: {e.text}"),
    PartnerOutcomeRecorded: (
        True,
        lambda e: (
            f"Outcome from {e.team_id}: {e.outcome_for_customer}"
            + (f" (internal: {e.internal_note})" if e.internal_note else "")
        ),
    ),
    ResolutionActionRequested: (True, lambda e: f"Action requested: {_items(e)}"),
    ComplaintResolved: (
        False,
        lambda e: f"Resolved by {e.agent_id}: {e.recap}" + "".join(f" Next: {s}" for s in e.next_steps),
    ),
    Escalated: (True, lambda e: f"Escalated ({e.reason.value}): {e.detail}"),
    RoutedToTeam: (True, lambda e: f"Routed by the rules to {e.team_id}" + (" (its members only)" if e.only else "")),
    CallConnected: (
        False,
        lambda e: f"Call connected: {e.agent_id} is on the line with the customer (callback {e.callback_id})",
    ),
    ShipmentStatusReported: (True, _scan),
    OrderShipmentSummarized: (
        True,
        lambda e: f"Carrier summary{f' of order {e.order_id}' if e.order_id else ''}: {e.summary}",
    ),
    CarrierQueryFailed: (True, _query_failed),
    # ShipmentExceptionDetected is keyed by order, not complaint: it never reaches a case's
    # timeline here; the proactive case it opens is filed like any other complaint.
    ClosureConfirmationRequested: (
        False,
        lambda e: (
            ("Reminder: is the complaint closed?" if e.reminder else "Asked the complainant: is the complaint closed?")
            + f" (email to {e.to})"
        ),
    ),
    ClosureAnswered: (
        False,
        lambda e: (
            "The complainant answered on their case page: "
            + ("yes, closed" if e.answer == "yes" else f"no, still a problem. {e.reason}")
        ),
    ),
    CustomerConfirmedClosed: (False, lambda e: f"The complainant confirmed it is closed (by {e.via})"),
    ComplaintReopened: (
        False,
        lambda e: (
            f"The complainant says it is not solved (by {e.via}); reopened"
            + (f": {e.reason[:500]}" if e.reason else "")
        ),
    ),
    ComplaintClosedUnconfirmed: (False, lambda e: "Closed without an answer from the complainant"),
    CallPlaced: (True, lambda e: f"Call placed with the telephony provider ({e.call_sid})"),
    CallFailed: (
        True,
        lambda e: (
            f"Call attempt {e.attempt} failed: {e.reason}"
            + (" (no attempt left: the complainant is told)" if e.final else "")
        ),
    ),
    OutcomeShared: (False, lambda e: f"The outcome was sent to the complainant by {e.channel}"),
    NotificationSuppressed: (
        True,
        lambda e: f"Held back {e.template} by {e.channel} ({e.reason}); instead: {e.alternative}",
    ),
    NotificationFailed: (
        True,
        lambda e: f"Gave up sending {e.template} by {e.channel} after {e.attempts} attempts: {e.reason}",
    ),
    EscalationRequested: (True, lambda e: f"Notify asked for a human ({e.reason}): {e.detail}"),
}


def _source(envelope: Envelope) -> str:
    return envelope.source.rstrip("/").rsplit("/", 1)[-1]


def _generic(envelope: Envelope) -> str:
    # An event this table does not word: its name only, never its data, which may hold what
    # staff must not read here (a one-time code, say).
    name = envelope.type.split(".")[-2] if envelope.type.count(".") >= 2 else envelope.type
    return f"{name} ({_source(envelope)})"


class DeskCaseViews(DocumentProjection):
    """One document per complaint: the filing's facts, the staff timeline of every service, and the
    partner teams the case was routed or transferred to (whose members may read it); and per order,
    the complaints about it.

    An order number proves nobody's identity, so two people naming one order get a case each
    (``Intake.file``); staff still need to see that it was reported twice, hence the order index.
    """

    name = "desk_cases"
    also = ("desk_case_orders",)

    def __init__(self, db: AsyncDatabase) -> None:
        super().__init__(db)
        self.orders = db["desk_case_orders"]

    async def reset(self) -> None:
        await super().reset()
        await self.orders.drop()

    async def apply(self, envelope: Envelope, event: Event) -> None:
        first = isinstance(event, ComplaintFiled)
        view = await self.view(envelope.subject, first=first) if envelope.subject else None
        if view is None and isinstance(event, ComplaintFiled):
            view = {"_id": event.complaint_id, "applied": [], "timeline": [], "filing": event.model_dump(mode="json")}
        if view is None or envelope.id in view["applied"]:
            return  # not about a complaint, or applied already
        internal, words = STAFF_SUMMARIES.get(type(event), (True, None))
        view["timeline"].append(
            {
                "time": envelope.time.isoformat(),
                "type": envelope.type,
                "source": _source(envelope),
                "internal": internal,
                "summary": words(event) if words else _generic(envelope),
            }
        )
        if isinstance(event, (RoutedToTeam, TransferredToPartner)) and event.team_id not in view.setdefault(
            "teams", []
        ):
            view["teams"].append(event.team_id)  # its members may read the case from now on
        if isinstance(event, ComplaintFiled) and event.order_id:
            await self._index(event)  # before the view: a crash in between re-applies both
        view["applied"].append(envelope.id)
        await self.save(view["_id"], view)

    async def _index(self, filed: ComplaintFiled) -> None:
        index = await self.orders.find_one({"_id": filed.order_id}) or {"_id": filed.order_id, "complaints": []}
        if any(c["complaint_id"] == filed.complaint_id for c in index["complaints"]):
            return
        index["complaints"].append(
            {
                "complaint_id": filed.complaint_id,
                "filed_at": filed.filed_at.isoformat(),
                "channel": filed.channel.value,
                "assurance": filed.assurance.value,
                "who": filed.complainant.model_dump(exclude_none=True),
            }
        )
        await self.orders.replace_one({"_id": filed.order_id}, index, upsert=True)

    async def related(self, complaint_id: str, order_id: str | None) -> list[dict[str, Any]]:
        """The other complaints about ``order_id``, oldest first: for staff only, never for a
        complainant (it names the other people) nor a partner team (it is another case)."""
        index = await self.orders.find_one({"_id": order_id}) if order_id else None
        return [c for c in (index or {}).get("complaints", []) if c["complaint_id"] != complaint_id]
