"""The agent desktop (``/desk/``) and the partner team view (``/partner/``), served by the front door.

Server-rendered pages whose scripts call each owning service's API straight from the browser:
routing's (``ROUTING_PUBLIC_URL``, which allows this origin by CORS) for queues, case state and
every action, carrier's (``CARRIER_PUBLIC_URL``, likewise) for the case's packages and re-checks,
intake's ``/api/desk/…`` for the filing, the staff timeline and the customer view.
The pages add no rule of their own: what an API refuses, the page shows next to the field.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import BaseModel, ConfigDict, Field

from contracts.intake import CATEGORY_LABELS, ComplaintFiled, short_reference
from contracts.routing import EscalationReason, ResolutionAction
from services.intake.desk_views import DeskCaseViews
from services.intake.handlers import Svc
from services.intake.pages import HEADERS, templates
from services.intake.projections import identifiers
from services.kernel import auth
from services.kernel.openapi import problems
from services.kernel.staff import staff_claims
from services.kernel.web import STAFF_ROLES, PathId, answers, token_claims

ACTIONS = {
    ResolutionAction.CANCEL_ITEMS: "Cancel undelivered items",
    ResolutionAction.REFUND_SHIPPING: "Refund shipping",
    ResolutionAction.RESHIP: "Reship",
    ResolutionAction.GOODWILL_CREDIT: "Credit (goodwill)",
}


claims = token_claims


api = APIRouter(prefix="/api/desk", tags=["desk"])


@answers(403)
def desk_user(token: Annotated[dict, Depends(claims)]) -> dict:
    """A token of someone the desk or the partner view is for (an agent, a supervisor, a partner of
    a team), naming who (``sub``); 403 for anyone else."""
    role, sub, team = token.get("role"), token.get("sub"), token.get("team")
    if (
        not isinstance(sub, str)
        or not sub
        or not (role in STAFF_ROLES or (role == "partner" and isinstance(team, str) and team))
    ):
        raise HTTPException(403, {"message": "Authorization: for agents, supervisors and partner teams only"})
    return token


@api.get(
    "/me",
    summary="Who a bearer token signs in (the desk's and partner view's sign-in check).",
    description="Reads the token only: an agent just added to the roster can sign in before every "
    "service has heard of them.",
)
async def me(token: Annotated[dict, Depends(desk_user)]) -> dict:
    return {k: token.get(k) for k in ("sub", "role", "team", "exp")}


async def case_reader(request: Request, token: Annotated[dict, Depends(desk_user)]) -> dict:
    """A supervisor, an agent on the roster, or a partner user of some team (which team is checked
    against the case); 403 for anyone else."""
    return token if token["role"] == "partner" else await staff_claims(request, token)


@api.get(
    "/cases/{complaint_id}",
    summary="A case for staff: the filing, every service's events, "
    "the unified customer view of each of the complainant's identifiers, "
    "the other complaints about the same order.",
    description="Agents and supervisors read any case; a partner user reads the cases routed or "
    "transferred to their team, without the unified customer view and the related cases.",
    responses=problems(404),
)
async def desk_case(complaint_id: PathId, svc: Svc, reader: Annotated[dict, Depends(case_reader)]) -> dict:
    views = DeskCaseViews(svc.runtime.store.db)
    view = await views.get(complaint_id)
    partner = reader["role"] == "partner"
    if view is None or (partner and reader["team"] not in view.get("teams", [])):
        # Another team's case does not exist for this partner, as for a customer.
        raise HTTPException(404, {"message": f"complaint: there is no complaint {complaint_id!r}"})
    filing = view["filing"]
    keys = [] if partner else identifiers(ComplaintFiled.model_validate(filing))
    # Other people's complaints about the order: a partner team reads only the case it was given.
    related = {} if partner else {"related": await views.related(complaint_id, filing.get("order_id"))}
    return {
        "complaint_id": complaint_id,
        "reference": short_reference(complaint_id),
        "filing": filing,
        "category_label": CATEGORY_LABELS.get(filing["category"], filing["category"]),
        "timeline": view["timeline"],
        "customer": {key: await svc.people.unified(key) for key in keys},
        **related,
    }


class DevSignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["agent", "supervisor", "partner", "admin"] = Field(examples=["agent"])
    sub: str = Field(
        min_length=1, max_length=100, pattern=r"^[\w.@-]+$", description="Who signs in.", examples=["agt-ana"]
    )
    team: str | None = Field(
        None, min_length=1, max_length=100, description="A partner's team.", examples=["team-logistics-uk-south"]
    )


@answers(404)
def dev_sign_in_enabled(svc: Svc) -> None:
    """The development sign-in exists only where DEV_SIGN_IN=true says so (the local stack)."""
    if not svc.settings.dev_sign_in:
        raise HTTPException(404, {"message": "dev-sign-in: not offered here (DEV_SIGN_IN is off)"})


@api.post(
    "/dev-sign-in",
    summary="Local stack only: a token for anyone (404 unless DEV_SIGN_IN=true).",
    dependencies=[Depends(dev_sign_in_enabled)],
)
async def dev_sign_in(body: DevSignIn, svc: Svc) -> dict:
    if body.role == "partner" and not body.team:
        raise HTTPException(422, {"message": "team: a partner signs in for a team", "field": "team"})
    ttl = timedelta(hours=svc.settings.desk_token_hours)
    return {
        "token": auth.sign(body.model_dump(exclude_none=True), svc.settings.signing_key, ttl),
        "expires_in_s": int(ttl.total_seconds()),
    }


pages = APIRouter(include_in_schema=False)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _headers(svc) -> dict[str, str]:
    # The browser calls routing (and carrier, when set) itself: the only other places scripts may connect to.
    origins = " ".join(
        _origin(url) for url in (svc.settings.routing_public_url, svc.settings.carrier_public_url) if url
    )
    csp = HEADERS["Content-Security-Policy"].replace(
        "default-src 'self';", f"default-src 'self'; connect-src 'self' {origins};"
    )
    return {**HEADERS, "Content-Security-Policy": csp, "Cache-Control": "no-store"}


def _page(request: Request, svc, template: str, audience: str, **context) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        f"desk/{template}",
        {
            "audience": audience,
            "routing_url": svc.settings.routing_public_url.rstrip("/"),
            "carrier_url": svc.settings.carrier_public_url.rstrip("/"),
            "dev_sign_in": svc.settings.dev_sign_in,
            **context,
        },
        headers=_headers(svc),
    )


@pages.get("/desk", response_class=HTMLResponse)
@pages.get("/partner", response_class=HTMLResponse)
async def without_slash(request: Request) -> RedirectResponse:
    return RedirectResponse(f"{request.url.path}/", 308)


@pages.get("/desk/", response_class=HTMLResponse)
async def queue_page(request: Request, svc: Svc) -> HTMLResponse:
    return _page(request, svc, "queue.html", "desk")


@pages.get("/desk/cases/{complaint_id}", response_class=HTMLResponse)
async def case_page(request: Request, complaint_id: str, svc: Svc) -> HTMLResponse:
    return _page(
        request,
        svc,
        "case.html",
        "desk",
        complaint_id=complaint_id,
        actions=ACTIONS,
        reasons=[r.value for r in EscalationReason],
    )


@pages.get("/desk/metrics", response_class=HTMLResponse)
async def metrics_page(request: Request, svc: Svc) -> HTMLResponse:
    """The supervisors' dashboard; its script reads ``/api/metrics/…``, which refuses anyone else."""
    return _page(
        request, svc, "metrics.html", "desk", days=svc.settings.metrics_days, refresh_s=svc.settings.metrics_refresh_s
    )


@pages.get("/partner/", response_class=HTMLResponse)
async def partner_page(request: Request, svc: Svc) -> HTMLResponse:
    return _page(request, svc, "partner.html", "partner")


@pages.get("/desk/sign-in", response_class=HTMLResponse)
@pages.get("/partner/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, svc: Svc) -> HTMLResponse:
    audience = request.url.path.split("/")[1]
    return _page(request, svc, "sign-in.html", audience)


def add_desk(app: FastAPI) -> None:
    app.include_router(api)
    app.include_router(pages)
