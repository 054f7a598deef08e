"""The events of routing: public ones on ``complaints.routing.v1``, private ones in routing's log."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.envelope import Event, event
from contracts.intake import BCP47, E164, Assurance, Category, Channel

#: A BCP 47 language tag, as one list item.
LanguageTag = Annotated[str, Field(pattern=BCP47)]
#: ISO 4217 alphabetic currency code.
ISO4217 = r"^[A-Z]{3}$"
#: A decimal amount as a string (never a float: money must not be rounded in transit).
DECIMAL = r"^-?\d+(\.\d+)?$"


class Availability(StrEnum):
    """Whether an agent can take work now; only ``available`` agents are given callbacks."""

    AVAILABLE = "available"
    ON_CALL = "on_call"
    AFTER_CALL_WORK = "after_call_work"
    OFFLINE = "offline"


class ResolutionAction(StrEnum):
    """What a downstream system (payments, orders) is asked to do to resolve a complaint."""

    REFUND_SHIPPING = "refund_shipping"
    CANCEL_ITEMS = "cancel_items"
    RESHIP = "reship"
    GOODWILL_CREDIT = "goodwill_credit"


class EscalationReason(StrEnum):
    """Why a case went to the supervisor queue.

    ``repeated_contacts``: the person kept writing or calling with no progress;
    ``sla_breach``: a partner team stayed silent past its response SLA;
    ``security_unverified``: an account-security case from someone neither logged in nor verified
    by a one-time code (a locked-out seller who verified by code goes to the security team);
    ``notification_blocked``: notify could not reach the person in a way they can act on (the
    loop guard stopped a message) and a human must step in;
    ``other``: an agent's judgement, explained in the detail.
    """

    REPEATED_CONTACTS = "repeated_contacts"
    SLA_BREACH = "sla_breach"
    SECURITY_UNVERIFIED = "security_unverified"
    NOTIFICATION_BLOCKED = "notification_blocked"
    OTHER = "other"


class HandoffBrief(BaseModel):
    """What a partner team is told on a warm transfer, so the customer never repeats himself."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    customer_asks: str = Field(
        min_length=1,
        max_length=2000,
        description="What the customer wants, in a sentence or two.",
        examples=["Wants the driver's conduct on Elm Road looked into."],
    )
    tried: str = Field(
        min_length=1,
        max_length=2000,
        description="What the agent already did or checked.",
        examples=["Confirmed the delivery route and time with the customer."],
    )
    evidence: list[str] = Field(
        default_factory=list,
        description="References to evidence: photos, tracking numbers, dashcam requests (may be empty).",
        examples=[["1Z999AA10123456784", "photo:att-5521"]],
    )
    promised: str = Field(
        min_length=1,
        max_length=2000,
        description="What the customer was promised.",
        examples=["The partner team will tell him the outcome."],
    )
    promised_by: AwareDatetime | None = Field(
        default=None, description="By when it was promised, if a time was given.", examples=["2026-03-16T17:00:00Z"]
    )


class ItemQuantity(BaseModel):
    """A quantity of one order line (stock keeping unit)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    sku: str = Field(min_length=1, description="The item's SKU.", examples=["SKU-88213-BLU"])
    quantity: int = Field(ge=1, description="How many of it.", examples=[2])


class Money(BaseModel):
    """An amount of money: a decimal string and its currency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    value: str = Field(pattern=DECIMAL, description="The amount as a decimal string.", examples=["7.98"])
    currency: str = Field(pattern=ISO4217, description="ISO 4217 currency code.", examples=["GBP"])


# --- the roster: keyed by agent or team id ---------------------------------------------------------


@event
class AgentRegistered(Event):
    """Emitted when an agent joins the roster, or their skills or capacity change (latest wins)."""

    type_name = "complaints.routing.AgentRegistered"

    agent_id: str = Field(min_length=1, description="The agent; the Kafka key.", examples=["agt-0042"])
    name: str = Field(min_length=1, max_length=200, description="How the agent is shown.", examples=["Priya Raman"])
    skills: list[Category] = Field(
        min_length=1,
        description="Categories the agent can take.",
        examples=[["delivery_driver_conduct", "part_of_order_missing"]],
    )
    languages: list[LanguageTag] = Field(
        min_length=1, description="Languages spoken, as BCP 47 tags.", examples=[["en-GB", "hi"]]
    )
    regions: list[str] = Field(
        default_factory=list, description="Regions served; empty means every region.", examples=[["uk-south"]]
    )
    channels: list[Channel] = Field(
        default_factory=lambda: [Channel.PHONE], description="Channels the agent works.", examples=[["phone", "email"]]
    )
    capacity: int = Field(ge=1, description="How many cases the agent may hold at once.", examples=[1])
    teams: list[str] = Field(
        default_factory=list,
        description="Teams the agent belongs to: a case the routing rules send "
        "to a team (or to the supervisors) is called back only by "
        "its members.",
        examples=[["team-account-security"]],
    )
    registered_at: AwareDatetime = Field(description="When it was registered.", examples=["2026-03-14T08:00:00Z"])

    def subject(self) -> str:
        return self.agent_id


@event
class AgentAvailabilityChanged(Event):
    """Emitted when an agent becomes available, goes on a call, into after-call work or offline."""

    type_name = "complaints.routing.AgentAvailabilityChanged"

    agent_id: str = Field(min_length=1, description="The agent; the Kafka key.", examples=["agt-0042"])
    availability: Availability = Field(description="The new availability.", examples=[Availability.AVAILABLE])
    changed_at: AwareDatetime = Field(description="When it changed.", examples=["2026-03-14T09:00:00Z"])

    def subject(self) -> str:
        return self.agent_id


@event
class PartnerTeamRegistered(Event):
    """Emitted when a partner team joins the roster, or what it takes changes (latest wins)."""

    type_name = "complaints.routing.PartnerTeamRegistered"

    team_id: str = Field(min_length=1, description="The team; the Kafka key.", examples=["team-logistics-uk-south"])
    name: str = Field(
        min_length=1,
        max_length=200,
        description="How the team is shown.",
        examples=["Regional logistics partner, UK South"],
    )
    categories: list[Category] = Field(
        min_length=1, description="Categories the team takes.", examples=[["delivery_driver_conduct", "late_delivery"]]
    )
    regions: list[str] = Field(
        default_factory=list, description="Regions served; empty means every region.", examples=[["uk-south"]]
    )
    response_sla_minutes: int = Field(
        ge=1,
        description="How long the team may stay silent after a transfer before the case escalates.",
        examples=[240],
    )
    restricted: bool = Field(
        default=False,
        description="Only cases the routing rules send straight to it may reach it (e.g. account security).",
        examples=[False],
    )
    registered_at: AwareDatetime = Field(description="When it was registered.", examples=["2026-03-14T08:00:00Z"])

    def subject(self) -> str:
        return self.team_id


# --- callbacks and assignment: keyed by complaint id ------------------------------------------


@event
class AgentAssigned(Event):
    """Emitted when an agent is given a case (for a callback, a reopened case or routed work)."""

    type_name = "complaints.routing.AgentAssigned"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    agent_id: str = Field(min_length=1, description="The agent who now has it.", examples=["agt-0042"])
    callback_id: str | None = Field(
        default=None, description="The callback it is for, if any.", examples=["cb-2026-000107"]
    )
    assigned_at: AwareDatetime = Field(description="When it was assigned.", examples=["2026-03-14T09:12:06Z"])
    reason: str = Field(
        min_length=1,
        max_length=500,
        description="Why this agent, in words.",
        examples=["longest-idle available agent with the skill, language and region"],
    )
    # Added after v1 shipped, hence the default: older messages lack it.
    provisional: bool = Field(
        default=False,
        description="Written work from a complainant nobody has "
        "verified: it does not hold back a callback (a call may still go to this agent).",
        examples=[False],
    )


@event
class CallbackQueued(Event):
    """Emitted when no fitting agent is free: the callback waits, in order, for one."""

    type_name = "complaints.routing.CallbackQueued"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    callback_id: str = Field(min_length=1, description="The callback waiting.", examples=["cb-2026-000107"])
    position: int = Field(ge=1, description="Place in the queue when queued (1 = next).", examples=[3])
    estimated_wait_s: int = Field(
        ge=0, description="Estimated wait in seconds, from recent handling times.", examples=[420]
    )
    queued_at: AwareDatetime = Field(description="When it was queued.", examples=["2026-03-14T09:12:06Z"])


@event
class CallbackDispatched(Event):
    """Emitted when a callback is given to an agent: notify dials the number now."""

    type_name = "complaints.routing.CallbackDispatched"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    callback_id: str = Field(min_length=1, description="The callback.", examples=["cb-2026-000107"])
    agent_id: str = Field(min_length=1, description="The agent the call is connected to.", examples=["agt-0042"])
    phone: str = Field(pattern=E164, description="Number to dial, in E.164.", examples=["+447700900123"])
    dispatched_at: AwareDatetime = Field(description="When it was dispatched.", examples=["2026-03-14T09:12:06Z"])


@event
class CallConnected(Event):
    """Emitted when the agent a callback was dispatched to says the complainant is on the line."""

    type_name = "complaints.routing.CallConnected"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    callback_id: str = Field(min_length=1, description="The callback that connected.", examples=["cb-2026-000107"])
    agent_id: str = Field(
        min_length=1, description="The agent on the call (the one it was dispatched to).", examples=["agt-0042"]
    )
    connected_at: AwareDatetime = Field(
        description="When the agent marked it connected.", examples=["2026-03-14T09:13:02Z"]
    )


# --- the case: transfer, outcome, resolution, escalation -----------------------------------------


@event
class TransferredToPartner(Event):
    """Emitted when an agent hands a case to a partner team with a brief (a warm transfer)."""

    type_name = "complaints.routing.TransferredToPartner"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    team_id: str = Field(
        min_length=1, description="The partner team that now has it.", examples=["team-logistics-uk-south"]
    )
    by_agent_id: str = Field(min_length=1, description="The agent who transferred it.", examples=["agt-0042"])
    brief: HandoffBrief = Field(
        description="What the team needs to know.",
        examples=[
            {
                "customer_asks": "Wants the driver's conduct looked into.",
                "tried": "Confirmed the route and time.",
                "evidence": ["1Z999AA10123456784"],
                "promised": "He will hear the outcome.",
                "promised_by": "2026-03-16T17:00:00Z",
            }
        ],
    )
    transferred_at: AwareDatetime = Field(description="When it was transferred.", examples=["2026-03-14T09:14:00Z"])
    sla_due_at: AwareDatetime = Field(
        description="When the case escalates if the team has not recorded an outcome.",
        examples=["2026-03-14T13:14:00Z"],
    )


@event
class PartnerOutcomeRecorded(Event):
    """Emitted when a partner team records what it did; the complainant hears the customer part."""

    type_name = "complaints.routing.PartnerOutcomeRecorded"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    team_id: str = Field(min_length=1, description="The team that recorded it.", examples=["team-logistics-uk-south"])
    outcome_for_customer: str = Field(
        min_length=1,
        max_length=2000,
        description="The outcome in words fit for the complainant: no third party's personal data.",
        examples=["We spoke to the driver and retrained them on reversing near pavements."],
    )
    internal_note: str = Field(
        default="",
        max_length=5000,
        description="Notes for staff only; never shown to the complainant.",
        examples=["Driver D-311 interviewed by depot manager."],
    )
    recorded_at: AwareDatetime = Field(description="When it was recorded.", examples=["2026-03-14T11:40:00Z"])


@event
class ResolutionActionRequested(Event):
    """Emitted when an agent asks a downstream system to refund, cancel, reship or credit."""

    type_name = "complaints.routing.ResolutionActionRequested"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000077"])
    action_id: str = Field(
        min_length=1,
        description="Id of this action; downstream systems carry it out once per id.",
        examples=["act-2026-000019"],
    )
    action: ResolutionAction = Field(description="What to do.", examples=[ResolutionAction.CANCEL_ITEMS])
    order_id: str = Field(min_length=1, description="The order concerned.", examples=["ord-114-5523190"])
    items: list[ItemQuantity] = Field(
        default_factory=list,
        description="The order lines concerned (may be empty for a goodwill credit).",
        examples=[[{"sku": "SKU-88213-BLU", "quantity": 2}]],
    )
    amount: Money | None = Field(
        default=None,
        description="The amount to refund or credit; none for a reship.",
        examples=[{"value": "7.98", "currency": "GBP"}],
    )
    requested_at: AwareDatetime = Field(description="When it was requested.", examples=["2026-03-14T09:29:00Z"])


@event
class ComplaintResolved(Event):
    """Emitted when an agent resolves a case, with a recap and the next steps promised."""

    type_name = "complaints.routing.ComplaintResolved"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000077"])
    agent_id: str = Field(min_length=1, description="The agent who resolved it.", examples=["agt-0042"])
    recap: str = Field(
        min_length=1,
        max_length=5000,
        description="What was done, for the complainant.",
        examples=["We cancelled the 2 undelivered items."],
    )
    next_steps: list[str] = Field(
        default_factory=list,
        description="What happens next, and when.",
        examples=[["The refund of 7.98 GBP lands within 3 working days."]],
    )
    resolved_at: AwareDatetime = Field(description="When it was resolved.", examples=["2026-03-14T09:29:30Z"])


@event
class Escalated(Event):
    """Emitted when a case goes to the supervisor queue, with the reason."""

    type_name = "complaints.routing.Escalated"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000311"])
    reason: EscalationReason = Field(description="Why it was escalated.", examples=[EscalationReason.REPEATED_CONTACTS])
    detail: str = Field(
        min_length=1,
        max_length=2000,
        description="What happened, in words.",
        examples=["4 contacts within 24h with no progress on the case."],
    )
    escalated_at: AwareDatetime = Field(description="When it was escalated.", examples=["2026-03-14T10:00:00Z"])


@event
class PartnerAcknowledged(Event):
    """Emitted when a partner team acknowledges a transferred case: someone there has read the brief."""

    type_name = "complaints.routing.PartnerAcknowledged"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    team_id: str = Field(min_length=1, description="The team that has the case.", examples=["team-logistics-uk-south"])
    by: str = Field(
        min_length=1, description="Who acknowledged it (the partner user's id).", examples=["partner-ops-17"]
    )
    acknowledged_at: AwareDatetime = Field(description="When it was acknowledged.", examples=["2026-03-14T09:30:00Z"])


@event
class CaseNoteAdded(Event):
    """Emitted when an agent or a partner adds a note to a case: for staff only, never the complainant."""

    type_name = "complaints.routing.CaseNoteAdded"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    note_id: str = Field(
        min_length=1, description="Id of the note (adding it again changes nothing).", examples=["note-5b1f0c"]
    )
    author: str = Field(
        min_length=1, description="Who wrote it: an agent's or partner user's id.", examples=["agt-0042"]
    )
    text: str = Field(
        min_length=1,
        max_length=5000,
        description="The note.",
        examples=["Customer has dashcam footage and will send it on request."],
    )
    added_at: AwareDatetime = Field(description="When it was added.", examples=["2026-03-14T09:20:00Z"])


@event
class RoutedToTeam(Event):
    """Emitted when the routing rules send a new case straight to a team's inbox (not to an agent).

    For example an account-security case: only that team's members may read it or call back.
    """

    type_name = "complaints.routing.RoutedToTeam"

    complaint_id: str = Field(min_length=1, description="The case; the Kafka key.", examples=["c-2026-000042"])
    team_id: str = Field(min_length=1, description="The team whose inbox has it.", examples=["team-account-security"])
    only: bool = Field(description="Only the team's own members may take it (no other agent).", examples=[True])
    routed_at: AwareDatetime = Field(description="When routing sent it there.", examples=["2026-03-14T09:12:04Z"])


# --- private: kept in routing's own log, never published ------------------------------------------


@event
class CaseOpened(Event):
    """Routing took a new complaint: what it is about and who complains (private)."""

    type_name = "complaints.routing.CaseOpened"
    public = False

    complaint_id: str = Field(min_length=1, description="The case.", examples=["c-2026-000042"])
    category: Category = Field(description="What it is about.", examples=[Category.DELIVERY_DRIVER_CONDUCT])
    region: str | None = Field(default=None, description="The complainant's region, if known.", examples=["uk-south"])
    assurance: Assurance = Field(
        description="How sure we are of the complainant's identity.", examples=[Assurance.AUTHENTICATED]
    )
    team_id: str | None = Field(
        default=None,
        description="The partner team the routing rules send it straight to, if any.",
        examples=["team-account-security"],
    )
    opened_at: AwareDatetime = Field(description="When routing took it.", examples=["2026-03-14T09:12:04Z"])
    # Added after v1 shipped, hence the default: older messages lack it.
    order_id: str | None = Field(
        default=None,
        description="The order the complaint is about, if any: resolution actions on the case may name only this one.",
        examples=["114-5523190-0012345"],
    )


@event
class WorkQueued(Event):
    """Work waits for a fitting agent, with what it needs: a callback or a reopened case (private)."""

    type_name = "complaints.routing.WorkQueued"
    public = False

    complaint_id: str = Field(min_length=1, description="The case.", examples=["c-2026-000042"])
    callback_id: str | None = Field(
        default=None, description="The callback, if it is one.", examples=["cb-2026-000107"]
    )
    phone: str | None = Field(
        default=None, pattern=E164, description="Number to dial, for a callback.", examples=["+447700900123"]
    )
    skill: Category = Field(description="The skill the agent needs.", examples=[Category.DELIVERY_DRIVER_CONDUCT])
    language: str | None = Field(
        pattern=BCP47, description="The language of the conversation; none: any.", examples=["en-GB"]
    )
    region: str | None = Field(default=None, description="The complainant's region, if known.", examples=["uk-south"])
    channel: Channel | None = Field(
        default=Channel.PHONE, description="The channel the agent must work; none: any.", examples=[Channel.PHONE]
    )
    team: str | None = Field(
        default=None, description="Only this team's members may take it.", examples=["team-account-security"]
    )
    queued_at: AwareDatetime = Field(description="When it was queued.", examples=["2026-03-14T09:12:06Z"])
    provisional: bool = Field(
        default=False,
        description="Written work from a complainant nobody has verified (see AgentAssigned.provisional).",
        examples=[False],
    )


@event
class QueuedWorkRemoved(Event):
    """A queued callback was cancelled before any agent took it (private)."""

    type_name = "complaints.routing.QueuedWorkRemoved"
    public = False

    complaint_id: str = Field(min_length=1, description="The case.", examples=["c-2026-000042"])
    callback_id: str | None = Field(
        default=None, description="The callback, if it was one.", examples=["cb-2026-000107"]
    )
    removed_at: AwareDatetime = Field(description="When it left the queue.", examples=["2026-03-14T09:12:41Z"])


@event
class AgentReleased(Event):
    """An agent is done with a case (resolved, transferred or call ended): load drops (private)."""

    type_name = "complaints.routing.AgentReleased"
    public = False

    complaint_id: str = Field(min_length=1, description="The case.", examples=["c-2026-000042"])
    agent_id: str = Field(min_length=1, description="The agent.", examples=["agt-0042"])
    released_at: AwareDatetime = Field(
        description="When the agent was done with it.", examples=["2026-03-14T09:14:00Z"]
    )
    reassigned: bool = Field(
        default=False,
        description="Taken over by another agent (a callback they could not take now); not counted as a handling time.",
        examples=[False],
    )


@event
class ContactRecorded(Event):
    """The complainant wrote or called again on the case (private; feeds the repeat rule)."""

    type_name = "complaints.routing.ContactRecorded"
    public = False

    complaint_id: str = Field(min_length=1, description="The case.", examples=["c-2026-000311"])
    contact_id: str = Field(
        min_length=1, description="The message or callback id.", examples=["<CAH7kR3u9xqT2w@mail.example.com>"]
    )
    contacted_at: AwareDatetime = Field(description="When the contact came in.", examples=["2026-03-14T09:40:00Z"])


@event
class CaseReopened(Event):
    """The complainant said the case is not closed: it is open again (private)."""

    type_name = "complaints.routing.CaseReopened"
    public = False

    complaint_id: str = Field(min_length=1, description="The case.", examples=["c-2026-000042"])
    reopened_at: AwareDatetime = Field(description="When it was reopened.", examples=["2026-03-15T08:00:00Z"])


@event
class CaseClosed(Event):
    """The complainant confirmed the case closed, or never answered (private; notify decides)."""

    type_name = "complaints.routing.CaseClosed"
    public = False

    complaint_id: str = Field(min_length=1, description="The case.", examples=["c-2026-000042"])
    confirmed: bool = Field(
        description="True if the complainant said it is closed; false if they never answered.", examples=[True]
    )
    closed_at: AwareDatetime = Field(description="When it was closed.", examples=["2026-03-15T08:00:00Z"])


@event
class PersonEscalated(Event):
    """A supervisor must step in for a person with no case open (notify's loop guard asked) (private)."""

    type_name = "complaints.routing.PersonEscalated"
    public = False

    recipient: str = Field(
        min_length=1,
        max_length=320,
        description="The person: a customer or seller id, or an address.",
        examples=["sel-48213"],
    )
    address: str = Field(
        min_length=1,
        max_length=320,
        description="How they were being reached.",
        examples=["maria.chen@willowandclay.example"],
    )
    reason: EscalationReason = Field(description="Why.", examples=[EscalationReason.NOTIFICATION_BLOCKED])
    detail: str = Field(
        min_length=1,
        max_length=2000,
        description="What happened, for staff.",
        examples=["seller_login_reminder asks to log in but the account is locked."],
    )
    escalated_at: AwareDatetime = Field(description="When.", examples=["2026-03-15T08:00:00Z"])

    def subject(self) -> str:
        return self.recipient
