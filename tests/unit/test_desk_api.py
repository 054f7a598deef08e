"""The desk's side of intake's API, refusals only (no broker or store is reached before them):
who may read a case's internals, and the development sign-in that production never offers."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from services.kernel import auth

KEY = "a-signing-key-of-at-least-thirty-two-characters"


def client(environment: str = "local") -> TestClient:
    settings = IntakeSettings(environment=environment, signing_key=KEY,
                              inbound_webhook_secret="an-inbound-webhook-secret-0123456789")
    return TestClient(create_app(settings))  # no `with`: the app is not started, nothing connects


def token(role: str, ttl: timedelta = timedelta(minutes=5), **claims: str) -> dict:
    return {"Authorization": f"Bearer {auth.sign({'sub': 'someone', 'role': role, **claims}, KEY, ttl)}"}


def test_the_development_sign_in_is_not_offered_in_production():
    answer = client("production").post("/api/desk/dev-sign-in", json={"role": "agent", "sub": "agt-ana"})
    assert answer.status_code == 404 and "production" in answer.json()["message"]


def test_the_development_sign_in_mints_a_token_the_desk_accepts_locally():
    desk = client()
    answer = desk.post("/api/desk/dev-sign-in", json={"role": "partner", "sub": "pat", "team": "team-x"})
    assert answer.status_code == 200
    me = desk.get("/api/desk/me", headers={"Authorization": f"Bearer {answer.json()['token']}"})
    assert me.json() | {"exp": None} == {"sub": "pat", "role": "partner", "team": "team-x", "exp": None}


def test_a_partner_signs_in_for_a_team_or_is_told_the_field():
    answer = client().post("/api/desk/dev-sign-in", json={"role": "partner", "sub": "pat"})
    assert answer.status_code == 422 and answer.json()["field"] == "team"


# The tokens are signed in the test, not at collection: a suite slower than their lifetime would
# otherwise find them expired.
@pytest.mark.parametrize("who, status", [(None, 401), (("agent", timedelta(seconds=-1), {}), 401),
                                         (("partner", timedelta(minutes=5), {"team": "team-x"}), 403),
                                         (("customer", timedelta(minutes=5), {}), 403)])
def test_a_case_s_internals_are_for_agents_and_supervisors_only(who, status):
    headers = {} if who is None else token(who[0], who[1], **who[2])
    answer = client().get("/api/desk/cases/c-1", headers=headers)
    assert answer.status_code == status and answer.json()["message"].startswith("Authorization")


def test_the_desk_pages_may_call_routing_and_nothing_else():
    page = client().get("/desk/cases/c-1")
    csp = page.headers["content-security-policy"]
    assert "connect-src 'self' http://127.0.0.1:8002;" in csp and "script-src" not in csp
    assert 'data-routing-url="http://127.0.0.1:8002"' in page.text and "<script>" not in page.text


@pytest.mark.parametrize("origin, allowed", [("http://127.0.0.1:8001", True), ("https://evil.example", False)])
def test_routing_lets_only_the_desk_s_origin_call_it_from_a_browser(origin, allowed):
    from services.routing.app import create_app as routing_app
    from services.routing.settings import RoutingSettings
    routing = TestClient(routing_app(RoutingSettings(cors_origins="http://127.0.0.1:8001")))
    answer = routing.options("/api/cases/c-1/transfer", headers={
        "Origin": origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type,idempotency-key"})
    assert (answer.headers.get("access-control-allow-origin") == origin) is allowed
