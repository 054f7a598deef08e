"""Notify's entry points: the one-click closure links, other systems' requests, bounces, subscriptions."""

from __future__ import annotations

import hmac
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts import TOPICS
from contracts.envelope import Envelope, Event
from contracts.intake import E164, ClosureAnswered, ComplaintFiled, CustomerMessageReceived, VerificationCodeRequested
from contracts.notify import EMAIL
from contracts.routing import CallbackDispatched, ComplaintResolved, PartnerOutcomeRecorded
from services.kernel import auth
from services.kernel.eventstore import Cause, derived_id
from services.kernel.fields import Id
from services.kernel.runtime import Runtime
from services.kernel.web import Authorization, answers
from services.notify.application import Notify
from services.notify.complainants import Complainant
from services.notify.messages import REQUESTABLE, Templates
from services.notify.settings import NotifySettings

pages = Jinja2Templates(directory=Path(__file__).parent / "templates" / "pages")
# The page's URL carries the signed token: no request it makes may send it on as a Referer.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}
BUTTONS = {"yes": "Yes, it's closed", "no": "No, still a problem"}
DONE = {
    "confirmed": ("Thank you", "Your complaint is closed. We are glad it is sorted."),
    "disputed": (
        "We are on it",
        "Your complaint is open again, with everything you told us so far. The team will be in touch.",
    ),
    "closed_unconfirmed": ("Closed", "Your complaint was closed."),
}


class Services:
    """What the routes need, built once by app.py."""

    def __init__(self, settings: NotifySettings, runtime: Runtime, notify: Notify, templates: Templates) -> None:
        self.settings, self.runtime, self.notify, self.templates = settings, runtime, notify, templates


def services(request: Request) -> Services:
    return request.app.state.services


Svc = Annotated[Services, Depends(services)]


def page(
    request: Request, status: int, title: str, message: str, action: str | None = None, button: str | None = None
) -> HTMLResponse:
    return pages.TemplateResponse(
        request,
        "answer.html",
        {"title": title, "message": message, "action": action, "button": button},
        status_code=status,
        headers=HEADERS,
    )


def closure_claims(svc: Services, token: str | None) -> dict:
    """The claims of a closure link; a tampered or expired one raises LinkRefused with a page's words."""
    try:
        claims = auth.verify(token, svc.settings.signing_key)
    except auth.InvalidToken as exc:
        if "expired" in str(exc).lower():
            raise LinkRefused(
                410,
                "This link has expired",
                "The link in your email is too old to use. "
                "Nothing was changed. Reply to the email instead and we will read it.",
            ) from None
        raise LinkRefused(
            400,
            "This link is not valid",
            "The link is incomplete or was changed. Nothing "
            "was changed. Please use the link exactly as it is in your email, or reply to it.",
        ) from None
    if (
        claims.get("purpose") != "closure"
        or claims.get("answer") not in BUTTONS
        or not claims.get("case")
        or not claims.get("message_id")
    ):
        raise LinkRefused(
            400, "This link is not valid", "This is not a link to answer our question. Nothing was changed."
        )
    return claims


class LinkRefused(Exception):
    def __init__(self, status: int, title: str, message: str) -> None:
        super().__init__(message)
        self.status, self.title, self.message = status, title, message


links = APIRouter(include_in_schema=False)


@links.get("/closure", response_class=HTMLResponse)
async def closure_question(request: Request, svc: Svc, token: str | None = None) -> HTMLResponse:
    # A GET changes nothing: mail scanners open links before people do. The button POSTs.
    answer = closure_claims(svc, token)["answer"]
    return page(
        request,
        200,
        "Is your complaint closed?",
        f"You chose: {BUTTONS[answer]}. Press the button to tell us.",
        action=f"closure?token={token}",
        button=BUTTONS[answer],
    )


@links.post("/closure", response_class=HTMLResponse)
async def closure_answer(request: Request, svc: Svc, token: str | None = None) -> HTMLResponse:
    claims = closure_claims(svc, token)
    result, status = await svc.notify.answer_link(
        claims, Cause.of_request(derived_id("closure", token), "closure_link")
    )
    title, message = DONE.get(status or "", ("Thank you", "We have your answer."))
    if result == "superseded":
        message = "This link belongs to an earlier question; nothing was changed. Please use our latest email."
    elif result == "already_answered":
        message = f"We already have your answer, nothing was changed. {message}"
    elif result == "unknown":
        return page(request, 404, "This link is not valid", "We could not find this question. Nothing was changed.")
    return page(request, 200, title, message)


class NotificationRequest(BaseModel):
    """An automated message another system wants sent (it goes through the loop guard)."""

    model_config = ConfigDict(extra="forbid")
    request_id: str = Field(
        min_length=8,
        max_length=200,
        description="Your id of this intent: the same id is sent at most once.",
        examples=["seller-reminder-sell-00311-2026-03-15"],
    )
    template: str = Field(
        pattern=r"^[a-z_]{1,64}$", description="A template others may request.", examples=["seller_login_reminder"]
    )
    recipient: Id = Field(max_length=320, description="Customer or seller id.", examples=["sell-00311"])
    channel: Literal["email", "sms"] = Field("email", description="email or sms.")
    address: str = Field(
        min_length=3,
        max_length=320,
        description="Email address, or E.164 phone for sms.",
        examples=["lena@marshandco.example.com"],
    )
    display_name: str | None = Field(None, max_length=200, examples=["Lena Marsh"])
    complaint_id: Id | None = Field(None, description="The case, if it is about one.")
    context: dict[Annotated[str, Field(pattern=r"^[a-z_]{1,64}$")], Annotated[str, Field(max_length=2000)]] = Field(
        default_factory=dict,
        max_length=50,
        description="The template's variables, as text.",
        examples=[{"login_url": "https://sellers.example.com/login"}],
    )

    @model_validator(mode="after")
    def _address_fits_channel(self) -> NotificationRequest:
        if not re.match(EMAIL if self.channel == "email" else E164, self.address):
            raise ValueError(
                f"address must be {'an email address' if self.channel == 'email' else 'E.164'} "
                f"for channel {self.channel}"
            )
        return self


class Bounce(BaseModel):
    model_config = ConfigDict(extra="forbid")
    address: str = Field(pattern=EMAIL, max_length=320, description="The recipient that bounced.")
    status: str = Field(pattern=r"^[245]\.\d{1,3}\.\d{1,3}$", description="RFC 3463 status, e.g. 5.1.1.")
    complaint_id: Id | None = Field(None, description="The case, if it is about one.")


@answers(401)
def caller(svc: Svc, authorization: Authorization = None) -> None:
    """Only systems holding the shared secret (the seller-account system, the mail provider) post here."""
    if not hmac.compare_digest(auth.bearer(authorization) or "", svc.settings.inbound_webhook_secret):
        raise HTTPException(
            401, {"message": "Authorization: a valid bearer token is required"}, {"WWW-Authenticate": "Bearer"}
        )


api = APIRouter(prefix="/api", tags=["notifications"], dependencies=[Depends(caller)])


@api.post("/notifications", status_code=202, summary="Ask for an automated message; the loop guard decides.")
async def request_notification(body: NotificationRequest, svc: Svc) -> dict:
    who = Complainant(complaint_id=body.complaint_id, recipient=body.recipient, display_name=body.display_name)
    context = {"display_name": who.greeting, **body.context}
    check_template(svc, body.template, context)
    state = await svc.notify.request(
        who,
        body.template,
        body.address,
        body.channel,
        context,
        body.request_id,
        Cause.of_request(derived_id("notification", body.request_id), "request"),
    )
    message_id = svc.notify.message_id(body.template, body.recipient, body.request_id)
    return {"message_id": message_id, "verdict": "queued" if message_id in state.queued else "suppressed"}


def check_template(svc: Services, template: str, context: dict) -> None:
    if template not in REQUESTABLE:
        raise HTTPException(422, {"message": f"template: must be one of {sorted(REQUESTABLE)}"})
    missing = svc.templates.variables(template) - set(context)
    if missing:
        raise HTTPException(422, {"message": f"context: missing {', '.join(sorted(missing))} for {template}"})


@api.post("/bounces", status_code=202, summary="A delivery status notification: 5.x.x marks the address.")
async def bounce(body: Bounce, svc: Svc) -> dict:
    if not body.status.startswith("5."):
        return {"address": body.address, "undeliverable": False}
    await svc.notify.mark_bounced(
        body.address.lower(),
        body.status,
        body.complaint_id,
        Cause.of_request(derived_id("bounce", body.address.lower()), "bounce"),
    )
    return {"address": body.address.lower(), "undeliverable": True}


def add_routes(app: FastAPI) -> None:
    app.include_router(links)
    app.include_router(api)

    @app.exception_handler(LinkRefused)
    async def refused(request: Request, exc: LinkRefused) -> HTMLResponse:
        return page(request, exc.status, exc.title, exc.message)


def subscribe(runtime: Runtime, notify: Notify) -> None:
    """Notify acts on routing's resolutions, callbacks and outcomes and on intake's complaints, replies
    and codes (one consumer in the service's own group)."""

    def handler(use_case: Callable[[Any, Cause], Awaitable[Any]]):
        async def handle(event: Event, envelope: Envelope) -> None:
            await use_case(event, Cause.of_event(envelope, use_case.__name__))

        return handle

    runtime.consumer.subscribe(
        [TOPICS["intake"], TOPICS["routing"]],
        runtime.settings.consumer_group,
        {
            ComplaintFiled: handler(notify.note_complainant),
            CustomerMessageReceived: handler(notify.read_reply),
            ClosureAnswered: handler(notify.answer_on_page),
            VerificationCodeRequested: handler(notify.send_code),
            ComplaintResolved: handler(notify.propose_closure),
            CallbackDispatched: handler(notify.dial),
            PartnerOutcomeRecorded: handler(notify.share_outcome),
        },
    )
