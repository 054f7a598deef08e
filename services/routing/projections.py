"""Routing's read model: each agent's queue ("my queue"), the cases and callbacks they hold.

Fed by the log follower, the only writer, so a read-modify-write per document is safe;
``apply`` skips an event it has applied already (an entry may be applied again after a crash).
"""

from __future__ import annotations

from contracts.envelope import Envelope, Event
from contracts.routing import AgentAssigned, AgentRegistered, AgentReleased
from services.kernel.projections import DocumentProjection


class AgentQueues(DocumentProjection):
    """One document per agent: ``cases`` maps complaint id -> the callback and when it was assigned."""

    name = "agent_queues"

    async def apply(self, envelope: Envelope, event: Event) -> None:
        if not isinstance(event, (AgentRegistered, AgentAssigned, AgentReleased)):
            return
        view = await self.views.find_one({"_id": event.agent_id}) or {
            "_id": event.agent_id, "cases": {}, "applied": []}
        if envelope.id in view["applied"]:
            return
        if isinstance(event, AgentAssigned):
            view["cases"][event.complaint_id] = {"complaint_id": event.complaint_id,
                                                 "callback_id": event.callback_id,
                                                 "assigned_at": event.assigned_at.isoformat()}
        elif isinstance(event, AgentReleased):
            view["cases"].pop(event.complaint_id, None)
        view["applied"].append(envelope.id)
        await self.views.replace_one({"_id": event.agent_id}, view, upsert=True)


PROJECTIONS = [AgentQueues]
