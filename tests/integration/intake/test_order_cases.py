"""Issue 13: an order number is no proof of who someone is. Only the person who proved to be a case's
complainant joins it; anyone else naming the order gets a case of their own, related for staff only."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

from confluent_kafka import Consumer, TopicPartition

from contracts import TOPICS
from contracts.carrier import ShipmentExceptionDetected
from contracts.envelope import Event, from_kafka, to_kafka
from contracts.routing import RoutedToTeam
from services.kernel import auth
from services.kernel.eventstore import Cause
from tests.integration.intake.test_locked_out import code_sent_for
from tests.integration.support import kafka_config, on_the_roster, produce_raw, wait_for

ORDER = "114-5523190-0012345"  # placed by cust-2002, sam.okafor@example.com, +447700900123 (orders.json)
SAM = {"display_name": "Sam Okafor", "phone": "+447700900123"}
MISSING = {"category": "part_of_order_missing", "description": "Only 6 of 8 items arrived", "order_id": ORDER}


def signed_in(intake, **claims: str) -> dict:
    token = auth.sign(claims, intake.config.signing_key, timedelta(minutes=5))
    return {"Authorization": f"Bearer {token}"}


def the_victim(intake) -> dict:
    return signed_in(intake, sub="cust-2002", role="customer")


async def file(intake, headers: dict | None = None, **complainant: str) -> dict:
    answer = await intake.post(
        "/api/complaints", headers=headers or {}, json={**MISSING, "complainant": complainant or SAM}
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


async def verified_contact(intake, channel: str) -> dict:
    """The locked-out path: a one-time code to the order's contact on file, entered right."""
    asked = await intake.post("/api/verification/codes", json={"order_id": ORDER, "channel": channel})
    vid = asked.json()["verification_id"]
    verified = await intake.post(
        "/api/verification/verify",
        json={"order_id": ORDER, "channel": channel, "verification_id": vid, "code": await code_sent_for(intake, vid)},
    )
    assert verified.status_code == 200, verified.text
    return {"Authorization": f"Bearer {verified.json()['filing_token']}"}


def another_service_says(intake, event: Event, service: str) -> None:
    """``event`` on ``service``'s topic, as that service would publish it."""
    now = datetime.now(UTC)
    envelope = intake.app.state.services.runtime.store.envelope(
        event, f"{service}-{uuid.uuid4()}", Cause.of_request("r", service), now
    )
    produce_raw(
        intake.config.kafka_bootstrap_servers,
        TOPICS[service],
        [to_kafka(envelope.model_copy(update={"source": f"/services/{service}"}))],
    )


async def quiet(intake) -> bool:
    """Nothing left to publish or project: what the log holds is on the topic and in the views."""
    return await intake.app.state.services.runtime.store.pending.count_documents({}) == 0


def published_about(bootstrap: str, complaint_id: str) -> list[str]:
    """The types of every event on intake's topic keyed ``complaint_id``, read up to its end as it is now."""
    consumer = Consumer(kafka_config(bootstrap, **{"group.id": f"reader-{uuid.uuid4()}", "enable.auto.commit": False}))
    try:
        topic = TOPICS["intake"]
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10) for p in partitions}
        left = {p: high for p, (low, high) in ends.items() if high > low}
        consumer.assign([TopicPartition(topic, p, ends[p][0]) for p in left])
        found = []
        while left:
            msg = consumer.poll(5)
            assert msg is not None, f"{topic} stopped before its end {left}"
            if msg.error():
                continue
            if msg.key() == complaint_id.encode():
                found.append(from_kafka(msg.value(), msg.headers()).type)
            if msg.offset() + 1 >= left.get(msg.partition(), 0):
                left.pop(msg.partition(), None)
        return found
    finally:
        consumer.close()


async def test_a_stranger_naming_the_victims_order_gets_a_case_of_their_own_and_no_way_into_the_victims(intake):
    store = intake.app.state.services.runtime.store
    victim = await file(intake, the_victim(intake))
    case = victim["complaint_id"]
    call = await intake.post(
        f"/api/complaints/{case}/callback", json={"phone": "+447700900123"}, headers=the_victim(intake)
    )
    assert call.status_code == 202
    await wait_for(lambda: quiet(intake))
    before = len(await store.read_stream(f"complaint-{case}"))

    stranger = await file(intake, email="someone.else@example.com")

    assert stranger["status"] == "open" and stranger["complaint_id"] != case
    theirs = {"Authorization": f"Bearer {stranger['access_token']}"}
    assert (await intake.get(f"/api/complaints/{case}", headers=theirs)).status_code == 404
    assert (await intake.get(f"/api/complaints/{case}?token={stranger['access_token']}")).status_code == 404
    cancel = await intake.delete(f"/api/complaints/{case}/callback/{call.json()['callback_id']}", headers=theirs)
    assert cancel.status_code == 404
    closure = await intake.post(f"/api/complaints/{case}/closure", json={"answer": "yes"}, headers=theirs)
    assert closure.status_code == 404
    await wait_for(lambda: quiet(intake))
    assert len(await store.read_stream(f"complaint-{case}")) == before
    on_topic = await asyncio.to_thread(published_about, intake.config.kafka_bootstrap_servers, case)
    assert on_topic == ["complaints.intake.ComplaintFiled.v1", "complaints.intake.CallbackRequested.v1"]

    # The victim's own "call me" still finds their callback, waiting.
    again = await intake.post(
        f"/api/complaints/{case}/callback", json={"phone": "+447700900123"}, headers=the_victim(intake)
    )
    assert again.status_code == 202 and again.json()["callback_id"] == call.json()["callback_id"]
    assert again.json()["state"] == "requested"


async def test_neither_complainant_sees_anything_of_the_other_case_of_the_order(intake):
    victim = await file(intake, the_victim(intake))
    stranger = await file(intake, email="someone.else@example.com", display_name="Someone Else")
    await wait_for(lambda: quiet(intake))

    mine = await intake.get(f"/api/complaints/{victim['complaint_id']}", headers=the_victim(intake))
    theirs = await intake.get(f"/api/complaints/{stranger['complaint_id']}?token={stranger['access_token']}")

    assert mine.status_code == theirs.status_code == 200
    assert not any(word in mine.text for word in (stranger["complaint_id"], "Someone Else", "someone.else@"))
    assert not any(word in theirs.text for word in (victim["complaint_id"], "Sam Okafor", "cust-2002", "+4477009001"))


async def test_the_same_customer_and_the_same_verified_contact_join_only_their_own_case_of_the_order(intake):
    victim = await file(intake, the_victim(intake))
    by_email, by_sms = await verified_contact(intake, "email"), await verified_contact(intake, "sms")

    again = await file(intake, the_victim(intake))
    assert again | {"access_token": None, "status_url": None} == {
        "complaint_id": victim["complaint_id"],
        "status": "linked",
        "access_token": None,
        "status_url": None,
        "reference": victim["reference"],
    }
    email_case = await file(intake, by_email)
    sms_case = await file(intake, by_sms)
    email_again = await file(intake, by_email)

    # A login and a code are different proofs; each proven person has one case of the order.
    assert email_case["status"] == sms_case["status"] == "open"
    assert len({victim["complaint_id"], email_case["complaint_id"], sms_case["complaint_id"]}) == 3
    assert (email_again["status"], email_again["complaint_id"]) == ("linked", email_case["complaint_id"])


async def test_staff_see_the_cases_of_one_order_related_and_a_partner_team_does_not(intake):
    victim = await file(intake, the_victim(intake))
    stranger = await file(intake, email="someone.else@example.com", display_name="Someone Else")
    agent = signed_in(intake, sub="agt-ana", role="agent")
    await on_the_roster(intake.app, "agt-ana")

    async def related(complaint_id: str) -> list[dict]:
        answer = await intake.get(f"/api/desk/cases/{complaint_id}", headers=agent)
        return answer.status_code == 200 and answer.json()["related"]

    [other] = await wait_for(lambda: related(victim["complaint_id"]))
    assert other | {"filed_at": None} == {
        "complaint_id": stranger["complaint_id"],
        "filed_at": None,
        "channel": "web",
        "assurance": "unverified",
        "who": {"display_name": "Someone Else", "email": "someone.else@example.com"},
    }
    [mine] = await related(stranger["complaint_id"])
    assert (mine["complaint_id"], mine["assurance"], mine["who"]) == (
        victim["complaint_id"],
        "authenticated",
        {"customer_id": "cust-2002", **SAM},
    )

    # Built from the log like every read model: a rebuild relates the same cases.
    await wait_for(lambda: quiet(intake))
    assert await intake.app.state.services.runtime.projector.rebuild("desk_cases") >= 2
    assert await related(victim["complaint_id"]) == [other]

    # A partner team reads the case routed to it, and nothing of the order's other complaints.
    another_service_says(
        intake,
        RoutedToTeam(
            complaint_id=victim["complaint_id"], team_id="team-logistics", only=False, routed_at=datetime.now(UTC)
        ),
        "routing",
    )
    partner = signed_in(intake, sub="pat-depot", role="partner", team="team-logistics")

    async def partners_view():
        answer = await intake.get(f"/api/desk/cases/{victim['complaint_id']}", headers=partner)
        return answer.status_code == 200 and answer.json()

    seen = await wait_for(partners_view, timeout=60)
    assert "related" not in seen and stranger["complaint_id"] not in str(seen)


async def test_a_proactive_case_is_the_orders_customers_own_joined_by_the_next_alert_and_their_login_only(intake):
    def weather_delay() -> ShipmentExceptionDetected:
        return ShipmentExceptionDetected(
            order_id=ORDER,
            customer_id="cust-2002",
            carrier="ups",
            tracking_number="1Z999AA10123456795",
            status="delayed",
            reason="weather",
            carrier_status="A severe weather condition has delayed delivery.",
            can_intercept=True,
            detected_at=datetime.now(UTC),
        )

    store = intake.app.state.services.runtime.store

    async def proactive_case() -> str | None:
        opened, _ = await store.load(f"order-{ORDER}")
        return opened and opened[0].complaint_id

    another_service_says(intake, weather_delay(), "carrier")
    case = await wait_for(proactive_case, timeout=60)
    another_service_says(intake, weather_delay(), "carrier")  # the carrier's next push about the order

    async def contacts() -> list[str]:
        events, _ = await store.load(f"complaint-{case}")
        return len(events) == 2 and [type(e).__name__ for e in events]

    assert await wait_for(contacts, timeout=60) == ["ComplaintFiled", "ComplaintLinked"]
    assert (await file(intake, the_victim(intake)))["complaint_id"] == case
    stranger = await file(intake, email="someone.else@example.com")
    assert stranger["status"] == "open" and stranger["complaint_id"] != case
