"""The intake service through its public HTTP API, on the real broker and store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from contracts import TOPICS
from contracts.envelope import to_kafka
from contracts.intake import ClosureAnswered
from contracts.notify import ClosureConfirmationRequested, CustomerConfirmedClosed
from contracts.routing import CallbackDispatched, CallbackQueued, ComplaintResolved, PartnerOutcomeRecorded
from services.kernel import auth
from services.kernel.eventstore import Cause
from services.kernel.projections import Projector
from tests.integration.support import on_the_roster, produce_raw, wait_for

SAMPLES = Path(__file__).resolve().parents[2] / "unit" / "samples" / "email"


def driver_complaint(**overrides) -> dict:
    return {
        "category": "delivery_driver_conduct",
        "channel": "web",
        "description": "The driver reversed onto the pavement and nearly hit me.",
        "complainant": {"email": "sam.okafor@example.com", "phone": "+447700900123"},
        **overrides,
    }


def webhook(intake) -> dict:
    return {"Authorization": f"Bearer {intake.config.inbound_webhook_secret}"}


def customer(intake, sub: str) -> dict:
    """The headers of a customer logged in as ``sub``."""
    token = auth.sign({"sub": sub, "role": "customer"}, intake.config.signing_key, timedelta(minutes=5))
    return {"Authorization": f"Bearer {token}"}


def bearer(filed: dict) -> dict:
    return {"Authorization": f"Bearer {filed['access_token']}"}


async def commits_of(intake, stream: str) -> int:
    return len(await intake.app.state.services.runtime.store.read_stream(stream))


async def test_the_same_idempotency_key_twice_files_one_complaint_with_identical_answers(intake):
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await intake.post("/api/complaints", json=driver_complaint(), headers=key)
    again = await intake.post("/api/complaints", json=driver_complaint(), headers=key)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json() and again.headers["Idempotent-Replayed"] == "true"
    assert await commits_of(intake, f"complaint-{first.json()['complaint_id']}") == 1
    reused = await intake.post("/api/complaints", json=driver_complaint(description="other"), headers=key)
    assert reused.status_code == 422 and "Idempotency-Key" in reused.text


async def test_a_customer_token_cannot_read_another_customers_case(intake):
    mine = (await intake.post("/api/complaints", json=driver_complaint())).json()
    theirs = (await intake.post("/api/complaints", json=driver_complaint(description="Another"))).json()
    await wait_for(lambda: _status(intake, mine, mine["complaint_id"], 200))
    assert (await intake.get(f"/api/complaints/{theirs['complaint_id']}", headers=bearer(mine))).status_code == 404
    assert (await intake.get(f"/api/complaints/{mine['complaint_id']}")).status_code == 404
    assert (await intake.get(f"/api/complaints/{mine['complaint_id']}?token={mine['access_token']}")).status_code == 200


async def _status(intake, filed: dict, complaint_id: str, expected: int) -> bool:
    return (await intake.get(f"/api/complaints/{complaint_id}", headers=bearer(filed))).status_code == expected


async def twice_about(intake, order: str) -> tuple[dict, dict]:
    """The same logged-in customer files about ``order``, then again."""
    filed = []
    for description in ("Only 6 of 8 items arrived", "Still 2 items missing"):
        filed.append(
            (
                await intake.post(
                    "/api/complaints",
                    headers=customer(intake, "cust-2002"),
                    json=driver_complaint(category="part_of_order_missing", description=description, order_id=order),
                )
            ).json()
        )
    return filed[0], filed[1]


async def test_the_logged_in_customer_filing_again_about_the_same_order_joins_their_open_case(intake):
    order = "114-5523190-0012345"
    first, again = await twice_about(intake, order)
    assert (again["status"], again["complaint_id"]) == ("linked", first["complaint_id"])
    events, _ = await intake.app.state.services.runtime.store.load(f"complaint-{first['complaint_id']}")
    assert [type(e).__name__ for e in events] == ["ComplaintFiled", "ComplaintLinked"]


async def test_an_email_and_a_social_post_naming_the_order_open_cases_of_their_own_never_join_the_customers(intake):
    order = "114-5523190-0012345"
    web = (
        await intake.post(
            "/api/complaints",
            headers=customer(intake, "cust-2002"),
            json=driver_complaint(
                category="part_of_order_missing", description="Only 6 of 8 items arrived", order_id=order
            ),
        )
    ).json()
    email = await intake.post(
        "/api/inbound/email",
        headers=webhook(intake),
        content=(
            b"From: Sam <sam.okafor@example.com>\nTo: help@shop.example\nSubject: Missing items\n"
            b"Message-ID: <m-" + uuid.uuid4().hex.encode() + b"@example.com>\n\n"
            b"My order " + order.encode() + b" is missing two items.\n"
        ),
    )
    social = await intake.post(
        "/api/inbound/social",
        headers=webhook(intake),
        json={
            "platform": "x",
            "kind": "direct_message",
            "handle": "sam_okafor",
            "post_id": f"p-{uuid.uuid4().hex}",
            "text": f"Still waiting for 2 items of {order}",
            "posted_at": "2026-11-29T10:00:00Z",
        },
    )
    assert email.status_code == social.status_code == 202
    # A From: header or a handle proves nothing: whoever wrote gets their own case, staff relate them.
    assert email.json()["status"] == social.json()["status"] == "open"
    assert len({web["complaint_id"], email.json()["complaint_id"], social.json()["complaint_id"]}) == 3
    events, _ = await intake.app.state.services.runtime.store.load(f"complaint-{web['complaint_id']}")
    assert [type(e).__name__ for e in events] == ["ComplaintFiled"]


async def test_an_auto_reply_and_a_bounce_open_no_case(intake):
    for sample in ("out_of_office.eml", "bounce_dsn.eml"):
        answer = await intake.post(
            "/api/inbound/email", headers=webhook(intake), content=(SAMPLES / sample).read_bytes()
        )
        assert answer.status_code == 202 and answer.json()["status"] == "ignored", sample
    assert await intake.app.state.services.runtime.store.commits.count_documents({}) == 0


async def test_a_second_click_on_call_me_returns_the_live_callback_and_it_can_be_cancelled(intake):
    filed = (await intake.post("/api/complaints", json=driver_complaint())).json()
    path = f"/api/complaints/{filed['complaint_id']}/callback"
    first = await intake.post(path, json={"phone": "+447700900123"}, headers=bearer(filed))
    second = await intake.post(path, json={"phone": "+447700900123"}, headers=bearer(filed))
    assert first.status_code == second.status_code == 202
    assert first.json()["callback_id"] == second.json()["callback_id"] and first.json()["state"] == "requested"
    cancelled = await intake.delete(f"{path}/{first.json()['callback_id']}", headers=bearer(filed))
    assert cancelled.json()["state"] == "cancelled"
    again = await intake.post(path, json={"phone": "+447700900123"}, headers=bearer(filed))
    assert again.status_code == 202 and again.json()["callback_id"] != first.json()["callback_id"]
    limited = await intake.post(path, json={"phone": "+447700900123"}, headers=bearer(filed))
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0  # 3 per phone per 10 minutes


@pytest.mark.parametrize(
    "change, named",
    [
        ({"category": "alien_abduction"}, "category"),
        ({"description": "x" * 5001}, "description"),
        ({"complainant": {"phone": "07700 900123"}}, "complainant.phone"),
        ({"complainant": {}}, "complainant"),
    ],
)
async def test_bad_input_is_refused_with_a_422_naming_the_field_and_the_rule(intake, change, named):
    answer = await intake.post("/api/complaints", json=driver_complaint(**change))
    assert answer.status_code == 422
    assert answer.json()["message"].startswith(named), answer.json()["message"]


async def test_an_oversized_body_is_refused_before_parsing(intake):
    answer = await intake.post(
        "/api/complaints",
        content=b"{" + b" " * (intake.config.max_body_bytes + 1) + b"}",
        headers={"content-type": "application/json"},
    )
    assert answer.status_code == 413


async def test_agents_see_every_case_of_a_verified_person_and_customers_do_not(intake):
    filed = (
        await intake.post("/api/complaints", json=driver_complaint(complainant={"email": "sam@example.com"}))
    ).json()
    agent = auth.sign({"sub": "agent-7", "role": "agent"}, intake.config.signing_key, timedelta(minutes=5))
    await wait_for(lambda: _status(intake, filed, filed["complaint_id"], 200))
    not_yet = await intake.get(
        "/api/agents/customers/email:sam@example.com", headers={"Authorization": f"Bearer {agent}"}
    )
    assert not_yet.status_code == 403 and "not on the roster" in not_yet.json()["message"]
    await on_the_roster(intake.app, "agent-7")
    view = await intake.get("/api/agents/customers/email:sam@example.com", headers={"Authorization": f"Bearer {agent}"})
    assert view.status_code == 200 and filed["complaint_id"] in view.json()["complaints"]
    # A case link names no one: not a person's token (401), let alone an agent's.
    assert (await intake.get("/api/agents/customers/email:sam@example.com", headers=bearer(filed))).status_code == 401


async def test_the_case_views_rebuilt_from_the_store_equal_the_live_ones(intake):
    for n in range(5):
        filed = (await intake.post("/api/complaints", json=driver_complaint(description=f"complaint {n}"))).json()
        called = await intake.post(
            f"/api/complaints/{filed['complaint_id']}/callback",
            json={"phone": f"+4477009001{n:02}"},
            headers=bearer(filed),
        )
        assert called.status_code == 202
    runtime = intake.app.state.services.runtime
    await wait_for(lambda: _nothing_pending(runtime))
    projector: Projector = runtime.projector
    for name in ("case_views", "customer_views"):
        live = await runtime.store.db[name].find({}).sort("_id").to_list()
        assert live
        assert await projector.rebuild(name) >= 10
        assert await runtime.store.db[name].find({}).sort("_id").to_list() == live


async def _nothing_pending(runtime) -> bool:
    return await runtime.store.pending.count_documents({}) == 0


async def test_a_reply_to_the_case_address_threads_onto_the_case_and_opens_nothing_new(intake):
    filed = (await intake.post("/api/complaints", json=driver_complaint())).json()
    token = auth.reply_token(filed["complaint_id"], intake.config.signing_key)
    reply = await intake.post(
        "/api/inbound/email",
        headers=webhook(intake),
        content=(
            f"From: Sam <sam.okafor@example.com>\nTo: case+{token}@reply.shop.example\nSubject: Re: your complaint\n"
            f"Message-ID: <r-{uuid.uuid4().hex}@example.com>\n\nYes, it was the van with the blue logo.\n"
        ).encode(),
    )
    assert reply.json() == {"status": "message", "complaint_id": filed["complaint_id"]}
    events, _ = await intake.app.state.services.runtime.store.load(f"complaint-{filed['complaint_id']}")
    assert [type(e).__name__ for e in events] == ["ComplaintFiled", "CustomerMessageReceived"]
    assert events[1].text.startswith("Yes, it was the van")
    forged = await intake.post(
        "/api/inbound/email",
        headers=webhook(intake),
        content=(
            f"From: x@example.com\nTo: case+{filed['complaint_id']}.0000000000000000@reply.shop.example\n"
            f"Subject: hi\nMessage-ID: <f-{uuid.uuid4().hex}@example.com>\n\nhello\n"
        ).encode(),
    )
    assert forged.json()["status"] == "open" and forged.json()["complaint_id"] != filed["complaint_id"]


async def test_callbacks_are_rate_limited_per_client_address_too(intake):
    filed = (await intake.post("/api/complaints", json=driver_complaint())).json()
    path = f"/api/complaints/{filed['complaint_id']}/callback"
    answers = [
        await intake.post(path, json={"phone": f"+4477009002{n:02}"}, headers=bearer(filed))
        for n in range(intake.config.callbacks_per_client + 1)
    ]
    assert [a.status_code for a in answers[:-1]] == [202] * intake.config.callbacks_per_client
    assert answers[-1].status_code == 429 and answers[-1].headers["Retry-After"]


async def test_a_logged_in_customer_reaches_their_own_cases_and_not_someone_elses(intake):
    me, someone_else = customer(intake, "cust-1001"), customer(intake, "cust-2002")
    mine = await intake.post("/api/complaints", json=driver_complaint(), headers=me)
    theirs = await intake.post("/api/complaints", json=driver_complaint(description="x"), headers=someone_else)
    mine, theirs = mine.json()["complaint_id"], theirs.json()["complaint_id"]
    call = {"phone": "+447700900123"}
    assert (await intake.post(f"/api/complaints/{mine}/callback", json=call, headers=me)).status_code == 202
    assert (await intake.post(f"/api/complaints/{theirs}/callback", json=call, headers=me)).status_code == 404
    cancel = await intake.delete(f"/api/complaints/{theirs}/callback/anything", headers=me)
    assert cancel.status_code == 404
    await wait_for(lambda: _status(intake, {"access_token": ""}, mine, 404))  # no token: not found
    seen = await intake.get(f"/api/complaints/{theirs}", headers=me)
    assert seen.status_code == 404


async def test_inbound_webhooks_without_the_shared_secret_are_refused(intake):
    for path in ("/api/inbound/email", "/api/inbound/social"):
        answer = await intake.post(
            path, content=b"From: a@example.com\n\nhi\n", headers={"Authorization": "Bearer wrong"}
        )
        assert answer.status_code == 401 and "webhook secret" in answer.json()["message"]


async def test_the_customer_sees_routings_progress_on_their_case_without_internal_notes(intake):
    filed = (await intake.post("/api/complaints", json=driver_complaint())).json()
    complaint_id = filed["complaint_id"]
    callback = (
        await intake.post(
            f"/api/complaints/{complaint_id}/callback", json={"phone": "+447700900123"}, headers=bearer(filed)
        )
    ).json()
    now = datetime.now(UTC)
    routing = [
        CallbackQueued(
            complaint_id=complaint_id,
            callback_id=callback["callback_id"],
            position=2,
            estimated_wait_s=120,
            queued_at=now,
        ),
        CallbackDispatched(
            complaint_id=complaint_id,
            callback_id=callback["callback_id"],
            agent_id="agent-7",
            phone="+447700900123",
            dispatched_at=now,
        ),
        PartnerOutcomeRecorded(
            complaint_id=complaint_id,
            team_id="team-logistics",
            recorded_at=now,
            outcome_for_customer="The driver was retrained and a route change made.",
            internal_note="Driver D-4471, second incident this month",
        ),
    ]
    store = intake.app.state.services.runtime.store
    produce_raw(
        intake.config.kafka_bootstrap_servers,
        TOPICS["routing"],
        [
            to_kafka(
                store.envelope(e, f"routing-{uuid.uuid4()}", Cause.of_request("r", "routing"), now).model_copy(
                    update={"source": "/services/routing"}
                )
            )
            for e in routing
        ],
    )

    async def dialling():
        view = (await intake.get(f"/api/complaints/{complaint_id}", headers=bearer(filed))).json()
        return view if (view.get("callback") or {}).get("state") == "dialling" and len(view["timeline"]) >= 5 else None

    view = await wait_for(dialling, timeout=60)
    summaries = [e["summary"] for e in view["timeline"]]
    assert "You are number 2 in the queue for a call" in summaries and "We are calling you now" in summaries
    assert "What was done: The driver was retrained and a route change made." in summaries
    assert "D-4471" not in str(view) and "agent-7" not in str(view)


async def test_the_complainant_answers_is_this_closed_on_their_case_page_once_the_question_is_asked(intake):
    filed = (await intake.post("/api/complaints", json=driver_complaint())).json()
    complaint_id = filed["complaint_id"]
    closure = f"/api/complaints/{complaint_id}/closure"

    early = await intake.post(closure, json={"answer": "yes"}, headers=bearer(filed))
    assert (
        early.status_code == 409
        and early.json()["message"] == "closure: there is no open question to answer (it is not_asked)"
    )

    now = datetime.now(UTC)
    store = intake.app.state.services.runtime.store
    told = [
        ComplaintResolved(
            complaint_id=complaint_id,
            agent_id="agent-7",
            resolved_at=now,
            recap="We reported the driver to the logistics partner.",
            next_steps=["They will tell you what they did within 5 working days."],
        ),
        ClosureConfirmationRequested(
            complaint_id=complaint_id,
            message_id="<q-1@notify>",
            to="sam.okafor@example.com",
            recap="We reported the driver.",
            yes_url_expires_at=now + timedelta(days=7),
            requested_at=now,
        ),
    ]
    for event, source in zip(told, ("routing", "notify"), strict=True):
        produce_raw(
            intake.config.kafka_bootstrap_servers,
            TOPICS[source],
            [
                to_kafka(
                    store.envelope(event, f"{source}-{uuid.uuid4()}", Cause.of_request("r", source), now).model_copy(
                        update={"source": f"/services/{source}"}
                    )
                )
            ],
        )

    async def asked():
        view = (await intake.get(f"/api/complaints/{complaint_id}", headers=bearer(filed))).json()
        # Two topics: routing's resolution and notify's question may arrive in either order.
        return view if (view.get("closure") or {}).get("state") == "asked" and view["outcomes"] else None

    view = await wait_for(asked, timeout=60)
    assert view["status"] == "resolved"
    assert view["outcomes"] == [
        {
            "time": view["outcomes"][0]["time"],
            "by": "agent",
            "text": "We reported the driver to the logistics partner.",
            "next_steps": ["They will tell you what they did within 5 working days."],
        }
    ]

    too_long = await intake.post(closure, json={"answer": "no", "reason": "x" * 2001}, headers=bearer(filed))
    assert too_long.status_code == 422 and "reason" in str(too_long.json())
    stranger = await intake.post(closure, json={"answer": "no"}, headers={"Authorization": "Bearer nonsense"})
    assert stranger.status_code == 404

    answered = await intake.post(
        closure, json={"answer": "no", "reason": " The refund has not come. "}, headers=bearer(filed)
    )
    assert answered.status_code == 202 and answered.json()["closure"]["state"] == "answered"
    events, _ = await store.load(f"complaint-{complaint_id}")
    assert events[-1] == ClosureAnswered(
        complaint_id=complaint_id, answer="no", reason="The refund has not come.", answered_at=events[-1].answered_at
    )


async def test_once_the_complainant_confirms_the_case_closed_the_next_complaint_about_its_order_opens_a_new_case(
    intake,
):
    order = "114-5523190-0012345"
    first, again = await twice_about(intake, order)
    assert (again["status"], again["complaint_id"]) == ("linked", first["complaint_id"])

    now = datetime.now(UTC)
    store = intake.app.state.services.runtime.store
    closed = CustomerConfirmedClosed(complaint_id=first["complaint_id"], via="link", confirmed_at=now)
    produce_raw(
        intake.config.kafka_bootstrap_servers,
        TOPICS["notify"],
        [
            to_kafka(
                store.envelope(closed, f"notify-{uuid.uuid4()}", Cause.of_request("n", "notify"), now).model_copy(
                    update={"source": "/services/notify"}
                )
            )
        ],
    )

    async def released():
        events, _ = await store.load(f"order-{order}")
        return any(type(e).__name__ == "CaseClosedForOrder" for e in events)

    await wait_for(released, timeout=60)
    later = (
        await intake.post(
            "/api/complaints",
            headers=customer(intake, "cust-2002"),
            json=driver_complaint(
                category="damaged_item", description="The replacement arrived broken", order_id=order
            ),
        )
    ).json()
    assert later["status"] == "open" and later["complaint_id"] != first["complaint_id"]


async def test_an_account_id_typed_by_someone_not_logged_in_is_not_recorded_and_opens_nothing(intake):
    filed = await intake.post(
        "/api/complaints",
        json=driver_complaint(
            complainant={"customer_id": "cust-victim", "seller_id": "sel-victim", "email": "mallory@example.com"}
        ),
    )
    only_an_id = await intake.post("/api/complaints", json=driver_complaint(complainant={"customer_id": "cust-victim"}))

    assert filed.status_code == 201, filed.text
    complaint_id = filed.json()["complaint_id"]
    events, _ = await intake.app.state.services.runtime.store.load(f"complaint-{complaint_id}")
    assert (events[0].complainant.customer_id, events[0].complainant.seller_id) == (None, None)
    as_the_victim = await intake.get(f"/api/complaints/{complaint_id}", headers=customer(intake, "cust-victim"))
    assert as_the_victim.status_code == 404
    assert only_an_id.status_code == 422 and only_an_id.json()["field"] == "complainant"


async def test_replaying_a_logged_in_customer_s_idempotency_key_gives_a_stranger_nothing_of_theirs(intake):
    key = {"Idempotency-Key": "order-114-5523190-0012345"}  # a guessable key
    body = driver_complaint(order_id="114-5523190-0012345")
    hers = await intake.post("/api/complaints", json=body, headers={**customer(intake, "cust-2002"), **key})
    stranger = await intake.post("/api/complaints", json=body, headers=key)

    assert hers.status_code == stranger.status_code == 201, (hers.text, stranger.text)
    assert stranger.json()["complaint_id"] != hers.json()["complaint_id"]
    assert "Idempotent-Replayed" not in stranger.headers
