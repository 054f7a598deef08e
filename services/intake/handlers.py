"""Intake's entry points: HTTP routes (parse → call the application → answer) and its subscriptions."""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts import TOPICS
from contracts.carrier import ShipmentExceptionDetected
from contracts.envelope import Envelope
from contracts.intake import BCP47, CATEGORY_LABELS, E164, Assurance, Category, Channel, Complainant, short_reference
from contracts.notify import ComplaintClosedUnconfirmed, CustomerConfirmedClosed
from services.intake.adapters.email import InvalidEmail, parse_email
from services.intake.adapters.orders import DirectoryUnavailable, OrderDirectory
from services.intake.adapters.social import SocialPost
from services.intake.application import Filed, Ignored, Intake, LockedOutPath
from services.intake.domain import (
    COMPLAINT,
    FileComplaint,
    TooManyCodes,
    VerificationLockedOut,
    VerifyOutcome,
    complaint_stream,
    contact_owner,
    customer_owner,
)
from services.intake.next_step import next_step
from services.intake.projections import OPEN_QUESTION, CaseViews, CustomerViews
from services.intake.settings import IntakeSettings
from services.kernel import auth
from services.kernel.commands import current
from services.kernel.eventstore import Cause, derived_id
from services.kernel.fields import NOT_BLANK, Id
from services.kernel.idempotency import IdempotencyKeyReused, IdempotencyStore, answer, fingerprint, idempotent
from services.kernel.kafka import client_config
from services.kernel.lag import DownstreamLag
from services.kernel.openapi import problems
from services.kernel.ratelimit import RateLimit
from services.kernel.runtime import Runtime
from services.kernel.staff import staff_claims
from services.kernel.web import Authorization, PathId, TokenQuery, answers, caller_address, problem, problem_body

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=200,
        description="Retrying with the same key returns the first answer.",
    ),
]


class Filer(Complainant):
    """Who files: an account id is recorded only when a login or a verified contact proves it, so
    an email, a phone or a social handle is what reaches them."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": [way]} for way in ("email", "phone", "social_handle")]}
    )

    customer_id: Id | None = Field(
        None, description="Customer account id (taken from the login).", examples=["cust-1001"]
    )
    seller_id: Id | None = Field(
        None, description="Marketplace seller id (taken from a verified contact).", examples=["sell-00311"]
    )


class NewComplaint(BaseModel):
    """A complaint as the web page or an API client files it."""

    model_config = ConfigDict(extra="forbid")
    category: Category = Field(description="From GET /api/categories.", examples=["delivery_driver_conduct"])
    description: str = Field(
        min_length=1, max_length=5000, pattern=NOT_BLANK, description="In the complainant's words (not only blanks)."
    )
    channel: Channel = Field(Channel.WEB, description="web, email, social, phone.")
    complainant: Filer
    order_id: Id | None = Field(None, max_length=64, examples=["114-5523190-0012345"])
    tracking_numbers: list[Id] = Field(default_factory=list, max_length=20)


class CallMe(BaseModel):
    model_config = ConfigDict(extra="forbid")
    phone: str = Field(pattern=E164, description="Number to call, E.164.", examples=["+447700900123"])
    preferred_language: str = Field("en", pattern=BCP47, examples=["en-GB"])


class ClosureAnswer(BaseModel):
    """The complainant's answer to "is your complaint closed?" on their case page."""

    model_config = ConfigDict(extra="forbid")
    answer: Literal["yes", "no"] = Field(description="yes: it is closed; no: it is still a problem.", examples=["no"])
    reason: str = Field(
        "",
        max_length=2000,
        description="For a no: what is still wrong (optional).",
        examples=["The refund for the shipping has not arrived."],
    )


class Services:
    """What the routes need, built once by app.py."""

    def __init__(self, settings: IntakeSettings, runtime: Runtime, directory: OrderDirectory) -> None:
        self.settings, self.runtime = settings, runtime
        db = runtime.store.db
        self.intake = Intake(runtime.store, timedelta(hours=settings.link_window_hours))
        self.cases, self.people = CaseViews(db), CustomerViews(db)
        self.idempotency = IdempotencyStore(db)
        ten_minutes, hour = timedelta(minutes=10), timedelta(hours=1)
        self.per_phone = RateLimit(db, "callbacks-per-phone", settings.callbacks_per_phone, ten_minutes)
        self.per_client = RateLimit(db, "callbacks-per-client", settings.callbacks_per_client, ten_minutes)
        # A callback goes intake → routing (assigns an agent) → notify (dials): what waits on the way.
        self.callbacks_behind = DownstreamLag(
            client_config(settings),
            [(f"{settings.consumer_group_prefix}routing", TOPICS["intake"])]
            + [(f"{settings.consumer_group_prefix}notify", TOPICS["routing"])],
            own=lambda: runtime.follower.waited_s if runtime.follower and runtime.follower.lease.held() else 0.0,
        )
        self.last_refusal_log = -math.inf
        # Same limit whether or not the order or account exists, so a 429 reveals nothing.
        self.per_reference = RateLimit(db, "codes-per-reference", 3, hour)
        # Short windows: enough to stop a burst of junk at once, soon forgiven for a shared address.
        self.filings_per_client = RateLimit(
            db, "anonymous-filings-per-client", settings.anonymous_filings_per_client, timedelta(minutes=1)
        )
        self.filings_per_order = RateLimit(
            db, "anonymous-filings-per-order", settings.anonymous_filings_per_order, ten_minutes
        )
        self.locked_out = LockedOutPath(
            runtime.store,
            directory,
            timedelta(seconds=settings.code_ttl_s),
            settings.signing_key,
            settings.code_sealing_public_key,
        )


def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]
Caller = Annotated[str, Depends(caller_address)]


async def case_owner(svc: Services, complaint_id: str, authorization: str | None, token: str | None) -> dict:
    """The bearer must hold this case's link token or be the customer who filed it; for anyone
    else the case does not exist (404, not 403: existence is not revealed)."""
    not_found = HTTPException(404, {"message": "complaint: not found"})
    try:
        claims = auth.verify(auth.bearer(authorization) or token, svc.settings.signing_key)
    except auth.InvalidToken:
        raise not_found from None
    if claims.get("complaint_id") == complaint_id:
        return claims
    if claims.get("role") == "customer" and claims.get("sub"):
        # Who filed a complaint never changes (ComplaintFiled alone sets it): a state this process
        # holds of a filed complaint says it without the store (no read per view; an answer while
        # the store is away).
        store, stream = svc.runtime.store, complaint_stream(complaint_id)
        held = store.states.get(COMPLAINT, stream)
        complaint = held[0] if held is not None and held[0].filed else (await current(store, COMPLAINT, stream))[0]
        complainant = complaint.complainant
        if complainant is not None and complainant.customer_id == claims["sub"]:
            return claims
    raise not_found


def callback_view(complaint_id: str, callback) -> dict:
    return {
        "callback_id": callback.callback_id,
        "complaint_id": complaint_id,
        "state": callback.status,
        "position": None,
        "estimated_wait_s": None,
    }


log = logging.getLogger(__name__)

router = APIRouter(prefix="/api")


@router.get("/categories", summary='The list "does your complaint involve the following?"')
async def categories() -> list[dict[str, str]]:
    return [{"value": c.value, "label": label} for c, label in CATEGORY_LABELS.items()]


@answers(401, 422, 429)
async def anonymous_filing_limit(
    body: NewComplaint, svc: Svc, caller: Caller, key: IdempotencyKey = None, authorization: Authorization = None
) -> None:
    """Filing without a bearer costs an agent's time and proves nobody: limited per client address
    and per order (429 naming the rule). A retry with the same Idempotency-Key is no new filing."""
    if auth.bearer(authorization) or (key and await replayable(svc, "file_complaint", key, body)):
        return
    for limit, who, rule in (
        (svc.filings_per_client, caller, "from this address in a minute"),
        (svc.filings_per_order, body.order_id, "about this order in 10 minutes"),
    ):
        if who and (wait := await limit.hit(who)) is not None:
            raise HTTPException(
                429,
                {
                    "message": f"complaints: too many filed without a login {rule} (at most "
                    f"{limit.limit}); log in or verify by code, or try again later"
                },
                headers={"Retry-After": str(wait)},
            )


async def replayable(svc: Services, scope: str, key: str, body: BaseModel) -> bool:
    try:
        return await svc.idempotency.replay(scope, key, fingerprint(body.model_dump(mode="json"))) is not None
    except IdempotencyKeyReused:
        return True  # the route refuses it (422) without filing


#: What the filer can do next with the answer (OpenAPI links: clients, and the fuzzer's stateful phase).
_CASE = {"complaint_id": "$response.body#/complaint_id"}
FILED_LINKS = {
    "ReadTheCase": {
        "operationId": "case_view",
        "parameters": {**_CASE, "token": "$response.body#/access_token"},
        "description": "The case page's view, with the access token just handed out.",
    },
    "AskForACall": {
        "operationId": "request_callback",
        "parameters": _CASE,
        "description": '"Call me now" on the case (the access token as bearer).',
    },
}


@router.post(
    "/complaints",
    status_code=201,
    summary="File a complaint (or join your own open case of its order).",
    description="Without a login: anyone may file, a few times per address and per order "
    "(429 above), and account ids in `complainant` are then not recorded (nothing "
    "proves them); with `Authorization: Bearer` a customer's token or the filing token "
    "of a verified contact (POST /api/verification/verify).",
    dependencies=[Depends(anonymous_filing_limit)],
    responses={
        **problems(401, 422, 429, 503),
        201: {"description": "Filed (or linked to your open case).", "links": FILED_LINKS},
    },
)
async def file_complaint(
    body: NewComplaint, svc: Svc, key: IdempotencyKey = None, authorization: Authorization = None
) -> JSONResponse:
    complainant, assurance, owner = await filer(svc, body, authorization)

    async def run(cause: Cause) -> tuple[int, dict]:
        filed = await svc.intake.file(
            FileComplaint(
                complaint_id=derived_id("complaint", cause.id),
                **body.model_dump(exclude={"complainant"}),
                complainant=complainant,
                assurance=assurance,
                contact_id=cause.id,
            ),
            cause,
            owner=owner,
        )
        return 201, filed_answer(svc, filed)

    # A proven filer's keys are theirs alone: replaying someone else's key and body must not hand
    # out the token of that person's case (anonymous filings are replayed by key and body only).
    scope = "file_complaint" if owner is None else f"file_complaint:{owner}"
    return await idempotent(svc.idempotency, scope, key, body.model_dump(mode="json"), run)


async def filer(
    svc: Services, body: NewComplaint, authorization: str | None
) -> tuple[Complainant, Assurance, str | None]:
    """Who files, how sure we are, and the owner their proof makes them (the only one who may join
    the case of an order they opened): a customer's login, a verified contact, or nobody proven."""
    if token := auth.bearer(authorization):
        try:
            claims = auth.verify(token, svc.settings.signing_key)
        except auth.InvalidToken as exc:
            raise HTTPException(401, {"message": f"Authorization: {exc}"}) from None
        if claims.get("role") == "customer":
            return (
                body.complainant.model_copy(update={"customer_id": claims["sub"]}),
                Assurance.AUTHENTICATED,
                customer_owner(claims["sub"]),
            )
        if claims.get("purpose") == "file":
            field = "email" if "@" in claims["destination"] else "phone"
            return (
                body.complainant.model_copy(
                    update={field: claims["destination"], "customer_id": None, "seller_id": claims.get("seller_id")}
                ),
                Assurance.VERIFIED_CONTACT,
                contact_owner(claims["destination"]),
            )
        raise HTTPException(401, {"message": "Authorization: not a token for filing"})
    if body.order_id and await on_file(svc, body.order_id, None) is None:
        raise HTTPException(422, {"message": "order_id: unknown order (log in, or verify by code first)"})
    # Account ids nobody proved are not recorded: they would open the case to that account's owner
    # and put it in their history (the case page and the customer view trust them).
    complainant = body.complainant.model_copy(update={"customer_id": None, "seller_id": None})
    if not (complainant.email or complainant.phone or complainant.social_handle):
        raise HTTPException(
            422,
            {
                "message": "complainant: without a login or a verified contact, give an email, "
                "a phone or a social handle (an account id alone proves nothing)",
                "field": "complainant",
            },
        )
    return complainant, Assurance.UNVERIFIED, None


async def on_file(svc: Services, order_id: str | None, seller_id: str | None):
    try:
        return await svc.locked_out.contact_on_file(order_id, seller_id)
    except DirectoryUnavailable as exc:
        raise HTTPException(503, {"message": f"order system: {exc}"}, headers={"Retry-After": "5"}) from None


#: "Exactly one of order_id or seller_id", as JSON Schema says it (the validator below says it in Python).
ONE_REFERENCE = {
    "oneOf": [
        {
            "required": [given],
            "properties": {given: {"type": "string", "minLength": 1, "maxLength": 64}, other: {"type": "null"}},
        }
        for given, other in (("order_id", "seller_id"), ("seller_id", "order_id"))
    ]
}


class CodeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=ONE_REFERENCE)
    order_id: Id | None = Field(
        None, max_length=64, description="An order of yours (or give seller_id).", examples=["114-5523190-0012345"]
    )
    seller_id: Id | None = Field(
        None, max_length=64, description="Your seller account (or give order_id).", examples=["sell-00311"]
    )
    channel: Literal["email", "sms"] = Field("email", description="Where the contact on file gets the code.")

    @model_validator(mode="after")
    def _one_ref(self) -> CodeRequest:
        if bool(self.order_id) == bool(self.seller_id):
            raise ValueError("give exactly one of order_id or seller_id")
        return self


class CodeCheck(CodeRequest):
    verification_id: Id = Field(max_length=64, description="From POST /api/verification/codes.")
    code: str = Field(pattern=r"^\d{6}$", description="The 6 digits received.")


CODE_SENT = "If these details match our records, we have sent a code to the contact on file."


@router.post(
    "/verification/codes",
    status_code=202,
    summary="Locked out? Get a one-time code at the contact on file.",
    responses=problems(429, 503),
)
async def request_code(body: CodeRequest, svc: Svc, key: IdempotencyKey = None) -> JSONResponse:
    ref = body.order_id or body.seller_id
    if key and (stored := await svc.idempotency.replay("request_code", key, fingerprint(body.model_dump()))):
        return answer(stored.status, stored.body, {"Idempotent-Replayed": "true"})
    if (wait := await svc.per_reference.hit(ref)) is not None:
        raise HTTPException(
            429, {"message": "verification: too many codes; try again later"}, headers={"Retry-After": str(wait)}
        )
    await on_file(svc, body.order_id, body.seller_id)  # 503 if the order system is down, before anything

    async def run(cause: Cause) -> tuple[int, dict]:
        try:
            vid = await svc.locked_out.request_code(
                body.order_id, body.seller_id, body.channel, f"{secrets.randbelow(10**6):06d}", cause
            )
        except (TooManyCodes, VerificationLockedOut) as exc:
            raise HTTPException(
                429,
                {"message": f"verification: {exc.message}"},
                headers={"Retry-After": str(int(exc.retry_after.total_seconds()) + 1)},
            ) from None
        return 202, {"verification_id": vid, "message": CODE_SENT}

    return await idempotent(svc.idempotency, "request_code", key, body.model_dump(), run)


@router.post(
    "/verification/verify", summary="Check the code; a right one gives a token to file with.", responses=problems(429)
)
async def verify_code(body: CodeCheck, svc: Svc, key: IdempotencyKey = None) -> JSONResponse:
    if body.verification_id != svc.locked_out.verification_id(body.order_id, body.seller_id):
        return problem(422, "code: wrong or expired", code="code_refused", field="code")

    async def run(cause: Cause) -> tuple[int, dict]:
        try:
            verified = await svc.locked_out.verify(
                body.verification_id, body.code, body.order_id, body.seller_id, cause
            )
        except VerificationLockedOut as exc:
            raise HTTPException(
                429,
                {"message": f"code: {exc.message}"},
                headers={"Retry-After": str(int(exc.retry_after.total_seconds()) + 1)},
            ) from None
        if verified.outcome != VerifyOutcome.VERIFIED:
            return 422, problem_body(422, "code: wrong or expired", code="code_refused", field="code")
        token = auth.sign(
            {
                "purpose": "file",
                "destination": verified.destination,
                "order_id": body.order_id,
                "seller_id": body.seller_id,
            },
            svc.settings.signing_key,
            timedelta(minutes=30),
        )
        return 200, {"filing_token": token, "expires_in_s": 1800}

    return await idempotent(svc.idempotency, "verify_code", key, body.model_dump(), run)


def filed_answer(svc: Services, filed: Filed) -> dict:
    """The filer's access to their case: ``filed`` is the case just opened or, linked, the case the
    same proven owner opened (``Intake.file``), never another person's."""
    token = auth.sign(
        {"complaint_id": filed.complaint_id}, svc.settings.signing_key, timedelta(days=svc.settings.access_token_days)
    )
    return {
        "complaint_id": filed.complaint_id,
        "reference": short_reference(filed.complaint_id),
        "status": filed.status,
        "access_token": token,
        "status_url": f"/complaints/{filed.complaint_id}?token={token}",
    }


@router.post(
    "/complaints/{complaint_id}/callback",
    status_code=202,
    summary='"Call me now".',
    responses=problems(404, 409, 429, 503),
)
async def request_callback(
    complaint_id: PathId,
    body: CallMe,
    caller: Caller,
    svc: Svc,
    key: IdempotencyKey = None,
    authorization: Authorization = None,
) -> JSONResponse:
    await case_owner(svc, complaint_id, authorization, None)
    if (refusal := callbacks_backlogged(svc)) is not None:
        return refusal  # before the rate limits: a click refused for the queue costs no attempt
    for limit, who in ((svc.per_phone, body.phone), (svc.per_client, caller)):
        if (wait := await limit.hit(who)) is not None:
            return problem(
                429,
                "callback: too many requests; try again later",
                code="too_many_callbacks",
                headers={"Retry-After": str(wait)},
            )

    async def run(cause: Cause) -> tuple[int, dict]:
        callback = await svc.intake.request_callback(complaint_id, body.phone, body.preferred_language, cause)
        return 202, callback_view(complaint_id, callback)

    return await idempotent(svc.idempotency, f"callback:{complaint_id}", key, body.model_dump(), run)


def callbacks_backlogged(svc: Services) -> JSONResponse | None:
    """A 503 while a callback accepted now would wait too long behind the ones already queued
    (ADR 0051): the caller is told when to try again, and nothing is recorded."""
    limit = svc.settings.callback_admission_wait_s
    if not limit or (behind := svc.callbacks_behind.behind_s()) < limit:
        return None
    retry = min(60, math.ceil(behind - limit) + 1)
    if (now := time.monotonic()) - svc.last_refusal_log >= 10:  # one line per 10 s, not one per click
        svc.last_refusal_log = now
        log.warning(
            "refusing callbacks: the queue ahead is too long",
            extra={"fields": {"behind_s": round(behind, 1)} | svc.callbacks_behind.figures()},
        )
    return problem(
        503,
        f"callback: the calls already waiting would hold yours about {math.ceil(behind)} s; nothing was "
        f"recorded. Try again in {retry} s.",
        code="callbacks_backlogged",
        headers={"Retry-After": str(retry)},
    )


@router.delete(
    "/complaints/{complaint_id}/callback/{callback_id}", summary="Cancel the callback.", responses=problems(404, 409)
)
async def cancel_callback(
    complaint_id: PathId, callback_id: PathId, svc: Svc, authorization: Authorization = None
) -> dict:
    await case_owner(svc, complaint_id, authorization, None)
    cause = Cause.of_request(derived_id("cancel", complaint_id, callback_id), "cancel_callback")
    return callback_view(complaint_id, await svc.intake.cancel_callback(complaint_id, callback_id, cause))


@router.post(
    "/complaints/{complaint_id}/closure",
    status_code=202,
    summary='Answer "is your complaint closed?" from the case page (notify applies it).',
    responses=problems(404, 409),
)
async def answer_closure(
    complaint_id: PathId, body: ClosureAnswer, svc: Svc, key: IdempotencyKey = None, authorization: Authorization = None
) -> JSONResponse:
    await case_owner(svc, complaint_id, authorization, None)

    async def run(cause: Cause) -> tuple[int, dict]:
        question = ((await svc.cases.get(complaint_id)) or {}).get("closure")
        # The view can trail notify's question by a moment; an answer before it is asked, or a
        # second one, would only be ignored by notify, so the page is told plainly instead. After
        # closing unconfirmed an answer still counts: the complainant came back.
        if not question or question["state"] not in OPEN_QUESTION:
            state = question["state"] if question else "not_asked"
            return 409, problem_body(
                409,
                f"closure: there is no open question to answer (it is {state})",
                code="closure_not_open",
                closure=question,
            )
        await svc.intake.answer_closure(complaint_id, body.answer, body.reason, cause)
        return 202, {"complaint_id": complaint_id, "closure": {**question, "state": "answered", "answer": body.answer}}

    return await idempotent(svc.idempotency, f"closure:{complaint_id}", key, body.model_dump(), run)


@router.get(
    "/complaints/{complaint_id}",
    summary="The customer's view of their case (no internal notes).",
    responses=problems(404),
)
async def case_view(
    complaint_id: PathId, svc: Svc, authorization: Authorization = None, token: TokenQuery = None
) -> dict:
    await case_owner(svc, complaint_id, authorization, token)
    view = await svc.cases.shown(complaint_id)
    if view is None:
        raise HTTPException(404, {"message": "complaint: not found"})
    callback = view["callback"] and {**view["callback"], "complaint_id": complaint_id}
    return {
        "complaint_id": complaint_id,
        "reference": short_reference(complaint_id),
        "category": view["category"],
        "category_label": CATEGORY_LABELS[Category(view["category"])],
        "status": view["status"],
        "callback": callback,
        "outcomes": view.get("outcomes", []),
        "closure": view.get("closure"),
        "next_step": next_step(view, datetime.now(UTC)),
        "shipment": shipment_for(view),
        "timeline": [{k: e[k] for k in ("time", "type", "summary")} for e in view["timeline"]],
    }


def shipment_for(view: dict) -> dict | None:
    """The carrier's sentence about the order, only for a complainant the order is proven to be
    (a login, a verified contact, or the case we opened for the order's customer): an order number
    is printed on parcels, and a stranger naming it must not learn its deliveries (ADR 0011)."""
    proven = view.get("assurance") != Assurance.UNVERIFIED.value or view.get("channel") == "proactive"
    return view.get("shipment") if proven else None


@router.get(
    "/agents/customers/{identifier}",
    summary="Unified customer view: every complaint, order and account of one person (agents only).",
)
async def customer_view(identifier: PathId, svc: Svc, _: Annotated[dict, Depends(staff_claims)]) -> dict:
    return await svc.people.unified(identifier)


@answers(401)
def webhook_caller(request: Request, svc: Svc) -> None:
    """Only the mail provider and the social platforms, holding the shared secret, post contacts."""
    given = auth.bearer(request.headers.get("authorization")) or ""
    if not hmac.compare_digest(given.encode(), svc.settings.inbound_webhook_secret.encode()):
        raise HTTPException(401, {"message": "Authorization: the inbound webhook secret is required"})


Webhook = Depends(webhook_caller)


@router.post(
    "/inbound/email",
    status_code=202,
    summary="A raw RFC 5322 message from the mail provider's inbound webhook.",
    dependencies=[Webhook],
    responses=problems(413, 422),
)
async def inbound_email(request: Request, svc: Svc) -> JSONResponse:
    raw = await request.body()
    try:
        mail = await anyio.to_thread.run_sync(parse_email, raw, svc.settings.max_body_bytes)
    except InvalidEmail as exc:
        return problem(422, f"email: {exc}", code="invalid_email", field="body")
    cause = Cause.of_request(
        derived_id("email", mail.message_id or fingerprint(raw.decode(errors="replace"))), "inbound_email"
    )
    tokens = lambda t: auth.complaint_of_reply_token(t, svc.settings.signing_key)  # noqa: E731
    outcome = await svc.intake.receive_email(mail, tokens, cause)
    if isinstance(outcome, Ignored):
        return JSONResponse({"status": "ignored", "reason": outcome.reason}, 202)
    return JSONResponse({"status": outcome.status, "complaint_id": outcome.complaint_id}, 202)


@router.post(
    "/inbound/social",
    status_code=202,
    summary="A post or direct message from a social platform's webhook.",
    dependencies=[Webhook],
)
async def inbound_social(post: SocialPost, svc: Svc) -> JSONResponse:
    cause = Cause.of_request(derived_id("social", post.platform, post.post_id), "inbound_social")
    filed = await svc.intake.receive_social(post, cause)
    return JSONResponse({"status": filed.status, "complaint_id": filed.complaint_id}, 202)


def add_routes(app: FastAPI) -> None:
    app.include_router(router)


def subscribe(runtime: Runtime, intake: Intake) -> None:
    """Intake listens to everything, for the case timeline and the customer view (one consumer,
    in the service's own group); a carrier's exception opens a proactive case; a closed case
    releases its order."""

    async def proactive_case(alert: ShipmentExceptionDetected, envelope: Envelope) -> None:
        await intake.open_proactive_case(alert, Cause.of_event(envelope, "open_proactive_case"))

    async def release_order(closed: CustomerConfirmedClosed | ComplaintClosedUnconfirmed, envelope: Envelope) -> None:
        await intake.release_order(closed.complaint_id, Cause.of_event(envelope, "release_order"))

    others = [topic for service, topic in TOPICS.items() if service != "intake"]
    runtime.consumer.subscribe(
        others,
        runtime.settings.consumer_group,
        {
            ShipmentExceptionDetected: proactive_case,
            CustomerConfirmedClosed: release_order,
            ComplaintClosedUnconfirmed: release_order,
        },
        record_all=True,
    )
