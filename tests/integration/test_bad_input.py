"""What a fuzzer and a person trying odd inputs found (issue 17), each answered now with a 4xx that
names the field and the rule, as RFC 9457 problem details, on the real broker and store."""

from __future__ import annotations

import uuid

import pytest

from tests.integration.simulators import carrier_simulator_url  # noqa: F401  (a session fixture)
from tests.integration.test_access_matrix import EXPECTED, bearer, platform  # noqa: F401  (a fixture)

pytestmark = pytest.mark.integration

ORDER = "114-2087456-3319876"  # in orders.json
PROBLEM = "application/problem+json"


def refused(answer, status: int, field: str) -> dict:
    """The answer is problem details of ``status`` naming ``field``."""
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == PROBLEM, answer.headers
    body = answer.json()
    assert body["status"] == status and body["title"] and field in body["detail"], body
    assert body.get("field") == field or field in {e["field"] for e in body.get("errors", [])}, body
    return body


async def test_a_code_request_repeating_an_idempotency_key_with_another_body_is_a_422_like_a_complaint(platform):  # noqa: F811
    clients, key = platform
    intake, idempotency_key = clients["intake"], {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}
    first = await intake.post("/api/verification/codes", json={"order_id": ORDER}, headers=idempotency_key)
    assert first.status_code == 202, first.text

    again = await intake.post("/api/verification/codes", json={"seller_id": "sell-00311"}, headers=idempotency_key)

    refused(again, 422, "Idempotency-Key")
    customer = {**bearer(key, sub=f"cust-{uuid.uuid4().hex[:6]}", role="customer"), **idempotency_key}
    complaint = {"category": "late_delivery", "description": "Late.", "complainant": {"email": "a@example.com"}}
    assert (await intake.post("/api/complaints", json=complaint, headers=customer)).status_code == 201
    refused(
        await intake.post("/api/complaints", json={**complaint, "description": "Later."}, headers=customer),
        422,
        "Idempotency-Key",
    )


async def test_an_agent_with_an_empty_language_is_refused_naming_it(platform):  # noqa: F811
    clients, key = platform
    answer = await clients["routing"].post(
        "/api/agents",
        headers=bearer(key, sub="adm-bad", role="admin"),
        json={"agent_id": "agt-bad-input", "name": "Ana", "skills": ["other"], "languages": [""], "capacity": 1},
    )

    body = refused(answer, 422, "languages.0")
    assert "pattern" in body["detail"]


@pytest.mark.parametrize(
    "path, body, field",
    [
        (
            "/api/partner-teams",
            {"team_id": "team-huge", "name": "Huge", "categories": ["other"], "response_sla_minutes": 2**70},
            "response_sla_minutes",
        ),
        (
            "/api/agents",
            {"agent_id": "agt-huge", "name": "Huge", "skills": ["other"], "languages": ["en"], "capacity": 2**70},
            "capacity",
        ),
        (
            "/api/cases/c-any/actions",
            {"action": "cancel_items", "order_id": ORDER, "items": [{"sku": "SKU-1", "quantity": 2**70}]},
            "items.0.quantity",
        ),
    ],
    ids=["sla", "capacity", "quantity"],
)
async def test_an_integer_beyond_what_the_store_holds_is_refused_naming_the_field(platform, path, body, field):  # noqa: F811
    clients, key = platform

    answer = await clients["routing"].post(path, json=body, headers=bearer(key, sub="sup-bad", role="supervisor"))

    refused(answer, 422, field)


@pytest.mark.parametrize("action", ["notes", "resolve", "release", "transfer"])
async def test_a_signed_token_that_names_no_one_is_a_401_on_every_case_action(platform, action):  # noqa: F811
    clients, key = platform

    answer = await clients["routing"].post(
        f"/api/cases/c-any/{action}", json={}, headers=bearer(key, role="supervisor")
    )

    body = refused(answer, 401, "Authorization")
    assert "'sub'" in body["detail"] and answer.headers["www-authenticate"] == "Bearer"


async def test_a_role_that_is_not_a_word_is_a_401_on_every_staff_route(platform):  # noqa: F811
    clients, key = platform
    token = bearer(key, sub="agt-list", role=["agent"])
    answers = {}
    for service, method, path in EXPECTED:
        if path in ("/api/desk/dev-sign-in", "/api/webhooks/tracking"):
            continue  # not for staff tokens
        url = path.format(
            complaint_id="c-any", callback_id="cb-any", agent_id="agt-list", team_id="team-any", identifier="someone"
        )
        answer = await clients[service].request(method, url, headers=token, json={} if method != "GET" else None)
        answers[(service, method, path)] = answer.status_code
        assert answer.headers["content-type"] == PROBLEM and "'role'" in answer.json()["detail"], answer.text

    assert set(answers.values()) == {401}, answers


async def test_a_description_of_only_blanks_is_refused(platform):  # noqa: F811
    clients, key = platform

    answer = await clients["intake"].post(
        "/api/complaints",
        headers=bearer(key, sub="cust-blank", role="customer"),
        json={"category": "other", "description": " \n\t ", "complainant": {"email": "blank@example.com"}},
    )

    refused(answer, 422, "description")


async def test_every_answer_of_the_role_matrix_is_in_the_openapi_document(platform):  # noqa: F811
    clients, _ = platform
    documents = {service: client.app.openapi() for service, client in clients.items()}
    missing = [
        (service, method, path, status)
        for (service, method, path), row in EXPECTED.items()
        for status in set(row) - {"ok"}
        if str(status) not in documents[service]["paths"][path][method.lower()]["responses"]
    ]

    assert missing == []
    social = documents["intake"]["paths"]["/api/inbound/social"]["post"]["responses"]
    assert "202" in social and "200" not in social
