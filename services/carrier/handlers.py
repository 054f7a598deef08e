"""The carrier service's entry points: the agent API, the tracking webhook and its subscriptions."""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from contracts import TOPICS
from contracts.carrier import Carrier, CheckTrigger
from contracts.envelope import Envelope, Event
from contracts.intake import ComplaintFiled
from contracts.routing import AgentRegistered, ComplaintResolved
from services.carrier.adapters.http import NotFound, Unreadable
from services.carrier.adapters.orders import OrderSystemUnavailable
from services.carrier.adapters.tracking import READERS, CarrierGateway
from services.carrier.application import NotAPackageOfTheOrder, Shipments, UnknownOrder
from services.carrier.domain import NotWatched, Watch, summarize
from services.carrier.rechecks import Rechecks
from services.carrier.settings import CarrierSettings
from services.kernel.errors import InvalidInput, Unavailable
from services.kernel.eventstore import Cause, derived_id
from services.kernel.openapi import problems
from services.kernel.runtime import Runtime
from services.kernel.staff import staff_claims
from services.kernel.web import PathId, refuse_as

Signature = Annotated[
    str | None,
    Header(
        alias="X-Tracking-Signature",
        max_length=200,
        description="sha256=<hex HMAC-SHA256 of the raw body with the shared secret>",
    ),
]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=200,
        description="Retrying with the same key appends nothing new.",
    ),
]


class Services:
    """What the routes need, built once by app.py."""

    def __init__(
        self,
        settings: CarrierSettings,
        runtime: Runtime,
        shipments: Shipments,
        gateway: CarrierGateway,
        rechecks: Rechecks,
    ) -> None:
        self.settings, self.runtime, self.shipments, self.gateway, self.rechecks = (
            settings,
            runtime,
            shipments,
            gateway,
            rechecks,
        )


def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


Staff = Annotated[dict, Depends(staff_claims)]


def shipments_view(watch: Watch) -> dict:
    """What an agent sees: the order in one sentence, then every package."""
    summary = summarize(watch, datetime.now(UTC))
    failures = {n: p.failure.value for n, p in watch.packages.items() if p.failure}
    return {
        "complaint_id": watch.complaint_id,
        "order_id": watch.order_id,
        "summary": summary.summary,
        "items_total": summary.items_total,
        "items_delivered": summary.items_delivered,
        "order_problem": watch.order_failure.value if watch.order_failure else None,
        "packages": [
            {**line.model_dump(mode="json"), "failure": failures.get(line.tracking_number)} for line in summary.packages
        ],
    }


router = APIRouter(prefix="/api", tags=["shipments"])


@router.get(
    "/complaints/{complaint_id}/shipments",
    summary="What the carriers last said about a complaint's packages, and the order in one sentence.",
    responses=problems(404),
)
async def shipments(complaint_id: PathId, svc: Svc, _: Staff) -> dict:
    watch = await svc.shipments.watch(complaint_id)
    if watch.complaint_id is None:
        raise NotWatched(complaint_id)
    return shipments_view(watch)


@router.post(
    "/complaints/{complaint_id}/recheck",
    summary="Ask the carriers again now (an agent on the phone); news is published, the answer is the current view.",
    responses=problems(404, 503),
)
async def recheck(complaint_id: PathId, svc: Svc, _: Staff, key: IdempotencyKey = None) -> dict:
    cause = Cause.of_request(derived_id("agent_recheck", complaint_id, key or str(uuid.uuid4())), "agent_recheck")
    return shipments_view(await svc.shipments.recheck(complaint_id, CheckTrigger.AGENT, cause))


class TrackingPush(BaseModel):
    """A carrier's or aggregator's push: the carrier's own tracking JSON for one package of an order."""

    model_config = ConfigDict(extra="forbid")
    event_id: str = Field(
        min_length=1,
        max_length=200,
        description="The pusher's id of this event; a redelivery with the same id changes nothing.",
        examples=["evt-7f3a91"],
    )
    carrier: Carrier = Field(description="fedex, ups, usps or auspost.", examples=["ups"])
    tracking_number: str = Field(min_length=1, max_length=64, examples=["1Z999AA10123456795"])
    order_id: str = Field(
        min_length=1,
        max_length=64,
        description="The order the package belongs to (the retailer registers it with the tracking subscription).",
        examples=["114-5523190-0012345"],
    )
    tracking: dict[str, Any] = Field(description="The carrier's tracking JSON, shaped as its track API answers.")


def signed_body(svc: Services, body: bytes, signature: str | None) -> None:
    """401 unless ``X-Tracking-Signature`` is ``sha256=`` the body's HMAC with the shared secret."""
    expected = "sha256=" + hmac.new(svc.settings.tracking_webhook_secret.encode(), body, hashlib.sha256).hexdigest()
    if not signature or not hmac.compare_digest(signature.strip().encode(), expected.encode()):
        raise HTTPException(
            401, {"message": "X-Tracking-Signature: missing or not the body's HMAC-SHA256 with the shared secret"}
        )


@router.post(
    "/webhooks/tracking",
    status_code=202,
    tags=["webhooks"],
    summary="A carrier's push (exception, return to sender, revised date) for a package of an order.",
    responses=problems(401, 413, 422, 503),
)
async def tracking_webhook(request: Request, svc: Svc, signature: Signature = None) -> JSONResponse:
    body = await request.body()
    signed_body(svc, body, signature)
    push = read_push(body)
    cause = Cause.of_request(derived_id("push", push.carrier, push.event_id), "tracking_webhook")
    alerts = await svc.shipments.alert(
        push.order_id, push.carrier, push.tracking_number, READERS[push.carrier](push.tracking), cause
    )
    return JSONResponse({"status": "alerted" if alerts else "no news", "events": [e.ce_type() for e in alerts]}, 202)


def read_push(body: bytes) -> TrackingPush:
    try:
        return TrackingPush.model_validate_json(body)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(p) for p in error["loc"]) or "body"
        raise HTTPException(422, {"message": f"{where}: {error['msg']}"}) from None


def add_routes(app: FastAPI) -> None:
    app.include_router(router)

    refuse_as(app, UnknownOrder, lambda exc: InvalidInput("order_id", f"the order system has no order {exc.args[0]!r}"))
    refuse_as(
        app,
        NotAPackageOfTheOrder,
        lambda exc: InvalidInput("tracking_number", f"{exc.args[0]!r} is not a package of this order"),
    )
    refuse_as(app, OrderSystemUnavailable, lambda exc: Unavailable(f"order system: {exc.reason}"))
    refuse_as(app, Unreadable, lambda exc: InvalidInput("tracking", str(exc)))
    refuse_as(app, NotFound, lambda exc: InvalidInput("tracking", f"the carrier reports no such package ({exc})"))


def subscribe(runtime: Runtime, shipments: Shipments) -> None:
    """Complaints (intake) start the tracking; resolutions (routing) end the re-checks; one group."""

    def handler(use_case: Callable[[Any, Cause], Awaitable[Any]]):
        async def handle(event: Event, envelope: Envelope) -> None:
            await use_case(event, Cause.of_event(envelope, use_case.__name__))

        return handle

    runtime.consumer.subscribe(
        [TOPICS["intake"], TOPICS["routing"]],
        runtime.settings.consumer_group,
        {
            ComplaintFiled: handler(shipments.complaint_filed),
            ComplaintResolved: handler(shipments.end_watch),
            AgentRegistered: kept_for_the_staff_directory,
        },
    )


async def kept_for_the_staff_directory(event: Event, envelope: Envelope) -> None:
    """Nothing to do: the consumer records the event, and the staff directory projects it."""
