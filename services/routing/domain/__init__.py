"""Routing's decisions, pure (no I/O), split by what each decides:

- ``roster``: agents, partner teams, load and the callback queue, on the one ``roster`` stream —
  every assignment is decided there, so its optimistic concurrency check keeps an agent within
  capacity and the queue in order when callbacks arrive together;
- ``case``: what happens to one case (stream ``case-<complaint_id>``) after it is routed;
- ``person``: escalations of repeated contacts from someone with no case yet;
- ``errors``: the refusals, each with a stable code and a message a person can act on.

The names are re-exported here: callers import ``services.routing.domain``.
"""

from __future__ import annotations

from services.routing.domain.errors import (
    IllegalState, InvalidField, MissingField, NeedsSupervisor, NotFound,
)
from services.routing.domain.roster import (
    DEFAULT_HANDLING, LAST_AGENTS_KEPT, RECENT_HANDLINGS, ROSTER, ROSTER_STREAM, Agent, AssignCase,
    AssignForCallback, CancelQueuedCallback, ChangeAvailability, decide_roster, Dispatch, drain,
    estimated_wait, evolve_roster, FinishCase, holder, Needs, pick_agent, QueuedWork, RegisterAgent,
    RegisterPartnerTeam, ReleaseAgent, Roster, RouteBack, Team,
)
from services.routing.domain.case import (
    BRIEF_RULES, CASE, REFUNDS, AcknowledgeTransfer, ActionPolicy, AddNote, BriefDraft, Call, CallbackOnCase,
    callbacks_on, Case, case_stream, CaseStatus, Close, ConnectCall, decide_case, due_timers, Escalate,
    evolve_case, FireDueTimers, OpenCase, OrderFacts, OrderLine, RecordContact, RecordPartnerOutcome, Reopen,
    repeated_contacts, RequestResolutionAction, Resolve, Timer, TransferToPartner,
)
from services.routing.domain.person import (
    PERSON, decide_person, EscalatePerson, Person,
)

__all__ = [
    "IllegalState", "InvalidField", "MissingField", "NeedsSupervisor", "NotFound", "DEFAULT_HANDLING",
    "LAST_AGENTS_KEPT", "RECENT_HANDLINGS", "ROSTER", "ROSTER_STREAM", "Agent", "AssignCase",
    "AssignForCallback", "CancelQueuedCallback", "ChangeAvailability", "decide_roster", "Dispatch", "drain",
    "estimated_wait", "evolve_roster", "FinishCase", "holder", "Needs", "pick_agent", "QueuedWork",
    "RegisterAgent", "RegisterPartnerTeam", "ReleaseAgent", "Roster", "RouteBack", "Team", "BRIEF_RULES",
    "CASE", "REFUNDS", "AcknowledgeTransfer", "ActionPolicy", "AddNote", "BriefDraft", "Call",
    "CallbackOnCase", "callbacks_on", "Case", "case_stream", "CaseStatus", "Close", "ConnectCall",
    "decide_case", "due_timers", "Escalate", "evolve_case", "FireDueTimers", "OpenCase", "OrderFacts",
    "OrderLine", "RecordContact", "RecordPartnerOutcome", "Reopen", "repeated_contacts",
    "RequestResolutionAction", "Resolve", "Timer", "TransferToPartner", "PERSON", "decide_person",
    "EscalatePerson", "Person",
]
