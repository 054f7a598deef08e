"""Who is on routing's roster, as the other services learn it from routing's ``AgentRegistered``
events: an agent's token is honoured only for someone on it (a validly signed token for a person
who is no agent here opens nothing)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from contracts.envelope import Envelope, Event
from contracts.routing import AgentRegistered
from services.kernel.projections import DocumentProjection
from services.kernel.web import STAFF_ROLES, answers, token_claims


class StaffDirectory(DocumentProjection):
    """One document per agent on the roster (latest registration wins), rebuildable from the log."""

    name = "staff_directory"
    events = (AgentRegistered,)

    async def apply(self, envelope: Envelope, event: Event) -> None:
        if isinstance(event, AgentRegistered):
            await self.views.replace_one(
                {"_id": event.agent_id},
                {"teams": sorted(event.teams), "registered_at": event.registered_at},
                upsert=True,
            )

    async def on_roster(self, agent_id: str) -> bool:
        return await self.get(agent_id) is not None


@answers(403)
async def staff_claims(request: Request, token: Annotated[dict[str, Any], Depends(token_claims)]) -> dict[str, Any]:
    """FastAPI dependency: a supervisor's token, or an agent's who is on the roster; 403 otherwise."""
    if token.get("role") not in STAFF_ROLES or not isinstance(token.get("sub"), str) or not token["sub"]:
        raise HTTPException(403, {"message": "Authorization: for agents and supervisors only"})
    if token["role"] == "agent" and not await StaffDirectory(request.app.state.services.runtime.store.db).on_roster(
        token["sub"]
    ):
        raise HTTPException(403, {"message": f"Authorization: agent {token['sub']!r} is not on the roster"})
    return token
