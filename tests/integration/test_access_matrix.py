"""Who may call what: every route of routing's API, intake's desk API and carrier's API, called by
each kind of caller, on the real broker and store, answers as the role matrix of the README says.

The matrix is data (``EXPECTED``); a route that has no row fails the test, so a new route cannot
ship without someone deciding who may call it. "ok" means the caller got past authorization: a
success, or the route's own answer to the deliberately invalid body (422) or to the case's state
(409); every body sent carries an unknown field, so no allowed call changes the roster or a case.
"""

from __future__ import annotations

import asyncio
import uuid
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import timedelta

import httpx
import pytest

from contracts import TOPICS
from services.carrier.app import create_app as create_carrier
from services.carrier.settings import CarrierSettings
from services.intake.app import create_app as create_intake
from services.intake.settings import IntakeSettings
from services.kernel import auth
from services.kernel.staff import StaffDirectory
from services.routing.app import create_app as create_routing
from services.routing.settings import RoutingSettings
from tests.integration.simulators import carrier_simulator_url  # noqa: F401  (session fixture)
from tests.integration.support import skip_history, wait_for

pytestmark = pytest.mark.integration

ROLES = (
    "anonymous",
    "customer link",
    "other customer",
    "agent holding",
    "agent not holding",
    "unknown agent",
    "supervisor",
    "admin",
    "partner of the team",
    "partner of another team",
)
TEAM, OTHER_TEAM = "team-matrix", "team-elsewhere"
HOLDER, OTHER_AGENT = "agt-holder", "agt-other"
ORDER, ITS_CUSTOMER = "114-2087456-3319876", "cust-1001"  # a kettle, in orders.json

OK = "ok"
#: The answers, in the order of ROLES. For routing's case routes the case is held by "agent
#: holding"; for the partner routes it is with TEAM.
# A customer's case link names no one (no `sub`): not a person's token, so 401 on staff routes.
ONLY_STAFF_READ = (401, 401, 403, OK, OK, 403, OK, 403, 403, 403)
HELD_CASE = (401, 401, 403, OK, 403, 403, OK, 403, 403, 403)
TEAM_ACTION = (401, 401, 403, 403, 403, 403, OK, 403, OK, 404)
ROSTER_ADMIN = (401, 401, 403, 403, 403, 403, OK, OK, 403, 403)
ONLY_SUPERVISORS = (401, 401, 403, 403, 403, 403, OK, 403, 403, 403)
EXPECTED: dict[tuple[str, str, str], tuple] = {
    # routing
    ("routing", "POST", "/api/agents"): ROSTER_ADMIN,
    ("routing", "POST", "/api/partner-teams"): ROSTER_ADMIN,
    ("routing", "GET", "/api/agents"): (401, 401, 403, OK, OK, 403, OK, OK, 403, 403),
    ("routing", "PUT", "/api/agents/{agent_id}/availability"): (401, 401, 403, OK, 403, 403, OK, OK, 403, 403),
    ("routing", "GET", "/api/agents/{agent_id}/queue"): (401, 401, 403, OK, 403, 403, OK, 403, 403, 403),
    ("routing", "GET", "/api/cases/{complaint_id}"): ONLY_STAFF_READ,
    # the callback went to the holder: anyone else on the staff gets the case's 409
    ("routing", "POST", "/api/cases/{complaint_id}/callbacks/{callback_id}/connected"): ONLY_STAFF_READ,
    ("routing", "POST", "/api/cases/{complaint_id}/transfer"): HELD_CASE,
    ("routing", "POST", "/api/cases/{complaint_id}/actions"): HELD_CASE,
    ("routing", "POST", "/api/cases/{complaint_id}/resolve"): HELD_CASE,
    ("routing", "POST", "/api/cases/{complaint_id}/escalate"): HELD_CASE,
    ("routing", "POST", "/api/cases/{complaint_id}/notes"): HELD_CASE,
    ("routing", "POST", "/api/cases/{complaint_id}/release"): HELD_CASE,
    ("routing", "GET", "/api/supervisor/queue"): (401, 401, 403, 403, 403, 403, OK, 403, 403, 403),
    ("routing", "GET", "/api/partner-teams/{team_id}/inbox"): (401, 401, 403, OK, OK, 403, OK, 403, OK, 404),
    ("routing", "POST", "/api/partner-teams/{team_id}/cases/{complaint_id}/acknowledge"): TEAM_ACTION,
    ("routing", "POST", "/api/partner-teams/{team_id}/cases/{complaint_id}/notes"): TEAM_ACTION,
    ("routing", "POST", "/api/partner-teams/{team_id}/cases/{complaint_id}/outcome"): TEAM_ACTION,
    # intake: the desk's API and the unified customer view
    ("intake", "GET", "/api/desk/me"): (401, 401, 403, OK, OK, OK, OK, 403, OK, OK),
    ("intake", "GET", "/api/desk/cases/{complaint_id}"): (401, 401, 403, OK, OK, 403, OK, 403, OK, 404),
    ("intake", "POST", "/api/desk/dev-sign-in"): (404,) * 10,  # only where DEV_SIGN_IN is set
    ("intake", "GET", "/api/agents/customers/{identifier}"): ONLY_STAFF_READ,
    # intake: the customer-experience metrics name agents and teams: supervisors only
    ("intake", "GET", "/api/metrics/figures"): ONLY_SUPERVISORS,
    ("intake", "GET", "/api/metrics/breaches"): ONLY_SUPERVISORS,
    # carrier
    ("carrier", "GET", "/api/complaints/{complaint_id}/shipments"): ONLY_STAFF_READ,
    ("carrier", "POST", "/api/complaints/{complaint_id}/recheck"): ONLY_STAFF_READ,
    ("carrier", "POST", "/api/webhooks/tracking"): (401,) * 10,  # signed by the carrier, not a person
}


def api_routes(app, *prefixes: str) -> set[tuple[str, str]]:
    """Every (method, path) of the app's API under these prefixes, as its OpenAPI document lists them."""
    return {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(prefixes)
        for method in operations
    }


def bearer(key: str, **claims) -> dict:
    return {"Authorization": f"Bearer {auth.sign(claims, key, timedelta(minutes=10))}"}


@asynccontextmanager
async def serving(app, name: str):
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app), base_url=f"http://{name}", timeout=30
        ) as client:
            client.app = app
            yield client


@pytest.fixture
async def platform(settings, order_system_url, carrier_simulator_url):  # noqa: F811
    """Routing, intake and carrier on the real broker and store, each with its own group and database."""
    base = settings.model_dump()
    configs = {
        "routing": RoutingSettings(
            **{
                **base,
                "service_name": f"routing-{settings.service_name}",
                "mongodb_database": f"{settings.database_name}_routing",
                "order_system_url": order_system_url,
                "timer_interval_s": 3600,
            }
        ),
        "intake": IntakeSettings(
            **{
                **base,
                "service_name": f"intake-{settings.service_name}",
                "mongodb_database": f"{settings.database_name}_intake",
                "order_system_url": order_system_url,
            }
        ),
        "carrier": CarrierSettings(
            **{
                **base,
                "service_name": f"carrier-{settings.service_name}",
                "mongodb_database": f"{settings.database_name}_carrier",
                "order_system_url": order_system_url,
                "recheck_interval_s": 0,
                **{f"{c}_url": carrier_simulator_url for c in ("fedex", "ups", "usps", "auspost")},
            }
        ),
    }
    for config in configs.values():
        for topic in TOPICS.values():
            await asyncio.to_thread(skip_history, config.kafka_bootstrap_servers, config.consumer_group, topic)
    makers = {"routing": create_routing, "intake": create_intake, "carrier": create_carrier}
    async with AsyncExitStack() as stack:
        clients = {
            name: await stack.enter_async_context(serving(makers[name](config), name))
            for name, config in configs.items()
        }
        yield clients, configs["routing"].signing_key
        for client in clients.values():
            db = client.app.state.services.runtime.store.db
            await db.client.drop_database(db.name)


async def a_case_held_by_the_holder(clients, key: str, customer: str, order_id: str | None = None) -> str:
    filed = await clients["intake"].post(
        "/api/complaints",
        headers=bearer(key, sub=customer, role="customer"),
        json={
            "category": "late_delivery",
            "description": "My parcel is a week late.",
            "complainant": {"email": f"{customer}@example.com"},
            **({"order_id": order_id} if order_id else {}),
        },
    )
    assert filed.status_code == 201, filed.text
    complaint_id = filed.json()["complaint_id"]
    boss = bearer(key, sub="sup-matrix", role="supervisor")

    async def held() -> bool:
        answer = await clients["routing"].get(f"/api/agents/{HOLDER}/queue", headers=boss)
        return complaint_id in {c["complaint_id"] for c in answer.json()["cases"]}

    await wait_for(held, timeout=60)
    return complaint_id


@pytest.fixture
async def world(platform):
    """A team and another; the holder (who holds case ``held``, with a callback dispatched to them)
    and another agent; case ``with_team`` transferred to the team."""
    clients, key = platform
    admin = bearer(key, sub="adm-matrix", role="admin")
    for team in (TEAM, OTHER_TEAM):
        answer = await clients["routing"].post(
            "/api/partner-teams",
            headers=admin,
            json={"team_id": team, "name": team, "categories": ["late_delivery"], "response_sla_minutes": 240},
        )
        assert answer.status_code == 201, answer.text
    for agent_id, skills in ((HOLDER, ["late_delivery"]), (OTHER_AGENT, ["other"])):
        answer = await clients["routing"].post(
            "/api/agents",
            headers=admin,
            json={"agent_id": agent_id, "name": agent_id, "skills": skills, "languages": ["en-GB"], "capacity": 3},
        )
        assert answer.status_code == 201, answer.text
        answer = await clients["routing"].put(
            f"/api/agents/{agent_id}/availability", headers=admin, json={"availability": "available"}
        )
        assert answer.status_code == 200, answer.text
    for service in ("intake", "carrier"):
        directory = StaffDirectory(clients[service].app.state.services.runtime.store.db)
        await wait_for(lambda directory=directory: directory.on_roster(OTHER_AGENT), timeout=60)

    held = await a_case_held_by_the_holder(clients, key, ITS_CUSTOMER, ORDER)
    call = await clients["intake"].post(
        f"/api/complaints/{held}/callback",
        json={"phone": "+447700900111"},
        headers=bearer(key, sub=ITS_CUSTOMER, role="customer"),
    )
    assert call.status_code == 202, call.text
    callback_id = call.json()["callback_id"]
    with_team = await a_case_held_by_the_holder(clients, key, f"cust-{uuid.uuid4().hex[:6]}")
    moved = await clients["routing"].post(
        f"/api/cases/{with_team}/transfer",
        headers=bearer(key, sub=HOLDER, role="agent"),
        json={
            "team_id": TEAM,
            "brief": {"customer_asks": "Where is it?", "tried": "Tracking.", "promised": "An answer today."},
        },
    )
    assert moved.status_code == 200, moved.text

    async def ready() -> bool:  # the callback dispatched, the desk's view and the carrier's watch up to date
        case = (
            await clients["routing"].get(f"/api/cases/{held}", headers=bearer(key, sub="sup-matrix", role="supervisor"))
        ).json()
        desk = await clients["intake"].get(
            f"/api/desk/cases/{with_team}", headers=bearer(key, sub="pat-matrix", role="partner", team=TEAM)
        )
        shipments = await clients["carrier"].get(
            f"/api/complaints/{held}/shipments", headers=bearer(key, sub="sup-matrix", role="supervisor")
        )
        return (
            [c["callback_id"] for c in case["callbacks"]] == [callback_id]
            and desk.status_code == 200
            and shipments.status_code == 200
        )

    await wait_for(ready, timeout=60)
    return clients, key, {"held": held, "with_team": with_team, "callback_id": callback_id}


def tokens(key: str, held: str) -> dict[str, dict]:
    return {
        "anonymous": {},
        "customer link": bearer(key, complaint_id=held),
        "other customer": bearer(key, sub="cust-other", role="customer"),
        "agent holding": bearer(key, sub=HOLDER, role="agent"),
        "agent not holding": bearer(key, sub=OTHER_AGENT, role="agent"),
        "unknown agent": bearer(key, sub="agt-ghost", role="agent"),
        "supervisor": bearer(key, sub="sup-matrix", role="supervisor"),
        "admin": bearer(key, sub="adm-matrix", role="admin"),
        "partner of the team": bearer(key, sub="pat-matrix", role="partner", team=TEAM),
        "partner of another team": bearer(key, sub="pat-other", role="partner", team=OTHER_TEAM),
    }


def concrete(path: str, ids: dict) -> str:
    team_route = "/partner-teams/" in path or path.startswith("/api/desk/cases")  # a partner reads it too
    return path.format(
        agent_id=HOLDER,
        team_id=TEAM,
        callback_id=ids["callback_id"],
        complaint_id=ids["with_team"] if team_route else ids["held"],
        identifier=f"email:{ITS_CUSTOMER}@example.com",
    )


def test_every_route_of_the_three_apis_has_a_row_in_the_matrix():
    documented = {(service, method, path) for service, method, path in EXPECTED}
    routes = (
        {("routing", m, p) for m, p in api_routes(create_routing(), "/api")}
        | {("intake", m, p) for m, p in api_routes(create_intake(), "/api/desk", "/api/agents", "/api/metrics")}
        | {("carrier", m, p) for m, p in api_routes(create_carrier(), "/api")}
    )
    assert routes - documented == set(), "routes nobody decided about: add them to EXPECTED and the README"
    assert documented - routes == set(), "rows for routes that no longer exist"


async def test_each_role_gets_the_documented_answer_from_every_route(world):
    clients, key, ids = world
    callers = tokens(key, ids["held"])
    wrong = []
    for (service, method, path), answers in EXPECTED.items():
        for role, expected in zip(ROLES, answers, strict=True):
            body = {"json": {"not_a_field": True}} if method in ("POST", "PUT") else {}
            answer = await clients[service].request(method, concrete(path, ids), headers=callers[role], **body)
            passed = answer.status_code < 400 or answer.status_code in (409, 422)
            if (passed if expected == OK else answer.status_code == expected) is False:
                wrong.append(
                    f"{role:>24} {method} {path} ({service}): expected {expected}, "
                    f"got {answer.status_code} {answer.text[:160]}"
                )
            if answer.status_code in (401, 403, 404) and "message" not in answer.json():
                wrong.append(f"{role:>24} {method} {path} ({service}): a refusal without a message")
    assert not wrong, "\n".join(wrong)
