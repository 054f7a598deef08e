"""Routing's entry points: the agent HTTP API (parse → call the application → answer) and its subscription."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts import TOPICS
from contracts.envelope import Envelope, Event
from contracts.intake import CallbackCancelled, CallbackRequested, ComplaintFiled
from contracts.routing import Availability
from services.kernel import auth
from services.kernel.eventstore import Cause
from services.kernel.idempotency import IdempotencyStore, idempotent
from services.kernel.runtime import Runtime
from services.routing.application import Routing
from services.routing.domain import (ChangeAvailability, DomainError, IllegalState, MissingField,
                                     NotFound, RegisterAgent, RegisterPartnerTeam)
from services.routing.projections import AgentQueues
from services.routing.settings import RoutingSettings

STAFF = {"agent", "supervisor"}
STATUS = {NotFound: 404, IllegalState: 409, MissingField: 422}
IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=8, max_length=200,
                                              description="Retrying with the same key returns the first answer.")]


class Services:
    """What the routes need, built once by app.py."""

    def __init__(self, settings: RoutingSettings, runtime: Runtime, routing: Routing) -> None:
        self.settings, self.runtime, self.routing = settings, runtime, routing
        self.queues, self.idempotency = AgentQueues(runtime.store.db), IdempotencyStore(runtime.store.db)


def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


def staff(svc: Svc, authorization: Annotated[str | None, Header()] = None) -> dict:
    """The claims of an agent's or supervisor's bearer token: 401 without a valid one, 403 for others."""
    try:
        claims = auth.verify(auth.bearer(authorization), svc.settings.signing_key)
    except auth.InvalidToken as exc:
        raise HTTPException(401, {"message": f"Authorization: {exc}"}, {"WWW-Authenticate": "Bearer"}) from None
    if claims.get("role") not in STAFF:
        raise HTTPException(403, {"message": "Authorization: for agents and supervisors only"})
    return claims


Staff = Annotated[dict, Depends(staff)]


class AvailabilityChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    availability: Availability = Field(description="available, on_call, after_call_work or offline.",
                                       examples=["available"])


router = APIRouter(prefix="/api", tags=["agents"])


@router.post("/agents", status_code=201, summary="Add an agent to the roster (or change their skills).")
async def register_agent(body: RegisterAgent, svc: Svc, _: Staff, key: IdempotencyKey = None) -> JSONResponse:
    async def run(cause: Cause) -> tuple[int, dict]:
        return 201, (await svc.routing.register_agent(body, cause)).model_dump(mode="json")
    return await idempotent(svc.idempotency, "register_agent", key, body.model_dump(mode="json"), run)


@router.put("/agents/{agent_id}/availability", summary="Available, on a call, after-call work or offline.")
async def change_availability(agent_id: str, body: AvailabilityChange, svc: Svc, _: Staff) -> dict:
    cause = Cause.of_request(str(uuid.uuid4()), "change_availability")  # the same state twice appends nothing
    agent = await svc.routing.change_availability(ChangeAvailability(agent_id=agent_id, **body.model_dump()), cause)
    return agent.model_dump(mode="json")


@router.post("/partner-teams", status_code=201, summary="Add a partner team (or change what it takes).")
async def register_partner_team(body: RegisterPartnerTeam, svc: Svc, _: Staff,
                                key: IdempotencyKey = None) -> JSONResponse:
    async def run(cause: Cause) -> tuple[int, dict]:
        return 201, (await svc.routing.register_partner_team(body, cause)).model_dump(mode="json")
    return await idempotent(svc.idempotency, "register_partner_team", key, body.model_dump(mode="json"), run)


@router.get("/agents/{agent_id}/queue", summary="The cases and callbacks an agent holds now.")
async def agent_queue(agent_id: str, svc: Svc, _: Staff) -> dict:
    if (view := await svc.queues.get(agent_id)) is None:
        raise HTTPException(404, {"message": f"agent: there is no agent {agent_id!r}"})
    return {"agent_id": agent_id, "cases": sorted(view["cases"].values(), key=lambda c: c["assigned_at"])}


def add_routes(app: FastAPI) -> None:
    app.include_router(router)

    @app.exception_handler(DomainError)
    async def refused(request: Request, exc: DomainError) -> JSONResponse:
        return JSONResponse({"message": exc.message, "code": exc.code}, STATUS.get(type(exc), 409))


def subscribe(runtime: Runtime, routing: Routing) -> None:
    """Routing acts on intake's complaints and callbacks; group = the service's name."""

    def handler(use_case: Callable[[Any, Cause], Awaitable[Any]]):
        async def handle(event: Event, envelope: Envelope) -> None:
            await use_case(event, Cause.of_event(envelope, use_case.__name__))
        return handle

    runtime.consumer.subscribe(TOPICS["intake"], runtime.settings.service_name, {
        ComplaintFiled: handler(routing.open_case), CallbackRequested: handler(routing.assign_callback),
        CallbackCancelled: handler(routing.cancel_callback)})
