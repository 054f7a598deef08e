"""Intake's read models: the customer's case view (timeline, callback) and the unified customer view.

Both are fed by the log follower, the only writer, so a read-modify-write per document is safe
(FerretDB applies updates as read-modify-write anyway). ``apply`` skips an event it has applied.
"""

from __future__ import annotations

from pymongo import IndexModel

from contracts.carrier import OrderShipmentSummarized
from contracts.envelope import Envelope, Event
from contracts.intake import (
    CATEGORY_LABELS,
    Assurance,
    CallbackCancelled,
    CallbackRequested,
    ClosureAnswered,
    ComplaintFiled,
    ComplaintLinked,
    CustomerMessageReceived,
)
from contracts.notify import (
    ClosureConfirmationRequested,
    ComplaintClosedUnconfirmed,
    ComplaintReopened,
    CustomerConfirmedClosed,
)
from contracts.routing import (
    AgentAssigned,
    CallbackDispatched,
    CallbackQueued,
    CallConnected,
    ComplaintResolved,
    Escalated,
    PartnerOutcomeRecorded,
    ResolutionActionRequested,
    TransferredToPartner,
)
from services.intake import experience
from services.intake.desk_views import DeskCaseViews
from services.kernel.indexes import ensure_indexes
from services.kernel.projections import DocumentProjection
from services.kernel.staff import StaffDirectory

#: Words for the customer's timeline. Only what the customer may see: never an internal note, an
#: agent's or a third party's details. An event not listed here is not shown to the customer.
SUMMARIES = {
    ComplaintFiled: lambda e: (
        f"We opened a case for you: {CATEGORY_LABELS[e.category]}"
        if e.channel == "proactive"
        else f"You filed a complaint: {CATEGORY_LABELS[e.category]}"
    ),
    CallbackRequested: lambda e: "You asked us to call you back",
    CallbackCancelled: lambda e: "The callback was cancelled",
    CustomerMessageReceived: lambda e: f"Your message arrived by {e.channel}",
    ComplaintLinked: lambda e: f"Your {e.channel} message about the same order was added to this case",
    CallbackQueued: lambda e: f"You are number {e.position} in the queue for a call",
    CallbackDispatched: lambda e: "We are calling you now",
    CallConnected: lambda e: "You are on the call with an agent",
    AgentAssigned: lambda e: "An agent is looking after your case",
    TransferredToPartner: lambda e: "Your case was handed to the team that can act on it, with everything you told us",
    PartnerOutcomeRecorded: lambda e: f"What was done: {e.outcome_for_customer}",
    ResolutionActionRequested: lambda e: f"We asked for: {e.action.value.replace('_', ' ')}",
    ComplaintResolved: lambda e: f"Resolved: {e.recap}",
    Escalated: lambda e: "A supervisor is now looking at your case",
    ClosureConfirmationRequested: lambda e: (
        "We reminded you of our question" if e.reminder else "We asked you whether your complaint is closed"
    ),
    CustomerConfirmedClosed: lambda e: "You confirmed your complaint is closed",
    ComplaintReopened: lambda e: "You told us the problem is not solved: your case is open again",
    ClosureAnswered: lambda e: (
        "You told us your complaint is closed" if e.answer == "yes" else "You told us the problem is not solved"
    ),
    ComplaintClosedUnconfirmed: lambda e: "We closed your complaint (we did not hear back from you)",
}

#: How notify's closure loop moves the case's status on.
CLOSURE_STATUS = {
    CustomerConfirmedClosed: "closed",
    ComplaintReopened: "reopened",
    ComplaintClosedUnconfirmed: "closed",
}
#: Where the question "is your complaint closed?" stands, for the page's buttons: shown while
#: ``asked``; an answer given on the page waits as ``answered`` until notify has applied it.
CLOSURE_QUESTION = {
    CustomerConfirmedClosed: "confirmed",
    ComplaintReopened: "disputed",
    ComplaintClosedUnconfirmed: "closed_unconfirmed",
}
#: Where the question still takes an answer: after closing unconfirmed too (the complainant came back).
OPEN_QUESTION = ("asked", "closed_unconfirmed")


def _outcome(view: dict, event: Event) -> None:
    """What the complainant is told was done: the partner's words for them and the resolution's
    recap with its next steps (never an internal note or an agent's name)."""
    outcomes = view.setdefault("outcomes", [])
    if isinstance(event, PartnerOutcomeRecorded):
        outcomes.append(
            {
                "time": event.recorded_at.isoformat(),
                "by": "partner",
                "text": event.outcome_for_customer,
                "next_steps": [],
            }
        )
    elif isinstance(event, ComplaintResolved):
        outcomes.append(
            {
                "time": event.resolved_at.isoformat(),
                "by": "agent",
                "text": event.recap,
                "next_steps": list(event.next_steps),
            }
        )


def _closure(view: dict, event: Event) -> None:
    if isinstance(event, ClosureConfirmationRequested):
        view["closure"] = {
            "state": "asked",
            "asked_at": event.requested_at.isoformat(),
            "expires_at": event.yes_url_expires_at.isoformat(),
            "answer": None,
        }
    elif view.get("closure") and isinstance(event, ClosureAnswered):
        if view["closure"]["state"] in OPEN_QUESTION:  # never over notify's verdict
            view["closure"].update(state="answered", answer=event.answer)
    elif view.get("closure") and type(event) in CLOSURE_QUESTION:
        view["closure"]["state"] = CLOSURE_QUESTION[type(event)]


def _next_step_facts(view: dict, event: Event) -> None:
    """What the page's "what happens next" reads (``next_step.py``): when a partner team took the
    case and by when the customer hears from it (no team id, no brief: those are staff's), and the
    carrier's sentence about the order."""
    if isinstance(event, TransferredToPartner):
        view["handed_over"] = {
            "at": event.transferred_at.isoformat(),
            "answer_by": (event.brief.promised_by or event.sla_due_at).isoformat(),
        }
    elif isinstance(event, PartnerOutcomeRecorded):
        view.pop("handed_over", None)
    elif isinstance(event, OrderShipmentSummarized):
        view["shipment"] = {"summary": event.summary, "at": event.summarized_at.isoformat()}


#: How routing's events move the customer's callback on.
CALLBACK_STATES = {CallbackQueued: "queued", CallbackDispatched: "dialling", CallConnected: "connected"}
#: A call in these states is over once the case is resolved.
CALL_UNDER_WAY = ("dialling", "connected")


class CaseViews(DocumentProjection):
    """One document per complaint: owner, category, status, live callback and timeline."""

    name = "case_views"

    async def apply(self, envelope: Envelope, event: Event) -> None:
        complaint_id = envelope.subject
        view = await self.view(complaint_id, first=isinstance(event, ComplaintFiled))
        if isinstance(event, ComplaintFiled):
            view = view or {
                "_id": complaint_id,
                "applied": [],
                "timeline": [],
                "callback": None,
                "owner": event.complainant.model_dump(exclude_none=True),
                "category": event.category.value,
                "status": "open",
                "order_id": event.order_id,
                "assurance": event.assurance.value,
                "channel": event.channel.value,
                "filed_at": envelope.time.isoformat(),
            }
        if view is None or envelope.id in view["applied"]:
            return  # not a complaint of ours, or applied already
        if isinstance(event, CallbackRequested):
            view["callback"] = {
                "callback_id": event.callback_id,
                "state": "requested",
                "position": None,
                "estimated_wait_s": None,
            }
        elif isinstance(event, CallbackCancelled) and (view["callback"] or {}).get("callback_id") == event.callback_id:
            view["callback"]["state"] = "cancelled"
        elif (
            type(event) in CALLBACK_STATES
            and (view["callback"] or {}).get("callback_id") == event.callback_id
            and view["callback"]["state"] != "cancelled"
        ):
            view["callback"]["state"] = CALLBACK_STATES[type(event)]
            view["callback"]["since"] = envelope.time.isoformat()
            if isinstance(event, CallbackQueued):
                view["callback"].update(position=event.position, estimated_wait_s=event.estimated_wait_s)
        elif isinstance(event, ComplaintResolved):
            # Two topics: notify's "closed" can be read before routing's resolution; closed stands.
            view["status"] = "closed" if view["status"] == "closed" else "resolved"
            if (view["callback"] or {}).get("state") in CALL_UNDER_WAY:
                view["callback"]["state"] = "ended"  # resolved: whatever call there was is over
        elif type(event) in CLOSURE_STATUS:
            view["status"] = CLOSURE_STATUS[type(event)]
        _next_step_facts(view, event)
        _outcome(view, event)
        _closure(view, event)
        if type(event) in SUMMARIES:
            view["timeline"].append(
                {
                    "event_id": envelope.id,
                    "time": envelope.time.isoformat(),
                    "type": envelope.type,
                    "summary": SUMMARIES[type(event)](event),
                }
            )
        view["applied"].append(envelope.id)
        await self.save(complaint_id, view)


def identifiers(event: ComplaintFiled) -> list[str]:
    """The keys a complainant is known by: ``customer:…``, ``seller:…``, ``email:…``, ``phone:…``."""
    c = event.complainant
    pairs = (
        ("customer", c.customer_id),
        ("seller", c.seller_id),
        ("email", c.email.lower() if c.email else None),
        ("phone", c.phone),
    )
    return [f"{kind}:{value}" for kind, value in pairs if value]


class CustomerViews(DocumentProjection):
    """Per identifier: the complaints and orders filed under it, and the identifiers proven to be
    the same person. Only an authenticated or verified filing links identifiers: an email typed
    into a form proves nothing, and must not merge two people's cases."""

    name = "customer_views"

    async def apply(self, envelope: Envelope, event: Event) -> None:
        if not isinstance(event, ComplaintFiled):
            return
        keys = identifiers(event)
        proven = event.assurance != Assurance.UNVERIFIED
        for key in keys:
            # Gathered, never read here: most filings bring an identifier not seen before.
            self.add_to_sets(
                key,
                {
                    "complaints": [event.complaint_id],
                    "orders": [event.order_id] if event.order_id else [],
                    "linked": sorted(set(keys) - {key}) if proven else [],
                },
            )

    async def unified(self, start: str) -> dict[str, list[str]]:
        """Everything reachable from one identifier through proven links."""
        seen, todo = set(), [start]
        complaints, orders = set(), set()
        while todo:
            key = todo.pop()
            if key in seen:
                continue
            seen.add(key)
            view = await self.views.find_one({"_id": key})
            if view:
                complaints |= set(view.get("complaints", ()))
                orders |= set(view.get("orders", ()))
                todo += [k for k in view.get("linked", ()) if k not in seen]
        found = sorted(seen)
        return {
            "identifiers": found,
            "complaints": sorted(complaints),
            "orders": sorted(orders),
            "accounts": sorted(k for k in found if k.startswith(("customer:", "seller:"))),
        }


class ExperienceFacts(DocumentProjection):
    """The metrics' read model: per complaint (or, for a held-back message about no case, per
    recipient) the facts the customer-experience figures are computed from (``experience.py``)."""

    name = "experience_facts"

    async def setup(self) -> None:
        await super().setup()
        # the figures read a window of filing days
        await ensure_indexes(self.views, for_queries=[IndexModel("filed_at", name="filed_at_1")])

    async def apply(self, envelope: Envelope, event: Event) -> None:
        if not isinstance(event, experience.RECORDED):
            return
        key = getattr(event, "complaint_id", None) or envelope.subject
        facts = await self.view(key, first=isinstance(event, ComplaintFiled)) or {
            **experience.new_facts(key),
            "applied": [],
        }
        if envelope.id in facts["applied"]:
            return  # applied already (a round replayed after a crash)
        facts = {**experience.record(facts, event), "applied": [*facts["applied"], envelope.id]}
        await self.save(key, facts)

    async def since(self, moment: str) -> list[dict]:
        """The facts of the cases filed since ``moment`` (UTC ISO), and of people no case is about."""
        return await self.scan({"$or": [{"filed_at": {"$gte": moment}}, {"filed_at": None}]}, {"applied": 0})


PROJECTIONS = [CaseViews, CustomerViews, DeskCaseViews, StaffDirectory, ExperienceFacts]
