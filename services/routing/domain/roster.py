"""The roster (the one stream ``roster``): agents, partner teams, load and the callback queue.

Every assignment is decided on it, so its optimistic concurrency check is what keeps an agent
within capacity and the queue in order when callbacks arrive together.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from functools import reduce
from typing import Any, assert_never

from pydantic import Field

from contracts.envelope import Event
from contracts.intake import BCP47, E164, Category, Channel
from contracts.routing import (
    AgentAssigned,
    AgentAvailabilityChanged,
    AgentRegistered,
    AgentReleased,
    Availability,
    CallbackDispatched,
    CallbackQueued,
    LanguageTag,
    PartnerTeamRegistered,
    QueuedWorkRemoved,
    WorkQueued,
)
from services.kernel.domain import Aggregate, Value
from services.kernel.fields import Id, Line
from services.routing.domain.errors import NotFound

ROSTER_STREAM = "roster"
#: Used for the wait estimate until some handling times are known.
DEFAULT_HANDLING = timedelta(minutes=5)
RECENT_HANDLINGS = 20


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
            tag.split("-")[0].lower() == needs.language.split("-")[0].lower() for tag in self.languages
        ):
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
    """ "Call me": give the callback at once to the best fitting agent, or queue it."""

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
    free = [
        a
        for a in roster.agents.values()
        if a.availability == Availability.AVAILABLE and a.load(needs) < a.capacity and a.fits(needs)
    ]
    if not free:
        return None
    # An agent holding fewer cases goes first; among equals the one idle the longest.
    return min(free, key=lambda a: (a.load(needs), a.idle_since or now, a.agent_id)).agent_id


def estimated_wait(roster: Roster, needs: Needs, position: int) -> timedelta:
    """How long the ``position``-th in the queue may wait, from recent handling times."""
    recent = roster.handling or (DEFAULT_HANDLING,)
    average = sum(recent, timedelta()) / len(recent)
    staffed = sum(1 for a in roster.agents.values() if a.availability != Availability.OFFLINE and a.fits(needs))
    return average * position / max(1, staffed)


def _assign(work: QueuedWork, agent_id: str, now: datetime, reason: str) -> list[Event]:
    assigned: list[Event] = [
        AgentAssigned(
            complaint_id=work.complaint_id,
            agent_id=agent_id,
            callback_id=work.callback_id,
            assigned_at=now,
            reason=reason,
            provisional=work.provisional,
        )
    ]
    if work.callback_id and work.phone:
        assigned.append(
            CallbackDispatched(
                complaint_id=work.complaint_id,
                callback_id=work.callback_id,
                agent_id=agent_id,
                phone=work.phone,
                dispatched_at=now,
            )
        )
    return assigned


def _queue(roster: Roster, work: QueuedWork, now: datetime) -> list[Event]:
    needs = work.needs
    queued: list[Event] = [
        WorkQueued(
            complaint_id=work.complaint_id,
            callback_id=work.callback_id,
            phone=work.phone,
            skill=needs.skill,
            language=needs.language,
            region=needs.region,
            channel=needs.channel,
            team=needs.team,
            queued_at=now,
            provisional=work.provisional,
        )
    ]
    if work.callback_id:
        position = sum(1 for w in roster.queue if w.callback_id) + 1
        wait = estimated_wait(roster, needs, position)
        queued.append(
            CallbackQueued(
                complaint_id=work.complaint_id,
                callback_id=work.callback_id,
                position=position,
                estimated_wait_s=round(wait.total_seconds()),
                queued_at=now,
            )
        )
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
    if (
        owner is not None
        and owner.availability == Availability.AVAILABLE
        and (command.complaint_id not in owner.provisional or owner.load(command.needs) < owner.capacity)
    ):
        # (a case held as provisional written work becomes phone work: it must fit the capacity)
        return [
            CallbackDispatched(
                complaint_id=command.complaint_id,
                callback_id=command.callback_id,
                agent_id=owner.agent_id,
                phone=command.phone,
                dispatched_at=now,
            )
        ]
    before: list[Event] = []
    if owner is not None:  # busy or away: calling at once matters more than who calls
        before.append(
            AgentReleased(complaint_id=command.complaint_id, agent_id=owner.agent_id, released_at=now, reassigned=True)
        )
    before += [
        QueuedWorkRemoved(complaint_id=w.complaint_id, callback_id=None, removed_at=now)
        for w in _queued(state, command.complaint_id)
        if w.callback_id is None
    ]
    state = reduce(evolve_roster, before, state)
    work = QueuedWork(**command.model_dump(), queued_at=now)
    return [
        *before,
        *_assign_or_queue(
            state, work, now, "fewest cases, then longest idle, among agents with the skill, language and region"
        ),
    ]


def drain(roster: Roster, now: datetime) -> list[Event]:
    """Assign queued work, oldest first, to the agents now free for it."""
    events: list[Event] = []
    for work in roster.queue:
        if (agent_id := pick_agent(roster, work.needs, now)) is not None:
            assigned = _assign(work, agent_id, now, "first fitting agent free for queued work")
            events += assigned
            roster = reduce(evolve_roster, assigned, roster)
    return events


#: Every command the roster takes (``decide_roster`` checks each is handled: ``assert_never``).
RosterCommand = (
    RegisterAgent
    | RegisterPartnerTeam
    | ChangeAvailability
    | AssignForCallback
    | AssignCase
    | CancelQueuedCallback
    | ReleaseAgent
    | FinishCase
    | RouteBack
)


def decide_roster(state: Roster, command: RosterCommand, now: datetime) -> list[Event]:
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
            work = QueuedWork(
                complaint_id=command.complaint_id,
                callback_id=None,
                phone=None,
                needs=command.needs,
                queued_at=now,
                provisional=command.provisional,
            )
            return _assign_or_queue(state, work, now, "fewest cases, then longest idle, among available agents who fit")
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
                QueuedWorkRemoved(complaint_id=w.complaint_id, callback_id=w.callback_id, removed_at=now)
                for w in _queued(state, command.complaint_id)
            ]
            if (owner := holder(state, command.complaint_id)) is not None:
                finished.append(
                    AgentReleased(complaint_id=command.complaint_id, agent_id=owner.agent_id, released_at=now)
                )
            return [*finished, *drain(reduce(evolve_roster, finished, state), now)] if finished else []
        case RouteBack():
            if holder(state, command.complaint_id) or _queued(state, command.complaint_id):
                return []
            work = QueuedWork(
                complaint_id=command.complaint_id, callback_id=None, phone=None, needs=command.needs, queued_at=now
            )
            own = state.agents.get(state.last_agent.get(command.complaint_id, ""))
            if own and own.availability == Availability.AVAILABLE and len(own.cases) < own.capacity:
                return _assign(work, own.agent_id, now, f"{command.why}: back to the agent who had it")
            if (agent_id := pick_agent(state, command.needs, now)) is not None:
                return _assign(work, agent_id, now, f"{command.why}: its agent cannot take it now")
            return _queue(state, work, now)
        case _:
            assert_never(command)


def _agent(state: Roster, agent_id: str) -> Agent:
    if (agent := state.agents.get(agent_id)) is None:
        raise NotFound("agent", agent_id)
    return agent


def _with_agent(state: Roster, agent: Agent, **update: Any) -> Roster:
    return state.model_copy(update={"agents": {**state.agents, agent.agent_id: agent.model_copy(update=update)}})


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
            agent = Agent(
                agent_id=event.agent_id,
                skills=frozenset(event.skills),
                languages=tuple(event.languages),
                regions=tuple(event.regions),
                channels=frozenset(event.channels),
                capacity=event.capacity,
                teams=frozenset(event.teams),
                **({} if old is None else old.model_dump(include={"availability", "idle_since", "cases"})),
            )
            return state.model_copy(update={"agents": {**agents, agent.agent_id: agent}})
        case AgentAvailabilityChanged() if event.agent_id in agents:
            agent = agents[event.agent_id]
            became_free = event.availability == Availability.AVAILABLE != agent.availability
            return _with_agent(
                state,
                agent,
                availability=event.availability,
                idle_since=event.changed_at if became_free else agent.idle_since,
            )
        case PartnerTeamRegistered():
            team = Team(
                team_id=event.team_id,
                categories=frozenset(event.categories),
                regions=tuple(event.regions),
                restricted=event.restricted,
                response_sla_minutes=event.response_sla_minutes,
            )
            return state.model_copy(update={"teams": {**state.teams, team.team_id: team}})
        case AgentAssigned() if event.agent_id in agents:
            agent = agents[event.agent_id]
            state = _with_agent(
                state,
                agent,
                idle_since=event.assigned_at,
                cases={**agent.cases, event.complaint_id: event.assigned_at},
                provisional=agent.provisional | {event.complaint_id}
                if event.provisional
                else agent.provisional - {event.complaint_id},
            )
            return state.model_copy(
                update=dict(
                    queue=tuple(w for w in state.queue if not _same_work(w, event.complaint_id, event.callback_id)),
                    last_agent=_remember(state.last_agent, event.complaint_id, event.agent_id),
                )
            )
        case CallbackDispatched():
            dispatch = Dispatch(
                callback_id=event.callback_id,
                complaint_id=event.complaint_id,
                agent_id=event.agent_id,
                dispatched_at=event.dispatched_at,
            )
            state = state.model_copy(update={"dispatched": {**state.dispatched, event.callback_id: dispatch}})
            if (holder_ := agents.get(event.agent_id)) is not None and event.complaint_id in holder_.provisional:
                # the complainant asked for a call: a person on the phone is not provisional work
                state = _with_agent(state, holder_, provisional=holder_.provisional - {event.complaint_id})
            return state
        case WorkQueued():
            needs = Needs(
                skill=event.skill, language=event.language, region=event.region, channel=event.channel, team=event.team
            )
            work = QueuedWork(
                complaint_id=event.complaint_id,
                callback_id=event.callback_id,
                phone=event.phone,
                needs=needs,
                queued_at=event.queued_at,
                provisional=event.provisional,
            )
            return state.model_copy(update=dict(queue=_enqueue(state.queue, work)))
        case QueuedWorkRemoved():
            return state.model_copy(
                update={
                    "queue": tuple(w for w in state.queue if not _same_work(w, event.complaint_id, event.callback_id))
                }
            )
        case AgentReleased() if event.complaint_id in agents.get(event.agent_id, _NOBODY).cases:
            agent = agents[event.agent_id]
            took = event.released_at - agent.cases[event.complaint_id]
            state = _with_agent(
                state,
                agent,
                idle_since=event.released_at,
                cases={k: v for k, v in agent.cases.items() if k != event.complaint_id},
                provisional=agent.provisional - {event.complaint_id},
            )
            state = state.model_copy(
                update={
                    "dispatched": {  # their calls on it are over
                        k: d
                        for k, d in state.dispatched.items()
                        if (d.complaint_id, d.agent_id) != (event.complaint_id, event.agent_id)
                    }
                }
            )
            if event.reassigned:  # not a handling time: the agent did not finish it
                return state
            return state.model_copy(update={"handling": (*state.handling, took)[-RECENT_HANDLINGS:]})
    return state


_NOBODY = Agent(agent_id="", skills=frozenset(), languages=(), regions=(), channels=frozenset(), capacity=1)


def _enqueue(queue: tuple[QueuedWork, ...], work: QueuedWork) -> tuple[QueuedWork, ...]:
    """Callbacks wait in the order they came, ahead of written work: someone is waiting by the phone."""
    if work.callback_id is None:
        return (*queue, work)
    calls = sum(1 for w in queue if w.callback_id)
    return (*queue[:calls], work, *queue[calls:])


def _same_work(work: QueuedWork, complaint_id: str, callback_id: str | None) -> bool:
    return work.complaint_id == complaint_id and work.callback_id == callback_id


ROSTER: Aggregate[Roster] = Aggregate(Roster(), evolve_roster, decide_roster)
