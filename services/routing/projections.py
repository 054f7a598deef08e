"""Routing's read models: each agent's queue, each partner team's inbox, the supervisor queue, and
the index of cases with a running timer.

Fed by the log follower, the only writer, so a read-modify-write per document is safe; each
``apply`` skips an event it has applied already (an entry may be applied again after a crash).
"""

from __future__ import annotations

from typing import Any

from contracts.envelope import Envelope, Event
from contracts.routing import (
    AgentAssigned,
    AgentRegistered,
    AgentReleased,
    CallbackDispatched,
    CaseClosed,
    CaseNoteAdded,
    CaseOpened,
    ComplaintResolved,
    Escalated,
    EscalationReason,
    PartnerAcknowledged,
    PartnerOutcomeRecorded,
    PersonEscalated,
    TransferredToPartner,
)
from services.kernel.projections import DocumentProjection


class _OncePerEvent(DocumentProjection):
    """A document per key, changed by ``change(view, event)``; remembers the events applied."""

    empty: dict[str, Any] = {}

    def key(self, event: Event) -> str | None:
        raise NotImplementedError

    def change(self, view: dict[str, Any], event: Event) -> None:
        raise NotImplementedError

    async def apply(self, envelope: Envelope, event: Event) -> None:
        if (key := self.key(event)) is None:
            return
        view = await self.view(key) or {"_id": key, "applied": [], **_copy(self.empty)}
        if envelope.id in view["applied"]:
            return
        self.change(view, event)
        view["applied"] = [*view["applied"], envelope.id][-200:]
        await self.save(key, view)


def _copy(value: dict[str, Any]) -> dict[str, Any]:
    return {k: (dict(v) if isinstance(v, dict) else list(v) if isinstance(v, list) else v) for k, v in value.items()}


class AgentQueues(_OncePerEvent):
    """One document per agent: ``cases`` maps complaint id -> the callback and when it was assigned."""

    name = "agent_queues"
    events = (AgentRegistered, AgentAssigned, AgentReleased, CallbackDispatched)
    empty = {"cases": {}}

    def key(self, event: Event) -> str | None:
        return event.agent_id if isinstance(event, self.events) else None

    def change(self, view: dict[str, Any], event: Event) -> None:
        if isinstance(event, AgentAssigned):
            view["cases"][event.complaint_id] = {
                "complaint_id": event.complaint_id,
                "callback_id": event.callback_id,
                "assigned_at": event.assigned_at.isoformat(),
            }
        elif isinstance(event, CallbackDispatched) and event.complaint_id in view["cases"]:
            view["cases"][event.complaint_id]["callback_id"] = event.callback_id
        elif isinstance(event, AgentReleased):
            view["cases"].pop(event.complaint_id, None)


class _Routed:
    """An event about a case (a note, its resolution), addressed to the team whose inbox holds it."""

    def __init__(self, team_id: str, event: Event) -> None:
        self.team_id, self.event = team_id, event


class TeamInboxes(_OncePerEvent):
    """One document per partner team: the cases it has, with the brief, SLA, notes and outcome."""

    name = "team_inboxes"
    events = (
        CaseOpened,
        TransferredToPartner,
        PartnerAcknowledged,
        PartnerOutcomeRecorded,
        CaseNoteAdded,
        ComplaintResolved,
        CaseClosed,
    )
    also = ("team_of_case",)
    empty = {"cases": {}}

    def __init__(self, db) -> None:
        super().__init__(db)
        self.case_team = db["team_of_case"]  # which team's inbox holds a case, for notes

    def key(self, event: Event | _Routed) -> str | None:
        # CaseOpened has a team only when the rules send the case straight to one
        if isinstance(event, (_Routed, TransferredToPartner, PartnerAcknowledged, PartnerOutcomeRecorded, CaseOpened)):
            return event.team_id
        return None

    async def apply(self, envelope: Envelope, event: Event) -> None:
        if isinstance(event, (CaseOpened, TransferredToPartner)) and event.team_id:
            await self.case_team.replace_one(
                {"_id": event.complaint_id}, {"_id": event.complaint_id, "team_id": event.team_id}, upsert=True
            )
        if isinstance(event, (CaseNoteAdded, ComplaintResolved, CaseClosed)):
            if (held := await self.case_team.find_one({"_id": event.complaint_id})) is None:
                return
            event = _Routed(held["team_id"], event)
        await super().apply(envelope, event)

    def change(self, view: dict[str, Any], event: Event) -> None:
        inner = event.event if isinstance(event, _Routed) else event
        case = view["cases"].setdefault(
            inner.complaint_id, {"complaint_id": inner.complaint_id, "status": "routed", "notes": []}
        )
        match inner:
            case CaseOpened():
                case.update(category=inner.category.value, received_at=inner.opened_at.isoformat())
            case TransferredToPartner():
                case.update(
                    status="transferred",
                    by_agent_id=inner.by_agent_id,
                    brief=inner.brief.model_dump(mode="json"),
                    received_at=inner.transferred_at.isoformat(),
                    sla_due_at=inner.sla_due_at.isoformat(),
                    acknowledged_by=None,
                    outcome=None,
                )
            case PartnerAcknowledged():
                case.update(status="acknowledged", acknowledged_by=inner.by)
            case PartnerOutcomeRecorded():
                case.update(
                    status="outcome_recorded",
                    outcome=inner.outcome_for_customer,
                    internal_note=inner.internal_note,
                    sla_due_at=None,
                )
            case CaseNoteAdded():
                case["notes"] = [
                    *case["notes"],
                    {"author": inner.author, "text": inner.text, "added_at": inner.added_at.isoformat()},
                ]
            case ComplaintResolved() | CaseClosed():
                case.update(status="resolved" if isinstance(inner, ComplaintResolved) else "closed", sla_due_at=None)

    async def reset(self) -> None:
        await super().reset()
        await self.case_team.drop()


class SupervisorQueue(_OncePerEvent):
    """One document per escalated case (or person with no case): every escalation, newest last."""

    name = "supervisor_queue"
    events = (PersonEscalated, Escalated)
    empty = {"escalations": []}

    def key(self, event: Event) -> str | None:
        if isinstance(event, PersonEscalated):
            return f"person:{event.recipient}"
        return event.complaint_id if isinstance(event, Escalated) else None

    def change(self, view: dict[str, Any], event: Event) -> None:
        if isinstance(event, PersonEscalated):
            view.update(complaint_id=None, recipient=event.recipient, address=event.address)
        else:
            view["complaint_id"] = event.complaint_id
        view["escalations"] = [
            *view["escalations"],
            {"reason": event.reason.value, "detail": event.detail, "escalated_at": event.escalated_at.isoformat()},
        ]

    async def all(self) -> list[dict[str, Any]]:
        """Every escalated case, oldest escalation first (a scan: the supervisor's page, not a hot path)."""
        views = await self.scan({}, {"applied": 0})
        return sorted(views, key=lambda v: v["escalations"][0]["escalated_at"])


class Timers(DocumentProjection):
    """The cases with a running timer and when it is due: what the ticker looks at.

    Only an index: the case stream decides what is due and records each firing, so an entry
    left behind fires nothing.
    """

    name = "timers"
    events = (TransferredToPartner, PartnerOutcomeRecorded, ComplaintResolved, CaseClosed, Escalated)

    async def apply(self, envelope: Envelope, event: Event) -> None:
        if isinstance(event, TransferredToPartner):
            await self.views.replace_one(
                {"_id": event.complaint_id}, {"_id": event.complaint_id, "due_at": event.sla_due_at}, upsert=True
            )
        elif isinstance(event, (PartnerOutcomeRecorded, ComplaintResolved, CaseClosed)) or (
            isinstance(event, Escalated) and event.reason == EscalationReason.SLA_BREACH
        ):
            await self.views.delete_one({"_id": event.complaint_id})

    async def due(self, now) -> list[str]:
        """Cases with a timer due at ``now`` (a scan of a small collection, once per tick)."""
        return [d["_id"] for d in await self.scan({"due_at": {"$lte": now}}, {"_id": 1})]


PROJECTIONS = [AgentQueues, TeamInboxes, SupervisorQueue, Timers]
