"""The desk's side of intake's API, refusals only (no broker or store is reached before them):
who may read a case's internals, and the development sign-in that exists only where it is enabled."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from services.kernel import auth
from services.kernel.sealed_codes import new_private_key, public_key_of

KEY = "a-signing-key-of-at-least-thirty-two-characters"


def client(environment: str = "local", **settings) -> TestClient:
    real = (
        {
            "order_system_url": "https://orders.internal.shop.co.uk",
            "routing_public_url": "https://routing.shop.co.uk",
            "carrier_public_url": "",
            "code_sealing_public_key": public_key_of(new_private_key()),
        }
        if environment == "production"
        else {}
    )
    settings = IntakeSettings(
        environment=environment,
        signing_key=KEY,
        inbound_webhook_secret="an-inbound-webhook-secret-0123456789",
        **{**real, **settings},
    )
    return TestClient(create_app(settings))  # no `with`: the app is not started, nothing connects


def token(role: str, ttl: timedelta = timedelta(minutes=5), **claims: str) -> dict:
    return {"Authorization": f"Bearer {auth.sign({'sub': 'someone', 'role': role, **claims}, KEY, ttl)}"}


@pytest.mark.parametrize("environment", ["local", "staging", "production"])
def test_the_development_sign_in_does_not_exist_unless_enabled_whatever_the_environment(environment):
    desk = client(environment)
    answer = desk.post("/api/desk/dev-sign-in", json={"role": "supervisor", "sub": "agt-ana"})
    assert answer.status_code == 404 and "DEV_SIGN_IN" in answer.json()["message"]
    assert 'id="dev-form"' not in desk.get("/desk/sign-in").text


def test_the_development_sign_in_mints_a_token_the_desk_accepts_where_it_is_enabled():
    desk = client(dev_sign_in=True)
    assert 'id="dev-form"' in desk.get("/desk/sign-in").text
    answer = desk.post("/api/desk/dev-sign-in", json={"role": "partner", "sub": "pat", "team": "team-x"})
    assert answer.status_code == 200
    me = desk.get("/api/desk/me", headers={"Authorization": f"Bearer {answer.json()['token']}"})
    assert me.json() | {"exp": None} == {"sub": "pat", "role": "partner", "team": "team-x", "exp": None}


def test_an_admin_signs_in_for_the_roster_where_the_development_sign_in_is_enabled():
    answer = client(dev_sign_in=True).post("/api/desk/dev-sign-in", json={"role": "admin", "sub": "adm-ola"})
    assert answer.status_code == 200
    assert auth.verify(answer.json()["token"], KEY)["role"] == "admin"


def test_a_partner_signs_in_for_a_team_or_is_told_the_field():
    answer = client(dev_sign_in=True).post("/api/desk/dev-sign-in", json={"role": "partner", "sub": "pat"})
    assert answer.status_code == 422 and answer.json()["field"] == "team"


# The tokens are signed in the test, not at collection: a suite slower than their lifetime would
# otherwise find them expired.
@pytest.mark.parametrize(
    "who, status",
    [
        (None, 401),
        (("agent", timedelta(seconds=-1), {}), 401),
        (("partner", timedelta(minutes=5), {}), 403),
        (("customer", timedelta(minutes=5), {}), 403),
    ],
)
def test_a_case_s_internals_are_for_staff_and_partner_teams_only(who, status):
    headers = {} if who is None else token(who[0], who[1], **who[2])
    answer = client().get("/api/desk/cases/c-1", headers=headers)
    assert answer.status_code == status and answer.json()["message"].startswith("Authorization")


def test_the_desk_pages_may_call_routing_and_carrier_and_nothing_else():
    page = client().get("/desk/cases/c-1")
    csp = page.headers["content-security-policy"]
    assert "connect-src 'self' http://127.0.0.1:8002 http://127.0.0.1:8003;" in csp and "script-src" not in csp
    assert 'data-routing-url="http://127.0.0.1:8002"' in page.text and "<script>" not in page.text
    assert 'id="carrier-panel" data-url="http://127.0.0.1:8003"' in page.text


def test_without_a_carrier_url_the_case_page_has_no_carrier_panel_and_may_not_call_one():
    page = client(carrier_public_url="").get("/desk/cases/c-1")
    assert "connect-src 'self' http://127.0.0.1:8002;" in page.headers["content-security-policy"]
    assert "carrier-panel" not in page.text


def _routing(origins: str):
    from services.routing.app import create_app
    from services.routing.settings import RoutingSettings

    return create_app(RoutingSettings(cors_origins=origins)), "/api/cases/c-1/transfer"


def _carrier(origins: str):
    from services.carrier.app import create_app
    from services.carrier.settings import CarrierSettings

    return create_app(CarrierSettings(cors_origins=origins)), "/api/complaints/c-1/recheck"


@pytest.mark.parametrize("service", [_routing, _carrier], ids=["routing", "carrier"])
@pytest.mark.parametrize("origin, allowed", [("http://127.0.0.1:8001", True), ("https://evil.example", False)])
def test_routing_and_carrier_let_only_the_desk_s_origin_call_them_from_a_browser(service, origin, allowed):
    app, path = service("http://127.0.0.1:8001")
    answer = TestClient(app).options(
        path,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
    )
    assert (answer.headers.get("access-control-allow-origin") == origin) is allowed


def stored(ce_type: str):
    import json
    from pathlib import Path

    import contracts
    from contracts.envelope import registry

    service = ce_type.split(".")[1]
    path = Path(contracts.__file__).parent / "samples" / service / f"{ce_type}.json"
    return registry.decode(ce_type, json.loads(path.read_text()))


@pytest.mark.parametrize(
    "ce_type, words",
    [
        (
            "complaints.carrier.ShipmentStatusReported.v1",
            "UPS 1Z999AA10123456795: delayed (weather); last scan LEEDS, GB at 14 Mar 2026 07:40 UTC; "
            "new estimate 15 Mar 2026 18:00 UTC; can still be intercepted",
        ),
        (
            "complaints.carrier.OrderShipmentSummarized.v1",
            "Carrier summary of order 114-5523190-0012345: 6 of 8 items delivered, 2 delayed: weather, "
            "new estimate tomorrow 18:00",
        ),
        ("complaints.carrier.CarrierQueryFailed.v1", "Could not ask UPS about 1Z999AA10123456795: "),
        ("complaints.routing.CallConnected.v1", "Call connected: agt-0042 is on the line with the customer"),
    ],
)
def test_the_staff_timeline_words_carrier_scans_failures_and_a_connected_call(ce_type, words):
    from services.intake.desk_views import STAFF_SUMMARIES

    event = stored(ce_type)
    internal, summary = STAFF_SUMMARIES[type(event)]
    assert summary(event).startswith(words)
    assert internal is ce_type.startswith("complaints.carrier")  # the customer hears of the call only


def test_every_public_event_about_a_case_has_words_on_the_staff_timeline():
    import contracts.carrier  # noqa: E401, F401  (register)
    from contracts.envelope import registry
    from services.intake.desk_views import STAFF_SUMMARIES

    # Keyed by something else than a complaint: they never reach a case's timeline.
    not_about_a_case = {
        "ShipmentExceptionDetected",
        "VerificationCodeRequested",
        "ContactVerified",
        "VerificationCodeSent",
        "AddressMarkedUndeliverable",
        "AgentRegistered",
        "AgentAvailabilityChanged",
        "PartnerTeamRegistered",
    }
    unworded = sorted(
        cls.__name__
        for cls in registry.types().values()
        if cls.public and cls not in STAFF_SUMMARIES and cls.__name__ not in not_about_a_case
    )
    assert unworded == []
