"""Who may call what in routing: the role matrix as data, and the one dependency that enforces it.

A bearer token says who acts (``sub``) and in which ``role``; the matrix says which roles may call
each operation (the route's name), and ``authorize`` adds the object-level checks: an agent must be
on the roster and acts only on what is its own (its availability, its queue, the cases it holds);
a partner sees only its own team and that team's cases. A case or team that is not the caller's
answers 404, as one that does not exist: existence is not revealed to those who may not see it.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict

from services.kernel.web import answers, token_claims
from services.routing.domain import Case, IllegalState, NotFound, Roster, holder

AGENT, SUPERVISOR, ADMIN, PARTNER = "agent", "supervisor", "admin", "partner"
#: Teams whose membership only an admin grants: a restricted partner team's (e.g. account
#: security, which sees locked accounts' cases) and the supervisors', who take what the rules
#: send to a supervisor.
SUPERVISORS_TEAM = "supervisors"

_STAFF = frozenset({AGENT, SUPERVISOR})

#: operation (the route's function name) -> the roles that may call it. What each role may do
#: within that (its own availability, the cases it holds, its team) is checked by ``authorize``.
MATRIX: dict[str, frozenset[str]] = {
    # the roster
    "register_agent": frozenset({SUPERVISOR, ADMIN}),  # restricted teams: admin only
    "register_partner_team": frozenset({SUPERVISOR, ADMIN}),  # a restricted team: admin only
    "roster": frozenset({AGENT, SUPERVISOR, ADMIN}),
    "change_availability": frozenset({AGENT, SUPERVISOR, ADMIN}),  # an agent: its own only
    "agent_queue": frozenset({AGENT, SUPERVISOR}),  # an agent: its own only
    # cases
    "get_case": _STAFF,
    "call_connected": _STAFF,  # the case decides: only the agent the callback went to
    "transfer": _STAFF,  # an agent: only a case it holds (so for every line below)
    "request_action": _STAFF,
    "resolve": _STAFF,
    "escalate": _STAFF,
    "add_note": _STAFF,
    "release": _STAFF,
    "supervisor_queue": frozenset({SUPERVISOR}),
    # a partner team's side
    "inbox": frozenset({PARTNER, AGENT, SUPERVISOR}),  # a partner: its own team only
    "acknowledge": frozenset({PARTNER, SUPERVISOR}),  # a partner: its team's cases only
    "partner_note": frozenset({PARTNER, SUPERVISOR}),
    "record_outcome": frozenset({PARTNER, SUPERVISOR}),
}

#: Operations on one agent (path ``agent_id``): an agent may only name itself.
OWN_AGENT = frozenset({"change_availability", "agent_queue"})
#: Operations on a case (path ``complaint_id``) that an agent may do only on a case it holds.
HELD_CASE = frozenset({"transfer", "request_action", "resolve", "escalate", "add_note", "release"})
#: What a finished case (no one holds it any more) answers an agent who tries one of those.
FINISHED = ("resolved", "closed")
ACTIONS = {
    "transfer": "transfer",
    "request_action": "request a resolution action",
    "resolve": "resolve",
    "escalate": "escalate",
    "add_note": "add a note",
    "release": "release the case",
}
#: Operations on a team (path ``team_id``) and perhaps one of its cases (path ``complaint_id``).
TEAM = frozenset({"inbox", "acknowledge", "partner_note", "record_outcome"})


class Actor(BaseModel):
    """Who acts, as the token and the roster say."""

    model_config = ConfigDict(frozen=True)

    sub: str
    role: str
    team: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN


def refuse(message: str) -> HTTPException:
    return HTTPException(403, {"message": f"Authorization: {message}"})


def _claim(token: dict, name: str) -> str | None:
    value = token.get(name)
    return value if isinstance(value, str) and value.strip() else None


@answers(403, 404, 409)
async def authorize(request: Request, token: Annotated[dict, Depends(token_claims)]) -> Actor:
    """FastAPI dependency of every routing API route: the matrix, then the object-level checks."""
    operation = request.scope["route"].name
    allowed, role, sub = MATRIX[operation], _claim(token, "role"), _claim(token, "sub")
    if role not in allowed:
        raise refuse(f"{operation} is for {', '.join(sorted(allowed))} only")
    if sub is None:
        raise refuse("the token names no one (sub)")
    actor = Actor(sub=sub, role=role, team=_claim(token, "team"))
    routing, path = request.app.state.services.routing, request.path_params
    if role == AGENT:
        roster: Roster = await routing.roster()
        if sub not in roster.agents:
            raise refuse(f"agent {sub!r} is not on the roster")
        if operation in OWN_AGENT and path["agent_id"] != sub:
            raise refuse("an agent acts only on its own availability and queue")
        if operation in HELD_CASE:
            case = await routing.case(path["complaint_id"])  # 404 naming an unknown case first
            if (held_by := holder(roster, path["complaint_id"])) is None or held_by.agent_id != sub:
                if case.status in FINISHED:  # someone finished it first: the truth, as a conflict
                    raise IllegalState(ACTIONS.get(operation, operation), case.status)
                raise refuse(
                    f"case {path['complaint_id']!r} is not yours: only the agent who holds it "
                    "or a supervisor may act on it"
                )
    if role == PARTNER and operation in TEAM:
        if actor.team != path["team_id"]:
            raise NotFound("partner team", path["team_id"])
        if "complaint_id" in path:
            with_team(await routing.case(path["complaint_id"]), path["team_id"])
    return actor


def with_team(case: Case, team_id: str) -> Case:
    """The case, if it is (or was sent straight) to the team; for anyone else it does not exist."""
    if team_id not in (case.team_id, case.routed_team_id):
        raise NotFound("case", case.complaint_id or "?")
    return case


Who = Annotated[Actor, Depends(authorize)]


def restricted_teams(roster: Roster) -> frozenset[str]:
    """The teams whose membership only an admin grants."""
    return frozenset({SUPERVISORS_TEAM, *(t.team_id for t in roster.teams.values() if t.restricted)})


def check_membership(actor: Actor, roster: Roster, agent_id: str, teams: tuple[str, ...]) -> None:
    """A supervisor registers agents, but only an admin puts someone into a restricted team."""
    had = roster.agents[agent_id].teams if agent_id in roster.agents else frozenset()
    granted = (frozenset(teams) - had) & restricted_teams(roster)
    if granted and not actor.is_admin:
        raise refuse(f"membership of {', '.join(sorted(granted))} is granted by an admin only")


def check_team_change(actor: Actor, roster: Roster, team_id: str, restricted: bool) -> None:
    """Only an admin creates a restricted team, or changes one."""
    existing = roster.teams.get(team_id)
    if (restricted or (existing is not None and existing.restricted)) and not actor.is_admin:
        raise refuse(f"a restricted team ({team_id}) is registered by an admin only")


def check_release(actor: Actor, agent_id: str) -> None:
    """An agent releases itself; releasing someone else is a supervisor's call."""
    if actor.role == AGENT and agent_id != actor.sub:
        raise refuse("an agent releases only itself from a case")
