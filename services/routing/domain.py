"""Routing's decisions: roster and callback queue; each case's transfer, resolution, escalation.

Two kinds of stream. The one ``roster`` stream holds agents, teams, load and the queue: every
assignment is decided on it, so its optimistic concurrency check is what keeps an agent within
capacity and the queue in order when callbacks arrive together. Each ``case-<complaint_id>``
stream holds what happens to one case after that.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import reduce
from typing import Literal

from pydantic import Field

from contracts.envelope import Event
from contracts.intake import BCP47, E164, Assurance, Category, Channel
from contracts.routing import (
    AgentAssigned, AgentAvailabilityChanged, AgentRegistered, AgentReleased, Availability,
    CallbackDispatched, CallbackQueued, CallConnected, CaseClosed, CaseNoteAdded, CaseOpened, CaseReopened,
    ComplaintResolved, ContactRecorded, Escalated, EscalationReason, HandoffBrief, ItemQuantity, LanguageTag,
    Money, PartnerAcknowledged, PartnerOutcomeRecorded, PersonEscalated, PartnerTeamRegistered, QueuedWorkRemoved,
    ResolutionAction,
    ResolutionActionRequested, RoutedToTeam, TransferredToPartner, WorkQueued,
)
from services.kernel.domain import Aggregate, Value
from services.kernel.errors import DomainError
from services.kernel.fields import Id, Line
from services.routing.rules import PartnerTeam as PartnerTeamTarget
from services.routing.rules import Supervisor, Target

ROSTER_STREAM = "roster"
#: Used for the wait estimate until some handling times are known.
DEFAULT_HANDLING = timedelta(minutes=5)
RECENT_HANDLINGS = 20


def case_stream(complaint_id: str) -> str:
    """The stream of one case's routing events."""
    return f"case-{complaint_id}"



# --- errors: a stable code for the API and a message a person can act on --------------------------

class NotFound(DomainError):
    """An unknown agent, team or case (404); ``id`` is the one asked for."""

    code = "not_found"
    status = 404

    def __init__(self, kind: str, id_: str) -> None:
        super().__init__(f"There is no {kind} {id_!r}.")
        self.kind, self.id = kind, id_


class IllegalState(DomainError):
    """The command does not fit the case's current state (409)."""

    code = "illegal_state"

    def __init__(self, action: str, current: str, why: str = "") -> None:
        super().__init__(f"Cannot {action}: the case is {current}{'; ' + why if why else ''}.")
        self.current = current

    def extensions(self) -> dict[str, str]:
        return {"current_state": self.current}


class InvalidField(DomainError):
    """A field of the request breaks a rule; ``field`` names it for the page (422)."""

    code = "invalid_field"
    status = 422

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}.")
        self.field = field


class NeedsSupervisor(DomainError):
    """Allowed by policy only with a supervisor's approval (403 for an agent)."""

    code = "needs_supervisor"
    status = 403


class MissingField(DomainError):
    """A required field was left empty (422); ``field`` names it."""

    code = "missing_field"
    status = 422

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field} is required: {rule}.")
        self.field = field


# --- the roster (stream "roster") ---------------------------------------------------------------

class Needs(Value):
    """What an agent must have to take a piece of work.

    ``team``: only members of that team may take it (a case the rules send to a team), whatever
    their skills. ``language`` or ``channel`` None: any (a filed complaint is worked in writing
    until someone calls).
    """

    skill: Category
    language: str | None = Field(default="en", pattern=BCP47)
    region: str | None = None
    channel: Channel | None = Channel.PHONE
    team: str | None = None


class Agent(Value):
    """One agent: what they can do, whether they are available, and the cases they hold."""

    agent_id: str
    skills: frozenset[Category]
    languages: tuple[str, ...]
    regions: tuple[str, ...]
    channels: frozenset[Channel]
    capacity: int
    teams: frozenset[str] = frozenset()
    availability: Availability = Availability.OFFLINE
    #: When the agent last became free (available, or done with a case); among agents with as
    #: few cases, the longest idle goes first.
    idle_since: datetime | None = None
    #: complaint id -> when it was assigned: the agent's load.
    cases: dict[str, datetime] = {}
    #: The cases among ``cases`` that are provisional written work (see ``load``).
    provisional: frozenset[str] = frozenset()

    def load(self, needs: Needs) -> int:
        """How many cases count against capacity for this work. Written work from complainants
        nobody verified does not count for a call: junk filings must never keep a real
        callback waiting, and written work can wait while the agent is on the phone."""
        return len(self.cases) - (len(self.provisional) if needs.channel == Channel.PHONE else 0)

    def fits(self, needs: Needs) -> bool:
        if needs.team is not None and needs.team not in self.teams:
            return False
        if needs.team is None and needs.skill not in self.skills:
            return False
        if needs.channel is not None and needs.channel not in self.channels:
            return False
        if needs.language is not None and not any(
                tag.split("-")[0].lower() == needs.language.split("-")[0].lower()
                for tag in self.languages):
            return False
        return not self.regions or needs.region is None or needs.region in self.regions


class Team(Value):
    """A partner team as routing needs it to accept a transfer."""

    team_id: str
    categories: frozenset[Category]
    regions: tuple[str, ...] = ()
    response_sla_minutes: int
    restricted: bool = False


class QueuedWork(Value):
    """A callback, a filed or a reopened case, waiting for a fitting agent."""

    complaint_id: str
    callback_id: str | None
    phone: str | None
    needs: Needs
    queued_at: datetime
    provisional: bool = False


class Dispatch(Value):
    """A callback given to an agent: kept while the agent holds the case, so that only they may
    say the call connected (the case stream never sees dispatches: they are decided here)."""

    callback_id: str
    complaint_id: str
    agent_id: str
    dispatched_at: datetime


class Roster(Value):
    """Agents, teams, the queue (oldest first) and recent handling times."""

    agents: dict[str, Agent] = {}
    teams: dict[str, Team] = {}
    #: Callbacks first, in the order they came; then written work, oldest first.
    queue: tuple[QueuedWork, ...] = ()
    handling: tuple[timedelta, ...] = ()
    #: complaint id -> the agent who last had it (a reopened case goes back to them), for the
    #: ``LAST_AGENTS_KEPT`` complaints assigned last: the roster holds work in hand, not history.
    last_agent: dict[str, str] = {}
    #: callback id -> its dispatch, until its agent is released from the case (bounded by the
    #: work in hand).
    dispatched: dict[str, Dispatch] = {}


class RegisterAgent(Value):
    """Add an agent to the roster, or change their skills, languages, regions or capacity."""

    agent_id: Id
    name: Line
    skills: tuple[Category, ...] = Field(min_length=1, max_length=len(Category))
    languages: tuple[LanguageTag, ...] = Field(min_length=1, max_length=20)
    regions: tuple[Id, ...] = Field((), max_length=50)
    channels: tuple[Channel, ...] = Field((Channel.PHONE,), max_length=len(Channel))
    capacity: int = Field(ge=1, le=50)  # more drains the whole queue into one person
    teams: tuple[Id, ...] = Field((), max_length=50)


class ChangeAvailability(Value):
    """An agent becomes available, goes on a call, into after-call work or offline."""

    agent_id: str = Field(min_length=1)
    availability: Availability


class RegisterPartnerTeam(Value):
    """Add a partner team, or change what it takes."""

    team_id: Id
    name: Line
    categories: tuple[Category, ...] = Field(min_length=1, max_length=len(Category))
    regions: tuple[Id, ...] = Field((), max_length=50)
    response_sla_minutes: int = Field(ge=1, le=43_200)  # at most 30 days
    restricted: bool = False


class AssignForCallback(Value):
    """"Call me": give the callback at once to the best fitting agent, or queue it."""

    complaint_id: str = Field(min_length=1)
    callback_id: str = Field(min_length=1)
    phone: str = Field(pattern=E164)
    needs: Needs


class AssignCase(Value):
    """A filed complaint: give it to the best fitting agent under capacity, or queue it."""

    complaint_id: str = Field(min_length=1)
    needs: Needs
    #: From a complainant nobody verified: a call may take its place (``Agent.load``).
    provisional: bool = False


class CancelQueuedCallback(Value):
    """Take a cancelled callback out of the queue (nothing to do if it was dispatched already)."""

    complaint_id: str = Field(min_length=1)
    callback_id: str = Field(min_length=1)


class ReleaseAgent(Value):
    """The agent is done with the case (call over, resolved or transferred): capacity frees up."""

    complaint_id: str = Field(min_length=1)
    agent_id: str = Field(min_length=1)


class FinishCase(Value):
    """The agents are done with the case (resolved, or handed to a partner): whoever holds it is
    free of it, and queued work for it is dropped."""

    complaint_id: str = Field(min_length=1)


class RouteBack(Value):
    """A case comes back (reopened, or a partner recorded its outcome): to the agent who had it if
    they can take it, else to another who fits, else the queue. ``why`` says which, in words."""

    complaint_id: str = Field(min_length=1)
    needs: Needs
    why: str = "reopened"


def pick_agent(roster: Roster, needs: Needs, now: datetime) -> str | None:
    """The available agent who fits ``needs`` and is under capacity with the fewest cases (among
    equals, the one idle the longest), if any."""
    free = [a for a in roster.agents.values() if a.availability == Availability.AVAILABLE
            and a.load(needs) < a.capacity and a.fits(needs)]
    if not free:
        return None
    # An agent holding fewer cases goes first; among equals the one idle the longest.
    return min(free, key=lambda a: (a.load(needs), a.idle_since or now, a.agent_id)).agent_id


def estimated_wait(roster: Roster, needs: Needs, position: int) -> timedelta:
    """How long the ``position``-th in the queue may wait, from recent handling times."""
    recent = roster.handling or (DEFAULT_HANDLING,)
    average = sum(recent, timedelta()) / len(recent)
    staffed = sum(1 for a in roster.agents.values()
                  if a.availability != Availability.OFFLINE and a.fits(needs))
    return average * position / max(1, staffed)


def _assign(work: QueuedWork, agent_id: str, now: datetime, reason: str) -> list[Event]:
    assigned: list[Event] = [AgentAssigned(complaint_id=work.complaint_id, agent_id=agent_id,
                                           callback_id=work.callback_id, assigned_at=now,
                                           reason=reason, provisional=work.provisional)]
    if work.callback_id and work.phone:
        assigned.append(CallbackDispatched(complaint_id=work.complaint_id,
                                           callback_id=work.callback_id, agent_id=agent_id,
                                           phone=work.phone, dispatched_at=now))
    return assigned


def _queue(roster: Roster, work: QueuedWork, now: datetime) -> list[Event]:
    needs = work.needs
    queued: list[Event] = [WorkQueued(complaint_id=work.complaint_id, callback_id=work.callback_id,
                                      phone=work.phone, skill=needs.skill, language=needs.language,
                                      region=needs.region, channel=needs.channel, team=needs.team,
                                      queued_at=now, provisional=work.provisional)]
    if work.callback_id:
        position = sum(1 for w in roster.queue if w.callback_id) + 1
        wait = estimated_wait(roster, needs, position)
        queued.append(CallbackQueued(complaint_id=work.complaint_id, callback_id=work.callback_id,
                                     position=position, estimated_wait_s=round(wait.total_seconds()),
                                     queued_at=now))
    return queued


def holder(roster: Roster, complaint_id: str) -> Agent | None:
    """The agent who holds the case now, if any."""
    return next((a for a in roster.agents.values() if complaint_id in a.cases), None)


def _queued(roster: Roster, complaint_id: str) -> list[QueuedWork]:
    return [w for w in roster.queue if w.complaint_id == complaint_id]


def _assign_or_queue(state: Roster, work: QueuedWork, now: datetime, reason: str) -> list[Event]:
    if (agent_id := pick_agent(state, work.needs, now)) is None:
        return _queue(state, work, now)
    return _assign(work, agent_id, now, reason)


def _callback(state: Roster, command: AssignForCallback, now: datetime) -> list[Event]:
    """A callback goes to the agent holding the case if they are free to call now; otherwise it
    is new phone work for the best fitting agent (who then holds the case) or the queue."""
    # A repeat of the same request (a redelivery, a redrive) decides again, but its commit has
    # the id of the first one's, so the event log keeps only the first (kernel/eventstore.py).
    if command.callback_id in state.dispatched or any(w.callback_id == command.callback_id for w in state.queue):
        return []
    owner = holder(state, command.complaint_id)
    if owner is not None and owner.availability == Availability.AVAILABLE and (
            command.complaint_id not in owner.provisional or owner.load(command.needs) < owner.capacity):
        # (a case held as provisional written work becomes phone work: it must fit the capacity)
        return [CallbackDispatched(complaint_id=command.complaint_id, callback_id=command.callback_id,
                                   agent_id=owner.agent_id, phone=command.phone, dispatched_at=now)]
    before: list[Event] = []
    if owner is not None:  # busy or away: calling at once matters more than who calls
        before.append(AgentReleased(complaint_id=command.complaint_id, agent_id=owner.agent_id,
                                    released_at=now, reassigned=True))
    before += [QueuedWorkRemoved(complaint_id=w.complaint_id, callback_id=None, removed_at=now)
               for w in _queued(state, command.complaint_id) if w.callback_id is None]
    state = reduce(evolve_roster, before, state)
    work = QueuedWork(**command.model_dump(), queued_at=now)
    return [*before, *_assign_or_queue(state, work, now, "fewest cases, then longest idle, among "
                                                          "agents with the skill, language and region")]


def drain(roster: Roster, now: datetime) -> list[Event]:
    """Assign queued work, oldest first, to the agents now free for it."""
    events: list[Event] = []
    for work in roster.queue:
        if (agent_id := pick_agent(roster, work.needs, now)) is not None:
            assigned = _assign(work, agent_id, now, "first fitting agent free for queued work")
            events += assigned
            roster = reduce(evolve_roster, assigned, roster)
    return events


def decide_roster(state: Roster, command: object, now: datetime) -> list[Event]:
    match command:
        case RegisterAgent():
            registered = AgentRegistered(**command.model_dump(), registered_at=now)
            return [registered, *drain(evolve_roster(state, registered), now)]
        case RegisterPartnerTeam():
            return [PartnerTeamRegistered(**command.model_dump(), registered_at=now)]
        case ChangeAvailability():
            agent = _agent(state, command.agent_id)
            if agent.availability == command.availability:
                return []
            changed = AgentAvailabilityChanged(**command.model_dump(), changed_at=now)
            return [changed, *drain(evolve_roster(state, changed), now)]
        case AssignForCallback():
            return _callback(state, command, now)
        case AssignCase():
            if holder(state, command.complaint_id) or _queued(state, command.complaint_id):
                return []
            work = QueuedWork(complaint_id=command.complaint_id, callback_id=None, phone=None,
                              needs=command.needs, queued_at=now, provisional=command.provisional)
            return _assign_or_queue(state, work, now, "fewest cases, then longest idle, among "
                                                      "available agents who fit")
        case CancelQueuedCallback():
            if not any(w.callback_id == command.callback_id for w in state.queue):
                return []
            return [QueuedWorkRemoved(**command.model_dump(), removed_at=now)]
        case ReleaseAgent():
            if command.complaint_id not in _agent(state, command.agent_id).cases:
                return []
            released = AgentReleased(**command.model_dump(), released_at=now)
            return [released, *drain(evolve_roster(state, released), now)]
        case FinishCase():
            finished: list[Event] = [
                QueuedWorkRemoved(complaint_id=w.complaint_id, callback_id=w.callback_id,
                                  removed_at=now) for w in _queued(state, command.complaint_id)]
            if (owner := holder(state, command.complaint_id)) is not None:
                finished.append(AgentReleased(complaint_id=command.complaint_id,
                                              agent_id=owner.agent_id, released_at=now))
            return [*finished, *drain(reduce(evolve_roster, finished, state), now)] if finished else []
        case RouteBack():
            if holder(state, command.complaint_id) or _queued(state, command.complaint_id):
                return []
            work = QueuedWork(complaint_id=command.complaint_id, callback_id=None, phone=None,
                              needs=command.needs, queued_at=now)
            own = state.agents.get(state.last_agent.get(command.complaint_id, ""))
            if own and own.availability == Availability.AVAILABLE and len(own.cases) < own.capacity:
                return _assign(work, own.agent_id, now, f"{command.why}: back to the agent who had it")
            if (agent_id := pick_agent(state, command.needs, now)) is not None:
                return _assign(work, agent_id, now, f"{command.why}: its agent cannot take it now")
            return _queue(state, work, now)
    raise TypeError(f"the roster has no command {type(command).__name__}")


def _agent(state: Roster, agent_id: str) -> Agent:
    if (agent := state.agents.get(agent_id)) is None:
        raise NotFound("agent", agent_id)
    return agent


def _with_agent(state: Roster, agent: Agent, **update) -> Roster:
    return state.model_copy(update={"agents": {**state.agents,
                                               agent.agent_id: agent.model_copy(update=update)}})


#: Complaints whose last agent the roster remembers (a case reopened after more complaints than
#: this were assigned goes to any agent who fits, as a new one would).
LAST_AGENTS_KEPT = 5000


def _remember(last_agent: dict[str, str], complaint_id: str, agent_id: str) -> dict[str, str]:
    kept = {k: v for k, v in last_agent.items() if k != complaint_id}
    kept[complaint_id] = agent_id  # newest last: the oldest go first
    return dict(list(kept.items())[-LAST_AGENTS_KEPT:]) if len(kept) > LAST_AGENTS_KEPT else kept


def evolve_roster(state: Roster, event: Event) -> Roster:
    agents = state.agents
    match event:
        case AgentRegistered():
            old = agents.get(event.agent_id)
            agent = Agent(agent_id=event.agent_id, skills=frozenset(event.skills),
                          languages=tuple(event.languages), regions=tuple(event.regions),
                          channels=frozenset(event.channels), capacity=event.capacity,
                          teams=frozenset(event.teams),
                          **({} if old is None else old.model_dump(
                              include={"availability", "idle_since", "cases"})))
            return state.model_copy(update={"agents": {**agents, agent.agent_id: agent}})
        case AgentAvailabilityChanged() if event.agent_id in agents:
            agent = agents[event.agent_id]
            became_free = event.availability == Availability.AVAILABLE != agent.availability
            return _with_agent(state, agent, availability=event.availability,
                               idle_since=event.changed_at if became_free else agent.idle_since)
        case PartnerTeamRegistered():
            team = Team(team_id=event.team_id, categories=frozenset(event.categories),
                        regions=tuple(event.regions), restricted=event.restricted,
                        response_sla_minutes=event.response_sla_minutes)
            return state.model_copy(update={"teams": {**state.teams, team.team_id: team}})
        case AgentAssigned() if event.agent_id in agents:
            agent = agents[event.agent_id]
            state = _with_agent(state, agent, idle_since=event.assigned_at,
                                cases={**agent.cases, event.complaint_id: event.assigned_at},
                                provisional=agent.provisional | {event.complaint_id} if event.provisional
                                else agent.provisional - {event.complaint_id})
            return state.model_copy(update=dict(
                queue=tuple(w for w in state.queue if not _same_work(w, event.complaint_id,
                                                                     event.callback_id)),
                last_agent=_remember(state.last_agent, event.complaint_id, event.agent_id)))
        case CallbackDispatched():
            dispatch = Dispatch(callback_id=event.callback_id, complaint_id=event.complaint_id,
                                agent_id=event.agent_id, dispatched_at=event.dispatched_at)
            state = state.model_copy(update={"dispatched": {**state.dispatched, event.callback_id: dispatch}})
            if (agent := agents.get(event.agent_id)) is not None and event.complaint_id in agent.provisional:
                # the complainant asked for a call: a person on the phone is not provisional work
                state = _with_agent(state, agent, provisional=agent.provisional - {event.complaint_id})
            return state
        case WorkQueued():
            needs = Needs(skill=event.skill, language=event.language, region=event.region,
                          channel=event.channel, team=event.team)
            work = QueuedWork(complaint_id=event.complaint_id, callback_id=event.callback_id,
                              phone=event.phone, needs=needs, queued_at=event.queued_at,
                              provisional=event.provisional)
            return state.model_copy(update=dict(
                queue=_enqueue(state.queue, work)))
        case QueuedWorkRemoved():
            return state.model_copy(update={"queue": tuple(
                w for w in state.queue if not _same_work(w, event.complaint_id, event.callback_id))})
        case AgentReleased() if event.complaint_id in agents.get(event.agent_id, _NOBODY).cases:
            agent = agents[event.agent_id]
            took = event.released_at - agent.cases[event.complaint_id]
            state = _with_agent(state, agent, idle_since=event.released_at, cases={
                k: v for k, v in agent.cases.items() if k != event.complaint_id},
                provisional=agent.provisional - {event.complaint_id})
            state = state.model_copy(update={"dispatched": {  # their calls on it are over
                k: d for k, d in state.dispatched.items()
                if (d.complaint_id, d.agent_id) != (event.complaint_id, event.agent_id)}})
            if event.reassigned:  # not a handling time: the agent did not finish it
                return state
            return state.model_copy(update={"handling": (*state.handling, took)[-RECENT_HANDLINGS:]})
    return state


_NOBODY = Agent(agent_id="", skills=frozenset(), languages=(), regions=(), channels=frozenset(),
                capacity=1)


def _enqueue(queue: tuple[QueuedWork, ...], work: QueuedWork) -> tuple[QueuedWork, ...]:
    """Callbacks wait in the order they came, ahead of written work: someone is waiting by the phone."""
    if work.callback_id is None:
        return (*queue, work)
    calls = sum(1 for w in queue if w.callback_id)
    return (*queue[:calls], work, *queue[calls:])


def _same_work(work: QueuedWork, complaint_id: str, callback_id: str | None) -> bool:
    return work.complaint_id == complaint_id and work.callback_id == callback_id


ROSTER: Aggregate[Roster] = Aggregate(Roster(), evolve_roster, decide_roster)


# --- a case (stream case-<complaint_id>) ---------------------------------------------------------

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
        return sum((line.unit_price * line.quantity + line.shipping_fee for line in self.lines.values()),
                   Decimal(0))


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


def repeated_contacts(contacts: tuple[datetime, ...], last_change_at: datetime | None,
                      now: datetime, max_contacts: int, window: timedelta) -> bool:
    """Whether ``max_contacts`` contacts came within ``window`` with no change to the case since."""
    since = max(now - window, last_change_at) if last_change_at else now - window
    return sum(1 for t in contacts if since < t <= now) >= max_contacts


def due_timers(state: Case, now: datetime) -> list[Timer]:
    """The timers that should fire at ``now`` and have not fired yet."""
    return [t for t in state.timers if not t.fired and t.due_at <= now]


BRIEF_RULES = {"customer_asks": "say what the customer wants",
               "tried": "say what was already tried",
               "promised": "say what the customer was promised"}


def _brief(draft: BriefDraft) -> HandoffBrief:
    for field, rule in BRIEF_RULES.items():
        if not getattr(draft, field).strip():
            raise MissingField(f"brief.{field}", rule)
    return HandoffBrief(customer_asks=draft.customer_asks, tried=draft.tried,
                        evidence=list(draft.evidence), promised=draft.promised,
                        promised_by=draft.promised_by)


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
        cost = (shipping if command.action == ResolutionAction.REFUND_SHIPPING
                else shipping + sum((line.unit_price * n for line, n in lines), Decimal(0)))
        cost = cost.quantize(Decimal("0.01"))
        if amount > cost:
            raise InvalidField("amount.value", f"at most {cost} {order.currency} for these items")
        if state.refunded + amount > order.value:
            raise InvalidField("amount.value", f"refunds on this case would exceed the order's value "
                               f"({order.value} {order.currency}; {state.refunded} refunded already)")
    return amount


def _amount(money: Money, order: OrderFacts) -> Decimal:
    if money.currency != order.currency:
        raise InvalidField("amount.currency", f"order {order.order_id} is in {order.currency}")
    try:
        amount = Decimal(money.value)
    except InvalidOperation:
        raise InvalidField("amount.value", "must be a decimal number") from None
    if amount <= 0 or amount.as_tuple().exponent < -2:
        raise InvalidField("amount.value", "must be positive, with at most 2 decimals")
    return amount


def _check_goodwill(total: Decimal, policy: ActionPolicy, currency: str) -> None:
    if total > policy.goodwill_max:
        raise InvalidField("amount.value", f"goodwill credits on a case are at most "
                           f"{policy.goodwill_max} {currency} in all")
    if total > policy.goodwill_alone and not policy.by_supervisor:
        raise NeedsSupervisor(f"amount.value: goodwill credits above {policy.goodwill_alone} {currency} "
                              "on a case need a supervisor")


def decide_case(state: Case, command: object, now: datetime) -> list[Event]:
    if isinstance(command, OpenCase):
        if state.complaint_id is not None:
            return []
        team = command.target.team_id if isinstance(command.target, PartnerTeamTarget) else None
        opened: list[Event] = [CaseOpened(complaint_id=command.complaint_id,
                                          category=command.category, region=command.region,
                                          assurance=command.assurance, team_id=team, opened_at=now,
                                          order_id=command.order_id)]
        if team is not None:
            opened.append(RoutedToTeam(complaint_id=command.complaint_id, team_id=team,
                                       only=command.target.only, routed_at=now))
        if isinstance(command.target, Supervisor):
            opened.append(Escalated(complaint_id=command.complaint_id, reason=command.target.reason,
                                    detail=f"{command.category.value} from a "
                                           f"{command.assurance.value} complainant: the routing "
                                           "rules send it to a supervisor",
                                    escalated_at=now))
        return opened
    if state.complaint_id is None:
        raise NotFound("case", getattr(command, "complaint_id", "?"))
    cid = state.complaint_id
    match command:
        case TransferToPartner():
            team = command.team
            if state.status == "transferred" and state.team_id == team.team_id:
                return []
            if state.status in ("resolved", "closed"):
                raise IllegalState("transfer", state.status)
            if state.category not in team.categories:
                raise IllegalState("transfer", state.status,
                                   f"team {team.team_id} does not take {state.category.value}")
            if team.restricted and state.routed_team_id != team.team_id:
                raise IllegalState("transfer", state.status, f"team {team.team_id} only takes "
                                   "cases the routing rules send to it")
            sla = timedelta(minutes=team.response_sla_minutes)
            return [TransferredToPartner(complaint_id=cid, team_id=team.team_id,
                                         by_agent_id=command.by_agent_id, brief=_brief(command.brief),
                                         transferred_at=now, sla_due_at=now + sla)]
        case AcknowledgeTransfer():
            if state.status != "transferred" or state.team_id != command.team_id:
                raise IllegalState("acknowledge", state.status,
                                   f"it is not with team {command.team_id}")
            if state.acknowledged:
                return []
            return [PartnerAcknowledged(complaint_id=cid, **command.model_dump(),
                                        acknowledged_at=now)]
        case AddNote():
            if command.note_id in state.note_ids:
                return []
            return [CaseNoteAdded(complaint_id=cid, **command.model_dump(), added_at=now)]
        case Close():
            if state.status != "resolved":
                return []  # reopened in between, or closed already: the later word stands
            return [CaseClosed(complaint_id=cid, confirmed=command.confirmed, closed_at=now)]
        case RecordPartnerOutcome():
            if state.status != "transferred" or state.team_id != command.team_id:
                raise IllegalState("record an outcome", state.status,
                                   f"it is not with team {command.team_id}")
            if not command.outcome_for_customer.strip():
                raise MissingField("outcome_for_customer", "say what the complainant will be told")
            return [PartnerOutcomeRecorded(complaint_id=cid, **command.model_dump(), recorded_at=now)]
        case RequestResolutionAction():
            if command.action_id in state.action_ids:
                return []
            if state.status in ("resolved", "closed"):
                raise IllegalState("request a resolution action", state.status)
            _check_action(state, command)
            return [ResolutionActionRequested(complaint_id=cid, **command.model_dump(exclude={"policy"}),
                                              requested_at=now)]
        case Resolve():
            if state.status in ("resolved", "closed"):
                raise IllegalState("resolve", state.status)
            if not command.recap.strip():
                raise MissingField("recap", "say what was done, for the complainant")
            return [ComplaintResolved(complaint_id=cid, agent_id=command.agent_id,
                                      recap=command.recap, next_steps=list(command.next_steps),
                                      resolved_at=now)]
        case ConnectCall():
            return _connect(state, command, now)
        case Reopen():
            if state.status not in ("resolved", "closed"):
                return []
            return [CaseReopened(complaint_id=cid, reopened_at=now)]
        case Escalate():
            return [Escalated(complaint_id=cid, **command.model_dump(), escalated_at=now)]
        case RecordContact():
            if command.contact_id in state.contact_ids:
                return []
            contact = ContactRecorded(complaint_id=cid, contact_id=command.contact_id,
                                      contacted_at=now)
            if state.escalated_for_repeats or not repeated_contacts(
                    (*state.contacts, now), state.last_change_at, now, command.max_contacts,
                    command.window):
                return [contact]
            return [contact, Escalated(
                complaint_id=cid, reason=EscalationReason.REPEATED_CONTACTS, escalated_at=now,
                detail=f"{command.max_contacts} contacts within {command.window} with no "
                       "progress on the case")]
        case FireDueTimers():
            return [Escalated(complaint_id=cid, reason=t.reason, detail=t.detail, escalated_at=now)
                    for t in due_timers(state, now)]
    raise TypeError(f"the case has no command {type(command).__name__}")


def _connect(state: Case, command: ConnectCall, now: datetime) -> list[Event]:
    """Only the agent the callback was dispatched to says it connected, and once: a second
    click (or a retry) changes nothing."""
    if (call := state.calls.get(command.callback_id)) is not None:
        if call.agent_id != command.agent_id:
            raise IllegalState("mark the call connected", state.status,
                               f"callback {command.callback_id} is connected to {call.agent_id}")
        return []
    dispatch = command.dispatch
    if dispatch is None or dispatch.complaint_id != state.complaint_id:
        raise NotFound("dispatched callback", command.callback_id)
    if dispatch.agent_id != command.agent_id:
        raise IllegalState("mark the call connected", state.status,
                           f"callback {command.callback_id} was dispatched to {dispatch.agent_id}")
    return [CallConnected(complaint_id=state.complaint_id, callback_id=command.callback_id,
                          agent_id=command.agent_id, connected_at=now)]


class CallbackOnCase(Value):
    """A callback as the case's page shows it: dispatched to an agent, or connected (no phone)."""

    callback_id: str
    agent_id: str
    status: Literal["dispatched", "connected"]
    dispatched_at: datetime | None = None
    connected_at: datetime | None = None


def callbacks_on(case: Case, roster: Roster) -> list[CallbackOnCase]:
    """The case's callbacks: those its agent holds now (the roster's), and those that connected."""
    seen = {d.callback_id: CallbackOnCase(callback_id=d.callback_id, agent_id=d.agent_id,
                                          status="dispatched", dispatched_at=d.dispatched_at)
            for d in roster.dispatched.values() if d.complaint_id == case.complaint_id}
    for callback_id, call in case.calls.items():
        before = seen.get(callback_id)
        seen[callback_id] = CallbackOnCase(callback_id=callback_id, agent_id=call.agent_id,
                                           status="connected", connected_at=call.connected_at,
                                           dispatched_at=before.dispatched_at if before else None)
    return sorted(seen.values(), key=lambda c: c.dispatched_at or c.connected_at)


def _moved(state: Case, at: datetime, **update) -> Case:
    return state.model_copy(update={"last_change_at": at, "escalated_for_repeats": False, **update})


def evolve_case(state: Case, event: Event) -> Case:
    match event:
        case CaseOpened():
            return _moved(state, event.opened_at, complaint_id=event.complaint_id,
                          category=event.category, region=event.region,
                          assurance=event.assurance, routed_team_id=event.team_id,
                          order_id=event.order_id)
        case TransferredToPartner():
            sla = Timer(name=f"partner_sla:{event.team_id}", due_at=event.sla_due_at,
                        reason=EscalationReason.SLA_BREACH,
                        detail=f"team {event.team_id} recorded no outcome by {event.sla_due_at}")
            return _moved(state, event.transferred_at, status="transferred", team_id=event.team_id,
                          acknowledged=False, timers=(*_without_partner_sla(state.timers), sla))
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
            given = ({"refunded": state.refunded + amount} if event.action in REFUNDS else
                     {"credited": state.credited + amount}
                     if event.action == ResolutionAction.GOODWILL_CREDIT else {})
            return _moved(state, event.requested_at, action_ids=state.action_ids | {event.action_id}, **given)
        case ComplaintResolved():
            return _moved(state, event.resolved_at, status="resolved", timers=())
        case CaseReopened():
            return _moved(state, event.reopened_at, status="open")
        case CallConnected():  # someone is talking to the complainant: progress on the case
            return _moved(state, event.connected_at, calls={
                **state.calls, event.callback_id: Call(agent_id=event.agent_id,
                                                       connected_at=event.connected_at)})
        case ContactRecorded():
            return state.model_copy(update=dict(contacts=(*state.contacts, event.contacted_at),
                                                contact_ids=state.contact_ids | {event.contact_id}))
        case Escalated():
            fired = tuple(t.model_copy(update={"fired": True})
                          if t.reason == event.reason and t.due_at <= event.escalated_at else t
                          for t in state.timers)
            repeats = state.escalated_for_repeats or event.reason == EscalationReason.REPEATED_CONTACTS
            return state.model_copy(update=dict(timers=fired, escalated_for_repeats=repeats))
    return state


def _without_partner_sla(timers: tuple[Timer, ...]) -> tuple[Timer, ...]:
    return tuple(t for t in timers if not t.name.startswith("partner_sla:"))


CASE: Aggregate[Case] = Aggregate(Case(), evolve_case, decide_case)


# --- a person with no case (stream person-<recipient>) ----------------------------------------------

class Person(Value):
    """Someone a supervisor was asked to help though no case of theirs is open."""

    escalations: int = 0


class EscalatePerson(Value):
    recipient: str = Field(min_length=1)
    address: str = Field(min_length=1)
    detail: str = Field(min_length=1)


def decide_person(state: Person, command: EscalatePerson, now: datetime) -> list[Event]:
    return [PersonEscalated(**command.model_dump(), reason=EscalationReason.NOTIFICATION_BLOCKED,
                            escalated_at=now)]


PERSON: Aggregate[Person] = Aggregate(
    Person(), lambda state, event: state.model_copy(update={"escalations": state.escalations + 1}),
    decide_person)
