"""Intake's entry points: HTTP routes (parse → call the application → answer) and its subscriptions."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts import TOPICS
from contracts.intake import BCP47, CATEGORY_LABELS, E164, Category, Channel, Complainant
from services.intake.adapters.email import InvalidEmail, parse_email
from services.intake.adapters.social import SocialPost
from services.intake.application import Filed, Ignored, Intake
from services.intake.domain import DomainError, FileComplaint
from services.intake.projections import CaseViews, CustomerViews
from services.intake.settings import IntakeSettings
from services.kernel import auth
from services.kernel.eventstore import Cause, derived_id
from services.kernel.idempotency import IdempotencyKeyReused, IdempotencyStore, fingerprint
from services.kernel.ratelimit import RateLimit
from services.kernel.runtime import Runtime

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", min_length=8, max_length=200,
                                              description="Retrying with the same key returns the first answer.")]


class NewComplaint(BaseModel):
    """A complaint as the web page or an API client files it."""

    model_config = ConfigDict(extra="forbid")
    category: Category = Field(description="From GET /api/categories.", examples=["delivery_driver_conduct"])
    description: str = Field(min_length=1, max_length=5000, description="In the complainant's words.")
    channel: Channel = Field(Channel.WEB, description="web, email, social, phone.")
    complainant: Complainant
    order_id: str | None = Field(None, max_length=64, examples=["114-5523190-0012345"])
    tracking_numbers: list[str] = Field(default_factory=list, max_length=20)


class CallMe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(pattern=E164, description="Number to call, E.164.", examples=["+447700900123"])
    preferred_language: str = Field("en", pattern=BCP47, examples=["en-GB"])


class Services:
    """What the routes need, built once by app.py."""

    def __init__(self, settings: IntakeSettings, runtime: Runtime) -> None:
        self.settings, self.runtime = settings, runtime
        db = runtime.store.db
        self.intake = Intake(runtime.store, timedelta(hours=settings.link_window_hours))
        self.cases, self.people = CaseViews(db), CustomerViews(db)
        self.idempotency = IdempotencyStore(db)
        self.per_phone = RateLimit(settings.callbacks_per_phone, 600)
        self.per_client = RateLimit(settings.callbacks_per_client, 600)


def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


async def idempotent(svc: Services, scope: str, key: str | None, payload: Any,
                     run: Callable[[Cause], Awaitable[tuple[int, Any]]]) -> JSONResponse:
    """Run ``run`` once per Idempotency-Key (the key also fixes the ids of what it appends)."""
    request_id = key or str(uuid.uuid4())
    cause, request = Cause.of_request(derived_id(scope, request_id), scope), fingerprint(payload)
    try:
        if key and (stored := await svc.idempotency.replay(scope, key, request)):
            return JSONResponse(stored.body, stored.status, headers={"Idempotent-Replayed": "true"})
    except IdempotencyKeyReused as exc:
        raise HTTPException(422, {"message": f"Idempotency-Key: {exc}"}) from None
    status, body = await run(cause)
    if key:
        await svc.idempotency.save(scope, key, request, status, body)
    return JSONResponse(body, status)


def case_owner(svc: Services, complaint_id: str, authorization: str | None, token: str | None) -> None:
    """The bearer must hold this case's link token (or be its customer); else the case does not exist."""
    try:
        claims = auth.verify(auth.bearer(authorization) or token, svc.settings.signing_key)
    except auth.InvalidToken:
        raise HTTPException(404, {"message": "complaint: not found"}) from None
    if claims.get("complaint_id") != complaint_id and claims.get("role") != "customer":
        raise HTTPException(404, {"message": "complaint: not found"})
    return claims


def callback_view(complaint_id: str, callback) -> dict:
    return {"callback_id": callback.callback_id, "complaint_id": complaint_id, "state": callback.status,
            "position": None, "estimated_wait_s": None}


router = APIRouter(prefix="/api")


@router.get("/categories", summary='The list "does your complaint involve the following?"')
async def categories() -> list[dict[str, str]]:
    return [{"value": c.value, "label": label} for c, label in CATEGORY_LABELS.items()]


@router.post("/complaints", status_code=201, summary="File a complaint (or join the open case of its order).")
async def file_complaint(body: NewComplaint, svc: Svc, key: IdempotencyKey = None) -> JSONResponse:
    async def run(cause: Cause) -> tuple[int, dict]:
        filed = await svc.intake.file(FileComplaint(complaint_id=derived_id("complaint", cause.id), **body.model_dump(),
                                                    contact_id=cause.id), cause)
        return 201, filed_answer(svc, filed)
    return await idempotent(svc, "file_complaint", key, body.model_dump(mode="json"), run)


def filed_answer(svc: Services, filed: Filed) -> dict:
    token = auth.sign({"complaint_id": filed.complaint_id}, svc.settings.signing_key,
                      timedelta(days=svc.settings.access_token_days))
    return {"complaint_id": filed.complaint_id, "status": filed.status, "access_token": token,
            "status_url": f"/complaints/{filed.complaint_id}?token={token}"}


@router.post("/complaints/{complaint_id}/callback", status_code=202, summary='"Call me now".')
async def request_callback(complaint_id: str, body: CallMe, request: Request, svc: Svc, key: IdempotencyKey = None,
                           authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
    case_owner(svc, complaint_id, authorization, None)
    now = time.monotonic()
    for limit, who in ((svc.per_phone, body.phone), (svc.per_client, request.client.host if request.client else "-")):
        if (wait := limit.hit(who, now)) is not None:
            return JSONResponse({"message": "callback: too many requests; try again later"}, 429,
                                headers={"Retry-After": str(wait)})

    async def run(cause: Cause) -> tuple[int, dict]:
        callback = await svc.intake.request_callback(complaint_id, body.phone, body.preferred_language, cause)
        return 202, callback_view(complaint_id, callback)
    return await idempotent(svc, f"callback:{complaint_id}", key, body.model_dump(), run)


@router.delete("/complaints/{complaint_id}/callback/{callback_id}", summary="Cancel the callback.")
async def cancel_callback(complaint_id: str, callback_id: str, svc: Svc,
                          authorization: Annotated[str | None, Header()] = None) -> dict:
    case_owner(svc, complaint_id, authorization, None)
    cause = Cause.of_request(derived_id("cancel", complaint_id, callback_id), "cancel_callback")
    return callback_view(complaint_id, await svc.intake.cancel_callback(complaint_id, callback_id, cause))


@router.get("/complaints/{complaint_id}", summary="The customer's view of their case (no internal notes).")
async def case_view(complaint_id: str, svc: Svc, authorization: Annotated[str | None, Header()] = None,
                    token: str | None = None) -> dict:
    claims = case_owner(svc, complaint_id, authorization, token)
    view = await svc.cases.get(complaint_id)
    if view is None or (claims.get("role") == "customer" and view["owner"].get("customer_id") != claims.get("sub")):
        raise HTTPException(404, {"message": "complaint: not found"})
    callback = view["callback"] and {**view["callback"], "complaint_id": complaint_id}
    return {"complaint_id": complaint_id, "category": view["category"],
            "category_label": CATEGORY_LABELS[Category(view["category"])], "status": view["status"],
            "callback": callback, "timeline": [{k: e[k] for k in ("time", "type", "summary")} for e in view["timeline"]]}


@router.get("/agents/customers/{identifier}", summary="Unified customer view: every complaint, order and "
                                                      "account of one person (agents only).")
async def customer_view(identifier: str, svc: Svc, authorization: Annotated[str | None, Header()] = None) -> dict:
    try:
        claims = auth.verify(auth.bearer(authorization), svc.settings.signing_key)
    except auth.InvalidToken as exc:
        raise HTTPException(401, {"message": f"Authorization: {exc}"}) from None
    if claims.get("role") != "agent":
        raise HTTPException(403, {"message": "Authorization: agents only"})
    return await svc.people.unified(identifier)


@router.post("/inbound/email", summary="A raw RFC 5322 message from the mail provider's inbound webhook.")
async def inbound_email(request: Request, svc: Svc) -> JSONResponse:
    raw = await request.body()
    try:
        mail = await anyio.to_thread.run_sync(parse_email, raw, svc.settings.max_body_bytes)
    except InvalidEmail as exc:
        return JSONResponse({"message": f"email: {exc}"}, 422)
    cause = Cause.of_request(derived_id("email", mail.message_id or fingerprint(raw.decode(errors="replace"))),
                             "inbound_email")
    tokens = lambda t: auth.complaint_of_reply_token(t, svc.settings.signing_key)  # noqa: E731
    outcome = await svc.intake.receive_email(mail, tokens, cause)
    if isinstance(outcome, Ignored):
        return JSONResponse({"status": "ignored", "reason": outcome.reason}, 202)
    return JSONResponse({"status": outcome.status, "complaint_id": outcome.complaint_id}, 202)


@router.post("/inbound/social", summary="A post or direct message from a social platform's webhook.")
async def inbound_social(post: SocialPost, svc: Svc) -> JSONResponse:
    cause = Cause.of_request(derived_id("social", post.platform, post.post_id), "inbound_social")
    filed = await svc.intake.receive_social(post, cause)
    return JSONResponse({"status": filed.status, "complaint_id": filed.complaint_id}, 202)


def add_routes(app: FastAPI) -> None:
    app.include_router(router)

    @app.exception_handler(DomainError)
    async def refused(request: Request, exc: DomainError) -> JSONResponse:
        status = 404 if exc.code.endswith("not_found") else 429 if "too_many" in exc.code else 409
        return JSONResponse({"message": exc.message, "code": exc.code}, status)


def subscribe(runtime: Runtime) -> None:
    """Intake listens to everything, for the case timeline and the customer view."""
    for service, topic in TOPICS.items():
        if service != "intake":
            runtime.consumer.subscribe(topic, "intake", {}, record_all=True)
