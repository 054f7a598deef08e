"""Routing's use cases: each loads a stream, decides with the pure domain, and appends.

A use case touching two streams (a case and the roster) appends to the case first: if the
process dies between the two, the redelivered event or the retried request appends nothing
new to the case (same cause, same commit id) and carries on with the roster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from contracts.intake import (
    Assurance,
    CallbackCancelled,
    CallbackRequested,
    Channel,
    ComplaintFiled,
    ComplaintLinked,
    CustomerMessageReceived,
)
from contracts.notify import ComplaintClosedUnconfirmed, ComplaintReopened, CustomerConfirmedClosed, EscalationRequested
from contracts.routing import EscalationReason
from services.kernel.commands import Snapshots, current, execute
from services.kernel.eventlog import EventLog
from services.kernel.eventstore import Cause
from services.routing.adapters.orders import OrderPrices
from services.routing.domain import (
    CASE,
    PERSON,
    ROSTER,
    ROSTER_STREAM,
    AcknowledgeTransfer,
    ActionPolicy,
    AddNote,
    Agent,
    AssignCase,
    AssignForCallback,
    BriefDraft,
    CallbackOnCase,
    CancelQueuedCallback,
    Case,
    ChangeAvailability,
    Close,
    ConnectCall,
    Escalate,
    EscalatePerson,
    FinishCase,
    FireDueTimers,
    Needs,
    NotFound,
    OpenCase,
    RecordContact,
    RecordPartnerOutcome,
    RegisterAgent,
    RegisterPartnerTeam,
    ReleaseAgent,
    Reopen,
    RequestResolutionAction,
    Resolve,
    Roster,
    RouteBack,
    Team,
    TransferToPartner,
    callbacks_on,
    case_stream,
)
from services.routing.rules import AgentsWithSkill, PartnerTeam, Rules, Supervisor, route

#: The team whose members take the cases the rules send to a supervisor.
SUPERVISORS = "supervisors"


@dataclasses.dataclass(frozen=True)
class GoodwillLimits:
    """Goodwill credits per case: up to ``alone`` an agent gives them; above, a supervisor, up to ``most``."""

    alone: Decimal = Decimal("25.00")
    most: Decimal = Decimal("250.00")


@dataclasses.dataclass(frozen=True)
class RepeatRule:
    """How many contacts within what window, with no progress, escalate a case."""

    max_contacts: int = 4
    window: timedelta = timedelta(hours=24)


def step(cause: Cause, name: str) -> Cause:
    """The same cause for a second append to one stream: its own commit id, still deterministic."""
    return dataclasses.replace(cause, handler=f"{cause.handler}/{name}")


class Routing:
    """The routing use cases, on the service's event log and routing rules.

    Every roster command reads the one roster stream: from ``snapshots``, not from its start.
    """

    def __init__(
        self,
        store: EventLog,
        rules: Rules,
        orders: OrderPrices,
        repeats: RepeatRule = RepeatRule(),
        goodwill: GoodwillLimits = GoodwillLimits(),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        *,
        snapshots: Snapshots,
    ) -> None:
        self.store, self.rules, self.orders, self.repeats, self.clock = store, rules, orders, repeats, clock
        self.goodwill, self.snapshots = goodwill, snapshots

    # --- reading streams ------------------------------------------------------------------------

    async def roster(self) -> Roster:
        state, _ = await self.snapshots.load(self.store, ROSTER, ROSTER_STREAM)
        return state

    async def case(self, complaint_id: str) -> Case:
        case, _ = await current(self.store, CASE, case_stream(complaint_id))
        if case.complaint_id is None:
            raise NotFound("case", complaint_id)
        return case

    async def callbacks(self, case: Case) -> list[CallbackOnCase]:
        """The case's callbacks, dispatched (from the roster) or connected (from the case)."""
        return callbacks_on(case, await self.roster())

    async def team(self, team_id: str) -> Team:
        if (team := (await self.roster()).teams.get(team_id)) is None:
            raise NotFound("partner team", team_id)
        return team

    def needs(self, case: Case, language: str | None, phone: bool) -> Needs:
        """Who may take the case, from the rules: agents with the skill, or a team's members."""
        target = route(self.rules, case.category, case.region, case.assurance)
        team = (
            target.team_id
            if isinstance(target, PartnerTeam)
            else SUPERVISORS
            if isinstance(target, Supervisor)
            else None
        )
        skill = target.skill if isinstance(target, AgentsWithSkill) else case.category
        return Needs(
            skill=skill, language=language, region=case.region, team=team, channel=Channel.PHONE if phone else None
        )

    async def _case(self, complaint_id: str, command: object, cause: Cause, new_stream: bool = False) -> Case:
        try:
            outcome = await execute(
                self.store, CASE, case_stream(complaint_id), command, cause, self.clock(), new_stream=new_stream
            )
        except NotFound as exc:  # the pure domain does not know which stream it was given
            raise NotFound("case", complaint_id) if exc.kind == "case" else exc from None
        return outcome.state

    async def _roster(self, command: object, cause: Cause) -> Roster:
        return (await execute(self.store, ROSTER, ROSTER_STREAM, command, cause, self.clock(), self.snapshots)).state

    # --- from intake's events -------------------------------------------------------------------

    async def open_case(self, filed: ComplaintFiled, cause: Cause) -> None:
        """A filed complaint becomes a case, sent where the rules say: an agent who fits (worked
        in writing until someone calls), a partner team's inbox, or the supervisors."""
        target = route(self.rules, filed.category, None, filed.assurance)
        case = await self._case(
            filed.complaint_id,
            OpenCase(
                complaint_id=filed.complaint_id,
                category=filed.category,
                assurance=filed.assurance,
                target=target,
                order_id=filed.order_id,
            ),
            cause,
            new_stream=True,  # a complaint just filed: its case is new
        )
        if isinstance(target, AgentsWithSkill):
            await self._roster(
                AssignCase(
                    complaint_id=filed.complaint_id,
                    needs=self.needs(case, None, phone=False),
                    provisional=filed.assurance == Assurance.UNVERIFIED,
                ),
                cause,
            )

    async def assign_callback(self, requested: CallbackRequested, cause: Cause) -> None:
        """ "Call me": the case's agent if free, else the fitting agent with the fewest cases (then
        the longest idle), else the queue."""
        # Intake keys both events by complaint id, so its ComplaintFiled came first on the same
        # partition: a case missing here means that event was lost or dead-lettered. Opening a
        # case ourselves is impossible (no category); retrying would block the partition for
        # ever. So NotFound: the callback goes to the DLQ, to be redriven.
        case = await self.case(requested.complaint_id)
        await self._roster(
            AssignForCallback(
                complaint_id=requested.complaint_id,
                callback_id=requested.callback_id,
                phone=requested.phone,
                needs=self.needs(case, requested.preferred_language, phone=True),
            ),
            cause,
        )
        await self._contact(requested.complaint_id, requested.callback_id, cause)

    async def cancel_callback(self, cancelled: CallbackCancelled, cause: Cause) -> None:
        await self._roster(
            CancelQueuedCallback(complaint_id=cancelled.complaint_id, callback_id=cancelled.callback_id), cause
        )

    async def customer_wrote(self, message: CustomerMessageReceived | ComplaintLinked, cause: Cause) -> None:
        """Another message or contact on the case: counts towards the repeated-contacts rule."""
        contact_id = getattr(message, "message_id", None) or message.contact_id
        await self._contact(message.complaint_id, contact_id, cause)

    async def _contact(self, complaint_id: str, contact_id: str, cause: Cause) -> None:
        await self._case(
            complaint_id,
            RecordContact(contact_id=contact_id, max_contacts=self.repeats.max_contacts, window=self.repeats.window),
            step(cause, "contact"),
        )

    # --- from notify's events -------------------------------------------------------------------

    async def reopen(self, reopened: ComplaintReopened, cause: Cause) -> None:
        """ "No, still a problem": the same case opens again, back to its agent if free, else queued."""
        case = await self._case(reopened.complaint_id, Reopen(), cause)
        await self._roster(
            RouteBack(complaint_id=reopened.complaint_id, needs=self.needs(case, None, phone=False)), cause
        )

    async def close(self, answer: CustomerConfirmedClosed | ComplaintClosedUnconfirmed, cause: Cause) -> None:
        await self._case(answer.complaint_id, Close(confirmed=isinstance(answer, CustomerConfirmedClosed)), cause)

    async def escalation_requested(self, asked: EscalationRequested, cause: Cause) -> None:
        """Notify's loop guard gave up reaching the person by machine: a supervisor must."""
        detail = f"notify held back {asked.template!r} ({asked.reason}): {asked.detail}"[:2000]
        if asked.complaint_id is not None:
            await self._case(
                asked.complaint_id, Escalate(reason=EscalationReason.NOTIFICATION_BLOCKED, detail=detail), cause
            )
        else:  # e.g. a seller's account reminders, before any complaint: still a person to call
            await execute(
                self.store,
                PERSON,
                f"person-{asked.recipient}",
                EscalatePerson(recipient=asked.recipient, address=asked.address, detail=detail),
                cause,
                self.clock(),
            )

    # --- agents' and partners' actions ------------------------------------------------------------

    async def transfer(self, complaint_id: str, team_id: str, agent_id: str, brief: BriefDraft, cause: Cause) -> Case:
        """Warm transfer with the brief; the agent's capacity frees up while the partner works."""
        team = await self.team(team_id)
        case = await self._case(complaint_id, TransferToPartner(team=team, by_agent_id=agent_id, brief=brief), cause)
        await self._roster(FinishCase(complaint_id=complaint_id), cause)
        return case

    async def acknowledge(self, complaint_id: str, team_id: str, by: str, cause: Cause) -> Case:
        return await self._case(complaint_id, AcknowledgeTransfer(team_id=team_id, by=by), cause)

    async def add_note(self, complaint_id: str, note: AddNote, cause: Cause) -> Case:
        return await self._case(complaint_id, note, cause)

    async def record_outcome(self, complaint_id: str, command: RecordPartnerOutcome, cause: Cause) -> Case:
        """The partner's outcome sends the case back to its agent (or the queue) to resolve."""
        case = await self._case(complaint_id, command, cause)
        await self._roster(
            RouteBack(
                complaint_id=complaint_id, why="partner outcome recorded", needs=self.needs(case, None, phone=False)
            ),
            cause,
        )
        return case

    async def request_action(
        self, complaint_id: str, command: RequestResolutionAction, by_supervisor: bool, cause: Cause
    ) -> Case:
        """The case checks the action against its order as the order system has it now, and the policy."""
        policy = ActionPolicy(
            order=await self.orders.order(command.order_id),
            by_supervisor=by_supervisor,
            goodwill_alone=self.goodwill.alone,
            goodwill_max=self.goodwill.most,
        )
        return await self._case(complaint_id, command.model_copy(update={"policy": policy}), cause)

    async def resolve(self, complaint_id: str, command: Resolve, cause: Cause) -> Case:
        """Resolve with a recap; the agent is free of the case and takes the next queued work."""
        case = await self._case(complaint_id, command, cause)
        await self._roster(FinishCase(complaint_id=complaint_id), cause)
        return case

    async def connect_call(self, complaint_id: str, callback_id: str, agent_id: str, cause: Cause) -> Case:
        """The agent has the complainant on the line; the roster says whom the callback went to."""
        dispatch = (await self.roster()).dispatched.get(callback_id)
        return await self._case(
            complaint_id, ConnectCall(callback_id=callback_id, agent_id=agent_id, dispatch=dispatch), cause
        )

    async def escalate(self, complaint_id: str, command: Escalate, cause: Cause) -> Case:
        return await self._case(complaint_id, command, cause)

    async def release(self, complaint_id: str, agent_id: str, cause: Cause) -> Agent:
        """The agent is done with the case for now (call over); it stays open, e.g. with a partner."""
        await self.case(complaint_id)
        return (await self._roster(ReleaseAgent(complaint_id=complaint_id, agent_id=agent_id), cause)).agents[agent_id]

    # --- the roster -----------------------------------------------------------------------------

    async def register_agent(self, command: RegisterAgent, cause: Cause) -> Agent:
        return (await self._roster(command, cause)).agents[command.agent_id]

    async def change_availability(self, command: ChangeAvailability, cause: Cause) -> Agent:
        return (await self._roster(command, cause)).agents[command.agent_id]

    async def register_partner_team(self, command: RegisterPartnerTeam, cause: Cause) -> Team:
        return (await self._roster(command, cause)).teams[command.team_id]

    # --- timers -----------------------------------------------------------------------------------

    async def fire_due_timers(self, complaint_ids: list[str], now: datetime) -> int:
        """Fire the due timers of these cases (the timer index's candidates); how many fired.

        The case decides what is due and records each firing as an event, so a second ticker, a
        restart or a stale index fires nothing twice.
        """
        fired = 0
        for complaint_id in complaint_ids:
            cause = Cause.of_request(f"timers@{now.isoformat()}", "fire_due_timers")
            outcome = await execute(self.store, CASE, case_stream(complaint_id), FireDueTimers(), cause, now)
            fired += 0 if outcome.commit is None else len(outcome.commit.events)
        return fired
