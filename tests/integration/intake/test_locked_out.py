"""Story 3: a seller locked out of her account files by proving control of the contact on file."""

from __future__ import annotations

import asyncio
import json

from contracts import TOPICS
from contracts.intake import VerificationCodeRequested
from services.intake.domain import verification_stream
from tests.integration.support import code_as_notify_reads_it, documents_holding, events_on

LOCKED_SELLER = {"seller_id": "sel-48213", "email": "maria.chen@willowandclay.example"}
SENT = "If these details match our records, we have sent a code to the contact on file."


async def code_sent_for(intake, verification_id: str) -> str:
    events, _ = await intake.app.state.services.runtime.store.load(verification_stream(verification_id))
    return code_as_notify_reads_it(verification_id, events[-1].code_sealed)  # what notify delivers


async def test_a_locked_out_seller_verifies_by_code_and_files_a_complaint_with_verified_assurance(intake):
    asked = await intake.post("/api/verification/codes", json={"seller_id": LOCKED_SELLER["seller_id"]})
    assert asked.status_code == 202 and asked.json()["message"] == SENT
    vid = asked.json()["verification_id"]
    verified = await intake.post(
        "/api/verification/verify",
        json={
            "seller_id": LOCKED_SELLER["seller_id"],
            "verification_id": vid,
            "code": await code_sent_for(intake, vid),
        },
    )
    assert verified.status_code == 200, verified.text
    filed = await intake.post(
        "/api/complaints",
        headers={"Authorization": f"Bearer {verified.json()['filing_token']}"},
        json={
            "category": "account_locked",
            "description": "Locked out for 12 days; a buyer's parcel is lost and I cannot see their details.",
            "complainant": {"display_name": "Maria Chen", "email": "typed@example.com"},
        },
    )
    assert filed.status_code == 201, filed.text
    events, _ = await intake.app.state.services.runtime.store.load(f"complaint-{filed.json()['complaint_id']}")
    assert events[0].assurance == "verified_contact"
    assert events[0].complainant.seller_id == LOCKED_SELLER["seller_id"]
    assert events[0].complainant.email == LOCKED_SELLER["email"], "the proven contact, not the typed one"


async def test_an_unknown_account_gets_the_same_answers_as_a_known_one_with_a_wrong_code(intake):
    known = await intake.post(
        "/api/verification/codes", json={"seller_id": LOCKED_SELLER["seller_id"], "channel": "sms"}
    )
    unknown = await intake.post("/api/verification/codes", json={"seller_id": "sel-nobody", "channel": "sms"})
    assert known.status_code == unknown.status_code == 202 and known.json()["message"] == unknown.json()["message"]
    answers = []
    for asked, seller in ((known, LOCKED_SELLER["seller_id"]), (unknown, "sel-nobody")):
        wrong = await intake.post(
            "/api/verification/verify",
            json={
                "seller_id": seller,
                "channel": "sms",
                "verification_id": asked.json()["verification_id"],
                "code": "000000",
            },
        )
        answers.append((wrong.status_code, wrong.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 422 and answers[0][1]["detail"] == "code: wrong or expired"


async def test_the_fifth_wrong_code_locks_the_verification_for_a_while(intake):
    asked = await intake.post("/api/verification/codes", json={"order_id": "114-7710042-5501234"})
    vid, right = asked.json()["verification_id"], await code_sent_for(intake, asked.json()["verification_id"])
    wrong = str((int(right) + 1) % 10**6).zfill(6)
    check = {"order_id": "114-7710042-5501234", "verification_id": vid}
    statuses = [
        (await intake.post("/api/verification/verify", json={**check, "code": wrong})).status_code for _ in range(5)
    ]
    assert statuses == [422, 422, 422, 422, 422]
    locked = await intake.post("/api/verification/verify", json={**check, "code": right})
    assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0


async def test_an_unverified_filer_cannot_name_an_order_that_does_not_exist(intake):
    answer = await intake.post(
        "/api/complaints",
        json={
            "category": "package_not_received",
            "description": "Never came",
            "order_id": "999-0000000-0000000",
            "complainant": {"email": "someone@example.com"},
        },
    )
    assert answer.status_code == 422 and answer.json()["message"].startswith("order_id: unknown order")


async def test_a_fourth_code_request_within_the_hour_is_refused_whether_or_not_the_account_exists(intake):
    for seller in ("sel-00001", "sel-ghost"):
        statuses = [
            (await intake.post("/api/verification/codes", json={"seller_id": seller})).status_code for _ in range(4)
        ]
        assert statuses == [202, 202, 202, 429], seller


async def test_the_code_is_on_no_topic_and_in_no_stored_document_only_in_what_notify_delivers(intake):
    asked = await intake.post("/api/verification/codes", json={"seller_id": LOCKED_SELLER["seller_id"]})
    vid = asked.json()["verification_id"]
    code = await code_sent_for(intake, vid)
    verified = await intake.post(
        "/api/verification/verify", json={"seller_id": LOCKED_SELLER["seller_id"], "verification_id": vid, "code": code}
    )
    assert verified.status_code == 200

    [published] = await asyncio.to_thread(
        events_on,
        intake.config.kafka_bootstrap_servers,
        TOPICS["intake"],
        vid,
        1,
        ce_type=VerificationCodeRequested.ce_type(),
    )
    assert code not in json.dumps(published.data) and code not in published.model_dump_json()
    assert await documents_holding(intake.app.state.services.runtime.store.db, code) == []
