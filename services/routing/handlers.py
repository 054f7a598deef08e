"""Routing's entry points: the agent and partner HTTP API (parse → call the application → answer)
and its subscriptions to intake's and notify's topics."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts import TOPICS
from contracts.envelope import Envelope, Event
from contracts.intake import (
    CallbackCancelled,
    CallbackRequested,
    ComplaintFiled,
    ComplaintLinked,
    CustomerMessageReceived,
)
from contracts.notify import ComplaintClosedUnconfirmed, ComplaintReopened, CustomerConfirmedClosed, EscalationRequested
from contracts.routing import DECIMAL, Availability, EscalationReason, ItemQuantity, Money, ResolutionAction
from services.kernel.errors import Unavailable
from services.kernel.eventstore import Cause
from services.kernel.fields import Id, text
from services.kernel.idempotency import IdempotencyStore, idempotent
from services.kernel.openapi import problems
from services.kernel.outbound import RecordUnavailable
from services.kernel.runtime import Runtime
from services.kernel.web import PathId, refuse_as
from services.routing.access import (
    MATRIX,
    SUPERVISOR,
    Who,
    check_membership,
    check_release,
    check_team_change,
    with_team,
)
from services.routing.application import Routing
from services.routing.domain import (
    AddNote,
    BriefDraft,
    Case,
    ChangeAvailability,
    Escalate,
    RecordPartnerOutcome,
    RegisterAgent,
    RegisterPartnerTeam,
    RequestResolutionAction,
    Resolve,
)
from services.routing.projections import AgentQueues, SupervisorQueue, TeamInboxes
from services.routing.settings import RoutingSettings

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=200,
        description="Retrying with the same key returns the first answer.",
    ),
]


class Services:
    """What the routes need, built once by app.py."""

    def __init__(self, settings: RoutingSettings, runtime: Runtime, routing: Routing) -> None:
        self.settings, self.runtime, self.routing = settings, runtime, routing
        db = runtime.store.db
        self.queues, self.inboxes, self.supervisor = AgentQueues(db), TeamInboxes(db), SupervisorQueue(db)
        self.idempotency = IdempotencyStore(db)


def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


def _case(case: Case) -> dict:
    return case.model_dump(mode="json", exclude={"contact_ids", "note_ids", "action_ids", "calls"})


async def _case_with_callbacks(svc: Services, case: Case) -> dict:
    """The case and its callbacks (who has each, dispatched or connected; never the phone)."""
    return {**_case(case), "callbacks": [c.model_dump(mode="json") for c in await svc.routing.callbacks(case)]}


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AvailabilityChange(_Body):
    availability: Availability = Field(
        description="available, on_call, after_call_work or offline.", examples=["available"]
    )


class Brief(_Body):
    customer_asks: str = Field(
        "",
        max_length=2000,
        description="What the customer wants (required).",
        examples=["Wants the driver's conduct on Elm Road looked into."],
    )
    tried: str = Field(
        "",
        max_length=2000,
        description="What was already done or checked (required).",
        examples=["Confirmed the delivery route and time with him."],
    )
    evidence: list[text(1000)] = Field(
        default_factory=list, max_length=50, description="Photos, tracking numbers…", examples=[["1Z999AA10123456784"]]
    )
    promised: str = Field(
        "",
        max_length=2000,
        description="What the customer was promised (required).",
        examples=["The partner team will tell him the outcome."],
    )
    promised_by: AwareDatetime | None = Field(
        None, description="By when, if a time was given.", examples=["2026-03-16T17:00:00Z"]
    )


class Transfer(_Body):
    team_id: Id = Field(description="The partner team.", examples=["team-logistics-uk-south"])
    brief: Brief | None = Field(None, description="The handoff brief; a transfer without one is refused.")


class Note(_Body):
    text: str = Field(
        min_length=1,
        max_length=5000,
        description="For staff and partners only.",
        examples=["Customer has dashcam footage."],
    )


class Outcome(_Body):
    outcome_for_customer: str = Field(
        max_length=2000,
        description="What the complainant will be told.",
        examples=["We spoke to the driver and retrained him."],
    )
    internal_note: str = Field("", max_length=5000, description="For staff only.", examples=["Depot D-311."])


class RequestedItem(ItemQuantity):
    """An item and how many of it, as an agent may ask for it (no more than an order could hold)."""

    sku: Id = Field(description="The item's SKU.", examples=["SKU-88213-BLU"])
    quantity: int = Field(ge=1, le=10_000, description="How many of it.", examples=[2])


class Amount(Money):
    value: str = Field(pattern=DECIMAL, max_length=24, description="The amount as a decimal string.", examples=["4.99"])


class Action(_Body):
    action: ResolutionAction = Field(
        description="refund_shipping, cancel_items, reship or goodwill_credit.", examples=["cancel_items"]
    )
    order_id: str = Field(min_length=1, max_length=100, examples=["114-5523190-0012345"])
    items: list[RequestedItem] = Field(default_factory=list, max_length=100)
    amount: Amount | None = None


class Resolution(_Body):
    recap: str = Field(
        max_length=5000,
        description="What was done, for the complainant (required).",
        examples=["We cancelled the 2 undelivered items and refunded their shipping."],
    )
    next_steps: list[text(1000)] = Field(
        default_factory=list, max_length=20, examples=[["The refund lands within 3 working days."]]
    )


class Escalation(_Body):
    reason: EscalationReason = Field(EscalationReason.OTHER, examples=["other"])
    detail: str = Field(min_length=1, max_length=2000, examples=["Customer threatens legal action."])


class Release(_Body):
    agent_id: Id | None = Field(None, description="The agent; default: the token's.", examples=["agt-0042"])


# Every case, agent and team the path names may be unknown (404) or in a state that refuses (409).
router = APIRouter(prefix="/api", responses=problems(404, 409))
Handler = Callable[[Cause], Awaitable[Any]]


async def act(svc: Services, scope: str, key: str | None, payload: Any, run: Handler) -> JSONResponse:
    """Run an action once per Idempotency-Key and answer the case (or agent) it leaves behind."""

    async def answer(cause: Cause) -> tuple[int, dict]:
        result = await run(cause)
        return 200, _case(result) if isinstance(result, Case) else result.model_dump(mode="json")

    return await idempotent(svc.idempotency, scope, key, payload, answer)


# --- the roster ---------------------------------------------------------------------------------


@router.post("/agents", status_code=201, tags=["roster"], summary="Add an agent (or change their skills).")
async def register_agent(body: RegisterAgent, svc: Svc, who: Who, key: IdempotencyKey = None) -> JSONResponse:
    check_membership(who, await svc.routing.roster(), body.agent_id, body.teams)

    async def run(cause: Cause) -> tuple[int, dict]:
        return 201, (await svc.routing.register_agent(body, cause)).model_dump(mode="json")

    return await idempotent(svc.idempotency, "register_agent", key, body.model_dump(mode="json"), run)


@router.get("/agents", tags=["roster"], summary="The roster: agents, their availability and load; teams.")
async def roster(svc: Svc, who: Who) -> dict:
    state = await svc.routing.roster()
    return {
        "agents": [a.model_dump(mode="json") for a in state.agents.values()],
        "partner_teams": [t.model_dump(mode="json") for t in state.teams.values()],
        "queue": [w.model_dump(mode="json") for w in state.queue],
    }


@router.put(
    "/agents/{agent_id}/availability", tags=["roster"], summary="Available, on a call, after-call work or offline."
)
async def change_availability(agent_id: PathId, body: AvailabilityChange, svc: Svc, who: Who) -> dict:
    cause = Cause.of_request(str(uuid.uuid4()), "change_availability")  # the same state twice appends nothing
    agent = await svc.routing.change_availability(ChangeAvailability(agent_id=agent_id, **body.model_dump()), cause)
    return agent.model_dump(mode="json")


@router.post("/partner-teams", status_code=201, tags=["roster"], summary="Add a partner team (or change it).")
async def register_partner_team(
    body: RegisterPartnerTeam, svc: Svc, who: Who, key: IdempotencyKey = None
) -> JSONResponse:
    check_team_change(who, await svc.routing.roster(), body.team_id, body.restricted)

    async def run(cause: Cause) -> tuple[int, dict]:
        return 201, (await svc.routing.register_partner_team(body, cause)).model_dump(mode="json")

    return await idempotent(svc.idempotency, "register_partner_team", key, body.model_dump(mode="json"), run)


@router.get("/agents/{agent_id}/queue", tags=["agents"], summary="The cases and callbacks an agent holds now.")
async def agent_queue(agent_id: PathId, svc: Svc, who: Who) -> dict:
    if (view := await svc.queues.get(agent_id)) is None:
        raise HTTPException(404, {"message": f"agent: there is no agent {agent_id!r}"})
    return {"agent_id": agent_id, "cases": sorted(view["cases"].values(), key=lambda c: c["assigned_at"])}


# --- an agent's actions on a case ------------------------------------------------------------------


@router.get(
    "/cases/{complaint_id}",
    tags=["cases"],
    summary="A case as routing sees it (status, team, timers, callbacks dispatched or connected).",
)
async def get_case(complaint_id: PathId, svc: Svc, who: Who) -> dict:
    return await _case_with_callbacks(svc, await svc.routing.case(complaint_id))


@router.post(
    "/cases/{complaint_id}/callbacks/{callback_id}/connected",
    tags=["cases"],
    summary="The agent the callback was dispatched to has the complainant on the line (once).",
)
async def call_connected(complaint_id: PathId, callback_id: PathId, svc: Svc, who: Who, key: IdempotencyKey = None):
    async def run(cause: Cause) -> tuple[int, dict]:
        case = await svc.routing.connect_call(complaint_id, callback_id, who.sub, cause)
        return 200, await _case_with_callbacks(svc, case)

    return await idempotent(svc.idempotency, "call_connected", key, [complaint_id, callback_id, who.sub], run)


@router.post(
    "/cases/{complaint_id}/transfer",
    tags=["cases"],
    summary="Warm transfer to a partner team with the handoff brief (required).",
)
async def transfer(complaint_id: PathId, body: Transfer, svc: Svc, who: Who, key: IdempotencyKey = None):
    brief = BriefDraft(**(body.brief.model_dump() if body.brief else {}))
    return await act(
        svc,
        "transfer",
        key,
        [complaint_id, body.model_dump(mode="json")],
        lambda cause: svc.routing.transfer(complaint_id, body.team_id, who.sub, brief, cause),
    )


@router.post(
    "/cases/{complaint_id}/actions",
    tags=["cases"],
    summary="Ask for a refund of shipping, a cancellation, a reship or a credit.",
    responses=problems(503),
)
async def request_action(complaint_id: PathId, body: Action, svc: Svc, who: Who, key: IdempotencyKey = None):
    action_id = f"act-{uuid.uuid4().hex[:12]}" if key is None else f"act-{key}"
    command = RequestResolutionAction(action_id=action_id, **body.model_dump())
    return await act(
        svc,
        "request_action",
        key,
        [complaint_id, body.model_dump(mode="json")],
        lambda cause: svc.routing.request_action(complaint_id, command, who.role == SUPERVISOR, cause),
    )


@router.post("/cases/{complaint_id}/resolve", tags=["cases"], summary="Resolve with a recap and next steps.")
async def resolve(complaint_id: PathId, body: Resolution, svc: Svc, who: Who, key: IdempotencyKey = None):
    command = Resolve(agent_id=who.sub, **body.model_dump())
    return await act(
        svc,
        "resolve",
        key,
        [complaint_id, body.model_dump(mode="json")],
        lambda cause: svc.routing.resolve(complaint_id, command, cause),
    )


@router.post("/cases/{complaint_id}/escalate", tags=["cases"], summary="Send the case to the supervisor queue.")
async def escalate(complaint_id: PathId, body: Escalation, svc: Svc, who: Who, key: IdempotencyKey = None):
    return await act(
        svc,
        "escalate",
        key,
        [complaint_id, body.model_dump(mode="json")],
        lambda cause: svc.routing.escalate(complaint_id, Escalate(**body.model_dump()), cause),
    )


@router.post("/cases/{complaint_id}/notes", tags=["cases"], summary="Add a note for staff and partners.")
async def add_note(complaint_id: PathId, body: Note, svc: Svc, who: Who, key: IdempotencyKey = None):
    note = AddNote(note_id=f"note-{key or uuid.uuid4().hex}", author=who.sub, text=body.text)
    return await act(
        svc,
        "add_note",
        key,
        [complaint_id, body.model_dump()],
        lambda cause: svc.routing.add_note(complaint_id, note, cause),
    )


@router.post(
    "/cases/{complaint_id}/release",
    tags=["cases"],
    summary="The agent is done with the case for now (call over): capacity frees up.",
)
async def release(complaint_id: PathId, body: Release, svc: Svc, who: Who, key: IdempotencyKey = None):
    agent_id = body.agent_id or who.sub
    check_release(who, agent_id)
    return await act(
        svc, "release", key, [complaint_id, agent_id], lambda cause: svc.routing.release(complaint_id, agent_id, cause)
    )


@router.get("/supervisor/queue", tags=["cases"], summary="Escalated cases with every reason, oldest first.")
async def supervisor_queue(svc: Svc, who: Who) -> dict:
    return {"cases": await svc.supervisor.all()}


# --- a partner team's side ----------------------------------------------------------------------------


@router.get(
    "/partner-teams/{team_id}/inbox",
    tags=["partners"],
    summary="The team's cases: brief, SLA due time, notes, outcome.",
)
async def inbox(team_id: PathId, svc: Svc, who: Who) -> dict:
    await svc.routing.team(team_id)  # 404 naming an unknown team
    view = await svc.inboxes.get(team_id) or {"cases": {}}
    return {"team_id": team_id, "cases": sorted(view["cases"].values(), key=lambda c: c.get("received_at", ""))}


@router.post(
    "/partner-teams/{team_id}/cases/{complaint_id}/acknowledge",
    tags=["partners"],
    summary="Someone in the team has read the brief and taken the case.",
)
async def acknowledge(team_id: PathId, complaint_id: PathId, svc: Svc, who: Who, key: IdempotencyKey = None):
    return await act(
        svc,
        "acknowledge",
        key,
        [team_id, complaint_id],
        lambda cause: svc.routing.acknowledge(complaint_id, team_id, who.sub, cause),
    )


@router.post("/partner-teams/{team_id}/cases/{complaint_id}/notes", tags=["partners"], summary="A partner's note.")
async def partner_note(
    team_id: PathId, complaint_id: PathId, body: Note, svc: Svc, who: Who, key: IdempotencyKey = None
):
    with_team(await svc.routing.case(complaint_id), team_id)
    note = AddNote(note_id=f"note-{key or uuid.uuid4().hex}", author=who.sub, text=body.text)
    return await act(
        svc,
        "partner_note",
        key,
        [team_id, complaint_id, body.model_dump()],
        lambda cause: svc.routing.add_note(complaint_id, note, cause),
    )


@router.post(
    "/partner-teams/{team_id}/cases/{complaint_id}/outcome",
    tags=["partners"],
    summary="What the team did; the complainant is told outcome_for_customer.",
)
async def record_outcome(
    team_id: PathId, complaint_id: PathId, body: Outcome, svc: Svc, who: Who, key: IdempotencyKey = None
):
    command = RecordPartnerOutcome(team_id=team_id, **body.model_dump())
    return await act(
        svc,
        "record_outcome",
        key,
        [team_id, complaint_id, body.model_dump()],
        lambda cause: svc.routing.record_outcome(complaint_id, command, cause),
    )


def add_routes(app: FastAPI) -> None:
    app.include_router(router)

    refuse_as(app, RecordUnavailable, lambda exc: Unavailable(f"order system: {exc.reason}; try again shortly"))

    unguarded = [r.path for r in router.routes if r.name not in MATRIX]
    if unguarded:  # a route nobody decided about is a hole: refuse to start
        raise RuntimeError(f"routes missing from the role matrix (services/routing/access.py): {unguarded}")


def subscribe(runtime: Runtime, routing: Routing) -> None:
    """Routing acts on intake's complaints, callbacks and messages and on notify's answers; one
    subscription (one Kafka consumer) in the service's own group."""

    def handler(use_case: Callable[[Any, Cause], Awaitable[Any]]):
        async def handle(event: Event, envelope: Envelope) -> None:
            await use_case(event, Cause.of_event(envelope, use_case.__name__))

        return handle

    runtime.consumer.subscribe(
        [TOPICS["intake"], TOPICS["notify"]],
        runtime.settings.consumer_group,
        {
            ComplaintFiled: handler(routing.open_case),
            CallbackRequested: handler(routing.assign_callback),
            CallbackCancelled: handler(routing.cancel_callback),
            CustomerMessageReceived: handler(routing.customer_wrote),
            ComplaintLinked: handler(routing.customer_wrote),
            ComplaintReopened: handler(routing.reopen),
            CustomerConfirmedClosed: handler(routing.close),
            ComplaintClosedUnconfirmed: handler(routing.close),
            # not CallFailed: a case whose callback could not connect stays with its agent (notify
            # writes to the complainant instead); releasing the agent would leave the case with nobody
            EscalationRequested: handler(routing.escalation_requested),
        },
    )
