"""A case (stream ``case-<complaint_id>``): what happens to one case after it is routed: transfer
to a partner team, resolution actions, resolution, closing, reopening, contacts, escalations, timers.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, assert_never

from pydantic import Field

from contracts.envelope import Event
from contracts.intake import Assurance, Category
from contracts.routing import (
    CallConnected,
    CaseClosed,
    CaseNoteAdded,
    CaseOpened,
    CaseReopened,
    ComplaintResolved,
    ContactRecorded,
    Escalated,
    EscalationReason,
    HandoffBrief,
    ItemQuantity,
    Money,
    PartnerAcknowledged,
    PartnerOutcomeRecorded,
    ResolutionAction,
    ResolutionActionRequested,
    RoutedToTeam,
    TransferredToPartner,
)
from services.kernel.domain import Aggregate, Value
from services.routing.domain.errors import IllegalState, InvalidField, MissingField, NeedsSupervisor, NotFound
from services.routing.domain.roster import Dispatch, Roster, Team
from services.routing.rules import PartnerTeam as PartnerTeamTarget
from services.routing.rules import Supervisor, Target


def case_stream(complaint_id: str) -> str:
    """The stream of one case's routing events."""
    return f"case-{complaint_id}"


CaseStatus = Literal["open", "transferred", "resolved", "closed"]


class Timer(Value):
    """Something that must happen at ``due_at`` unless the case moves first; fires once."""

    name: str
    due_at: datetime
    reason: EscalationReason
    detail: str
    fired: bool = False


class Call(Value):
    """A callback on the case that connected: who was on the line, since when."""

    agent_id: str
    connected_at: datetime


class Case(Value):
    """One case as routing sees it after it was opened."""

    complaint_id: str | None = None
    category: Category | None = None
    region: str | None = None
    assurance: Assurance = Assurance.UNVERIFIED
    routed_team_id: str | None = None
    status: CaseStatus = "open"
    team_id: str | None = None
    acknowledged: bool = False
    note_ids: frozenset[str] = frozenset()
    timers: tuple[Timer, ...] = ()
    contacts: tuple[datetime, ...] = ()
    contact_ids: frozenset[str] = frozenset()
    #: When the case last moved (anything but a contact or an escalation).
    last_change_at: datetime | None = None
    escalated_for_repeats: bool = False
    action_ids: frozenset[str] = frozenset()
    #: The order the complaint is about, if any: resolution actions may name only this one.
    order_id: str | None = None
    #: Money given back so far (refunds and cancellations) and as goodwill, in the order's currency.
    refunded: Decimal = Decimal(0)
    credited: Decimal = Decimal(0)
    #: callback id -> the call, once its agent said it connected.
    calls: dict[str, Call] = {}


class OpenCase(Value):
    """Take a filed complaint; ``target`` is where the routing rules send it."""

    complaint_id: str = Field(min_length=1)
    category: Category
    region: str | None = None
    assurance: Assurance
    target: Target | None = None
    order_id: str | None = None


class BriefDraft(Value):
    """The handoff brief as the agent typed it; checked field by field before any transfer."""

    customer_asks: str = ""
    tried: str = ""
    evidence: tuple[str, ...] = ()
    promised: str = ""
    promised_by: datetime | None = None


class TransferToPartner(Value):
    """Warm transfer to a partner team (``team`` from the roster) with a complete brief."""

    team: Team
    by_agent_id: str = Field(min_length=1)
    brief: BriefDraft


class AcknowledgeTransfer(Value):
    """Someone in the partner team has read the brief and taken the case."""

    team_id: str = Field(min_length=1)
    by: str = Field(min_length=1)


class AddNote(Value):
    """A note for staff (agents, partners, supervisors); never shown to the complainant."""

    note_id: str = Field(min_length=1)
    author: str = Field(min_length=1)
    text: str = Field(min_length=1, max_length=5000)


class Close(Value):
    """Notify's answer to "is this closed?": confirmed, or no answer after the reminder."""

    confirmed: bool


class RecordPartnerOutcome(Value):
    """The partner team says what it did; ``outcome_for_customer`` is what the complainant hears."""

    team_id: str = Field(min_length=1)
    outcome_for_customer: str
    internal_note: str = ""


class OrderLine(Value):
    """One line of an order as the order system has it: how many, the price of one, the line's shipping fee."""

    quantity: int = Field(ge=1)
    unit_price: Decimal = Field(ge=0)
    shipping_fee: Decimal = Field(ge=0)


class OrderFacts(Value):
    """What the order system says of the case's order: what a resolution action is checked against."""

    order_id: str
    currency: str
    lines: dict[str, OrderLine]

    @property
    def value(self) -> Decimal:
        return sum((line.unit_price * line.quantity + line.shipping_fee for line in self.lines.values()), Decimal(0))


class ActionPolicy(Value):
    """The bounds of one request: the order as it is, and the goodwill the requester may give alone
    (above ``goodwill_alone``, a supervisor must; never above ``goodwill_max``)."""

    order: OrderFacts | None
    goodwill_alone: Decimal
    goodwill_max: Decimal
    by_supervisor: bool = False


class RequestResolutionAction(Value):
    """Ask payments or orders to refund shipping, cancel items, reship or credit."""

    action_id: str = Field(min_length=1)
    action: ResolutionAction
    order_id: str = Field(min_length=1)
    items: tuple[ItemQuantity, ...] = ()
    amount: Money | None = None
    policy: ActionPolicy | None = None


class Resolve(Value):
    """Close the case with a recap and the next steps promised."""

    agent_id: str = Field(min_length=1)
    recap: str
    next_steps: tuple[str, ...] = ()


class ConnectCall(Value):
    """The agent has the complainant on the line. ``dispatch`` is the roster's record of whom the
    callback was given to (None: never dispatched, or its agent no longer holds the case)."""

    callback_id: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)
    dispatch: Dispatch | None


class Reopen(Value):
    """The complainant says it is not closed: open the case again."""


class Escalate(Value):
    """An agent sends the case to the supervisor queue."""

    reason: EscalationReason = EscalationReason.OTHER
    detail: str = Field(min_length=1)


class RecordContact(Value):
    """The complainant wrote or called again; too many with no progress escalate, once."""

    contact_id: str = Field(min_length=1)
    max_contacts: int = Field(default=4, ge=2)
    window: timedelta = timedelta(hours=24)


class FireDueTimers(Value):
    """Fire every timer that is due (each once: firing is recorded as an event)."""


def repeated_contacts(
    contacts: tuple[datetime, ...], last_change_at: datetime | None, now: datetime, max_contacts: int, window: timedelta
) -> bool:
    """Whether ``max_contacts`` contacts came within ``window`` with no change to the case since."""
    since = max(now - window, last_change_at) if last_change_at else now - window
    return sum(1 for t in contacts if since < t <= now) >= max_contacts


def due_timers(state: Case, now: datetime) -> list[Timer]:
    """The timers that should fire at ``now`` and have not fired yet."""
    return [t for t in state.timers if not t.fired and t.due_at <= now]


BRIEF_RULES = {
    "customer_asks": "say what the customer wants",
    "tried": "say what was already tried",
    "promised": "say what the customer was promised",
}


def _brief(draft: BriefDraft) -> HandoffBrief:
    for field, rule in BRIEF_RULES.items():
        if not getattr(draft, field).strip():
            raise MissingField(f"brief.{field}", rule)
    return HandoffBrief(
        customer_asks=draft.customer_asks,
        tried=draft.tried,
        evidence=list(draft.evidence),
        promised=draft.promised,
        promised_by=draft.promised_by,
    )


REFUNDS = (ResolutionAction.REFUND_SHIPPING, ResolutionAction.CANCEL_ITEMS)


def _check_action(state: Case, command: RequestResolutionAction) -> Decimal:
    """The action's amount, once it fits the case's order and the policy; refused naming the field."""
    if command.action in (*REFUNDS, ResolutionAction.RESHIP) and not command.items:
        raise MissingField("items", f"{command.action.value} needs the order lines concerned")
    if command.action != ResolutionAction.RESHIP and command.amount is None:
        raise MissingField("amount", f"{command.action.value} needs an amount")
    if state.order_id is None:
        raise IllegalState("request a resolution action", state.status, "the complaint names no order")
    if command.order_id != state.order_id:
        raise InvalidField("order_id", f"the case is about order {state.order_id}, not {command.order_id}")
    policy = command.policy
    if policy is None or policy.order is None:
        raise InvalidField("order_id", f"the order system does not know order {command.order_id}")
    order = policy.order
    for i, item in enumerate(command.items):
        if (line := order.lines.get(item.sku)) is None:
            raise InvalidField(f"items.{i}.sku", f"{item.sku} is not on order {order.order_id}")
        if item.quantity > line.quantity:
            raise InvalidField(f"items.{i}.quantity", f"order {order.order_id} has {line.quantity} of {item.sku}")
    if command.amount is None:
        return Decimal(0)
    amount = _amount(command.amount, order)
    if command.action == ResolutionAction.GOODWILL_CREDIT:
        _check_goodwill(state.credited + amount, policy, order.currency)
    elif command.action in REFUNDS:
        lines = [(order.lines[i.sku], i.quantity) for i in command.items]
        shipping = sum((line.shipping_fee * n / line.quantity for line, n in lines), Decimal(0))
        cost = (
            shipping
            if command.action == ResolutionAction.REFUND_SHIPPING
            else shipping + sum((line.unit_price * n for line, n in lines), Decimal(0))
        )
        cost = cost.quantize(Decimal("0.01"))
        if amount > cost:
            raise InvalidField("amount.value", f"at most {cost} {order.currency} for these items")
        if state.refunded + amount > order.value:
            raise InvalidField(
                "amount.value",
                f"refunds on this case would exceed the order's value "
                f"({order.value} {order.currency}; {state.refunded} refunded already)",
            )
    return amount


def _amount(money: Money, order: OrderFacts) -> Decimal:
    if money.currency != order.currency:
        raise InvalidField("amount.currency", f"order {order.order_id} is in {order.currency}")
    try:
        amount = Decimal(money.value)
    except InvalidOperation:
        raise InvalidField("amount.value", "must be a decimal number") from None
    if amount <= 0 or not isinstance(exponent := amount.as_tuple().exponent, int) or exponent < -2:
        raise InvalidField("amount.value", "must be positive, with at most 2 decimals")
    return amount


def _check_goodwill(total: Decimal, policy: ActionPolicy, currency: str) -> None:
    if total > policy.goodwill_max:
        raise InvalidField(
            "amount.value", f"goodwill credits on a case are at most {policy.goodwill_max} {currency} in all"
        )
    if total > policy.goodwill_alone and not policy.by_supervisor:
        raise NeedsSupervisor(
            f"amount.value: goodwill credits above {policy.goodwill_alone} {currency} on a case need a supervisor"
        )


#: Every command a case takes (``decide_case`` checks each is handled: ``assert_never``).
CaseCommand = (
    OpenCase
    | TransferToPartner
    | AcknowledgeTransfer
    | RecordPartnerOutcome
    | AddNote
    | RequestResolutionAction
    | Resolve
    | Close
    | Reopen
    | ConnectCall
    | Escalate
    | RecordContact
    | FireDueTimers
)


def decide_case(state: Case, command: CaseCommand, now: datetime) -> list[Event]:
    if isinstance(command, OpenCase):
        return _open(state, command, now)
    if (cid := state.complaint_id) is None:
        raise NotFound("case", getattr(command, "complaint_id", "?"))
    match command:
        case TransferToPartner() | AcknowledgeTransfer() | RecordPartnerOutcome():
            return _with_partner(state, cid, command, now)
        case RequestResolutionAction() | Resolve() | Close() | Reopen():
            return _resolution(state, cid, command, now)
        case RecordContact() | Escalate() | FireDueTimers():
            return _escalation(state, cid, command, now)
        case AddNote():
            if command.note_id in state.note_ids:
                return []
            return [CaseNoteAdded(complaint_id=cid, **command.model_dump(), added_at=now)]
        case ConnectCall():
            return _connect(state, command, now)
        case _:
            assert_never(command)


def _open(state: Case, command: OpenCase, now: datetime) -> list[Event]:
    """Open the case once, routed to a partner team or a supervisor if the rules say so."""
    if state.complaint_id is not None:
        return []
    team = command.target.team_id if isinstance(command.target, PartnerTeamTarget) else None
    opened: list[Event] = [
        CaseOpened(
            complaint_id=command.complaint_id,
            category=command.category,
            region=command.region,
            assurance=command.assurance,
            team_id=team,
            opened_at=now,
            order_id=command.order_id,
        )
    ]
    if isinstance(command.target, PartnerTeamTarget):
        opened.append(
            RoutedToTeam(
                complaint_id=command.complaint_id,
                team_id=command.target.team_id,
                only=command.target.only,
                routed_at=now,
            )
        )
    if isinstance(command.target, Supervisor):
        opened.append(
            Escalated(
                complaint_id=command.complaint_id,
                reason=command.target.reason,
                detail=f"{command.category.value} from a "
                f"{command.assurance.value} complainant: the routing "
                "rules send it to a supervisor",
                escalated_at=now,
            )
        )
    return opened


def _with_partner(
    state: Case, cid: str, command: TransferToPartner | AcknowledgeTransfer | RecordPartnerOutcome, now: datetime
) -> list[Event]:
    """The hand-over to a partner team: the transfer, its acknowledgement, the team's outcome."""
    match command:
        case TransferToPartner():
            team = command.team
            if state.status == "transferred" and state.team_id == team.team_id:
                return []
            if state.status in ("resolved", "closed"):
                raise IllegalState("transfer", state.status)
            if state.category is None or state.category not in team.categories:
                raise IllegalState(
                    "transfer",
                    state.status,
                    f"team {team.team_id} does not take "
                    f"{state.category.value if state.category else 'a case of no category'}",
                )
            if team.restricted and state.routed_team_id != team.team_id:
                raise IllegalState(
                    "transfer", state.status, f"team {team.team_id} only takes cases the routing rules send to it"
                )
            sla = timedelta(minutes=team.response_sla_minutes)
            return [
                TransferredToPartner(
                    complaint_id=cid,
                    team_id=team.team_id,
                    by_agent_id=command.by_agent_id,
                    brief=_brief(command.brief),
                    transferred_at=now,
                    sla_due_at=now + sla,
                )
            ]
        case AcknowledgeTransfer():
            if state.status != "transferred" or state.team_id != command.team_id:
                raise IllegalState("acknowledge", state.status, f"it is not with team {command.team_id}")
            if state.acknowledged:
                return []
            return [PartnerAcknowledged(complaint_id=cid, **command.model_dump(), acknowledged_at=now)]
        case RecordPartnerOutcome():
            if state.status != "transferred" or state.team_id != command.team_id:
                raise IllegalState("record an outcome", state.status, f"it is not with team {command.team_id}")
            if not command.outcome_for_customer.strip():
                raise MissingField("outcome_for_customer", "say what the complainant will be told")
            return [PartnerOutcomeRecorded(complaint_id=cid, **command.model_dump(), recorded_at=now)]
        case _:
            assert_never(command)


def _resolution(
    state: Case, cid: str, command: RequestResolutionAction | Resolve | Close | Reopen, now: datetime
) -> list[Event]:
    """Putting it right: refunds and other actions within policy, the resolution, closing, reopening."""
    match command:
        case RequestResolutionAction():
            if command.action_id in state.action_ids:
                return []
            if state.status in ("resolved", "closed"):
                raise IllegalState("request a resolution action", state.status)
            _check_action(state, command)
            return [
                ResolutionActionRequested(complaint_id=cid, **command.model_dump(exclude={"policy"}), requested_at=now)
            ]
        case Resolve():
            if state.status in ("resolved", "closed"):
                raise IllegalState("resolve", state.status)
            if not command.recap.strip():
                raise MissingField("recap", "say what was done, for the complainant")
            return [
                ComplaintResolved(
                    complaint_id=cid,
                    agent_id=command.agent_id,
                    recap=command.recap,
                    next_steps=list(command.next_steps),
                    resolved_at=now,
                )
            ]
        case Close():
            if state.status != "resolved":
                return []  # reopened in between, or closed already: the later word stands
            return [CaseClosed(complaint_id=cid, confirmed=command.confirmed, closed_at=now)]
        case Reopen():
            if state.status not in ("resolved", "closed"):
                return []
            return [CaseReopened(complaint_id=cid, reopened_at=now)]
        case _:
            assert_never(command)


def _escalation(state: Case, cid: str, command: RecordContact | Escalate | FireDueTimers, now: datetime) -> list[Event]:
    """Raising the case: on request, for repeated contacts without progress, for a timer that ran out."""
    match command:
        case Escalate():
            return [Escalated(complaint_id=cid, **command.model_dump(), escalated_at=now)]
        case RecordContact():
            if command.contact_id in state.contact_ids:
                return []
            contact = ContactRecorded(complaint_id=cid, contact_id=command.contact_id, contacted_at=now)
            if state.escalated_for_repeats or not repeated_contacts(
                (*state.contacts, now), state.last_change_at, now, command.max_contacts, command.window
            ):
                return [contact]
            return [
                contact,
                Escalated(
                    complaint_id=cid,
                    reason=EscalationReason.REPEATED_CONTACTS,
                    escalated_at=now,
                    detail=f"{command.max_contacts} contacts within {command.window} with no progress on the case",
                ),
            ]
        case FireDueTimers():
            return [
                Escalated(complaint_id=cid, reason=t.reason, detail=t.detail, escalated_at=now)
                for t in due_timers(state, now)
            ]
        case _:
            assert_never(command)


def _connect(state: Case, command: ConnectCall, now: datetime) -> list[Event]:
    """Only the agent the callback was dispatched to says it connected, and once: a second
    click (or a retry) changes nothing."""
    if (call := state.calls.get(command.callback_id)) is not None:
        if call.agent_id != command.agent_id:
            raise IllegalState(
                "mark the call connected",
                state.status,
                f"callback {command.callback_id} is connected to {call.agent_id}",
            )
        return []
    dispatch = command.dispatch
    if dispatch is None or dispatch.complaint_id != state.complaint_id:
        raise NotFound("dispatched callback", command.callback_id)
    if dispatch.agent_id != command.agent_id:
        raise IllegalState(
            "mark the call connected",
            state.status,
            f"callback {command.callback_id} was dispatched to {dispatch.agent_id}",
        )
    return [
        CallConnected(
            complaint_id=state.complaint_id,
            callback_id=command.callback_id,
            agent_id=command.agent_id,
            connected_at=now,
        )
    ]


class CallbackOnCase(Value):
    """A callback as the case's page shows it: dispatched to an agent, or connected (no phone)."""

    callback_id: str
    agent_id: str
    status: Literal["dispatched", "connected"]
    dispatched_at: datetime | None = None
    connected_at: datetime | None = None


def callbacks_on(case: Case, roster: Roster) -> list[CallbackOnCase]:
    """The case's callbacks: those its agent holds now (the roster's), and those that connected."""
    seen = {
        d.callback_id: CallbackOnCase(
            callback_id=d.callback_id, agent_id=d.agent_id, status="dispatched", dispatched_at=d.dispatched_at
        )
        for d in roster.dispatched.values()
        if d.complaint_id == case.complaint_id
    }
    for callback_id, call in case.calls.items():
        before = seen.get(callback_id)
        seen[callback_id] = CallbackOnCase(
            callback_id=callback_id,
            agent_id=call.agent_id,
            status="connected",
            connected_at=call.connected_at,
            dispatched_at=before.dispatched_at if before else None,
        )
    return sorted(seen.values(), key=lambda c: c.dispatched_at or c.connected_at or datetime.min)


def _moved(state: Case, at: datetime, **update: Any) -> Case:
    return state.model_copy(update={"last_change_at": at, "escalated_for_repeats": False, **update})


def evolve_case(state: Case, event: Event) -> Case:
    match event:
        case CaseOpened():
            return _moved(
                state,
                event.opened_at,
                complaint_id=event.complaint_id,
                category=event.category,
                region=event.region,
                assurance=event.assurance,
                routed_team_id=event.team_id,
                order_id=event.order_id,
            )
        case TransferredToPartner():
            sla = Timer(
                name=f"partner_sla:{event.team_id}",
                due_at=event.sla_due_at,
                reason=EscalationReason.SLA_BREACH,
                detail=f"team {event.team_id} recorded no outcome by {event.sla_due_at}",
            )
            return _moved(
                state,
                event.transferred_at,
                status="transferred",
                team_id=event.team_id,
                acknowledged=False,
                timers=(*_without_partner_sla(state.timers), sla),
            )
        case PartnerAcknowledged():
            return _moved(state, event.acknowledged_at, acknowledged=True)
        case CaseNoteAdded():
            return state.model_copy(update={"note_ids": state.note_ids | {event.note_id}})
        case CaseClosed():
            return _moved(state, event.closed_at, status="closed")
        case PartnerOutcomeRecorded():
            return _moved(state, event.recorded_at, timers=_without_partner_sla(state.timers))
        case ResolutionActionRequested():
            amount = Decimal(event.amount.value) if event.amount else Decimal(0)
            given = (
                {"refunded": state.refunded + amount}
                if event.action in REFUNDS
                else {"credited": state.credited + amount}
                if event.action == ResolutionAction.GOODWILL_CREDIT
                else {}
            )
            return _moved(state, event.requested_at, action_ids=state.action_ids | {event.action_id}, **given)
        case ComplaintResolved():
            return _moved(state, event.resolved_at, status="resolved", timers=())
        case CaseReopened():
            return _moved(state, event.reopened_at, status="open")
        case CallConnected():  # someone is talking to the complainant: progress on the case
            return _moved(
                state,
                event.connected_at,
                calls={
                    **state.calls,
                    event.callback_id: Call(agent_id=event.agent_id, connected_at=event.connected_at),
                },
            )
        case ContactRecorded():
            return state.model_copy(
                update=dict(
                    contacts=(*state.contacts, event.contacted_at), contact_ids=state.contact_ids | {event.contact_id}
                )
            )
        case Escalated():
            fired = tuple(
                t.model_copy(update={"fired": True})
                if t.reason == event.reason and t.due_at <= event.escalated_at
                else t
                for t in state.timers
            )
            repeats = state.escalated_for_repeats or event.reason == EscalationReason.REPEATED_CONTACTS
            return state.model_copy(update=dict(timers=fired, escalated_for_repeats=repeats))
    return state


def _without_partner_sla(timers: tuple[Timer, ...]) -> tuple[Timer, ...]:
    return tuple(t for t in timers if not t.name.startswith("partner_sla:"))


CASE: Aggregate[Case] = Aggregate(Case(), evolve_case, decide_case)
