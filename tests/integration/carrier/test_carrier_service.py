"""The carrier service on the real broker and store, asking the carrier simulator over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from contracts import TOPICS
from contracts.intake import Category, Channel, Complainant, ComplaintFiled
from services.carrier.domain import alerts_stream, watch_stream
from services.intake.domain import complaint_stream, order_stream
from tests.integration.carrier.conftest import agent, on_intake_topic, signed
from tests.integration.support import events_on as published
from tests.integration.support import wait_for

STORY_2_ORDER = "114-5523190-0012345"
DELIVERED_PACKAGE, DELAYED_PACKAGE = "1Z999AA10123456784", "1Z999AA10123456795"


def a_complaint(order_id: str | None = None, tracking_numbers: list[str] | None = None) -> ComplaintFiled:
    return ComplaintFiled(
        complaint_id=f"c-{uuid.uuid4().hex[:12]}",
        category=Category.PART_OF_ORDER_MISSING,
        description="Only 6 of my 8 items arrived.",
        channel=Channel.WEB,
        complainant=Complainant(customer_id="cust-2002"),
        order_id=order_id,
        tracking_numbers=tracking_numbers or [],
        filed_at=datetime.now(UTC),
    )


async def carrier_events(carrier, key: str, count: int, settle: float = 0.0):
    return await asyncio.to_thread(
        published, carrier.config.kafka_bootstrap_servers, TOPICS["carrier"], key, count, 60, settle
    )


def by_type(events, name: str):
    return [e for e in events if e.type == f"complaints.carrier.{name}.v1"]


async def test_story_2_six_items_delivered_two_delayed_by_weather_and_the_late_ones_can_still_be_cancelled(carrier):
    complaint = a_complaint(order_id=STORY_2_ORDER)
    on_intake_topic(carrier.config, complaint)

    events = await carrier_events(carrier, complaint.complaint_id, 3)

    reports = {e.data["tracking_number"]: e.data for e in by_type(events, "ShipmentStatusReported")}
    delivered, delayed = reports[DELIVERED_PACKAGE], reports[DELAYED_PACKAGE]
    assert (delivered["status"], delivered["item_count"], delivered["can_intercept"]) == ("delivered", 6, False)
    assert delivered["delivery"]["handover"] == "recipient" and delivered["delivery"]["signed"] is True
    assert (delayed["status"], delayed["reason"], delayed["item_count"], delayed["can_intercept"]) == (
        "delayed",
        "weather",
        2,
        True,
    )
    checked = datetime.fromisoformat(delayed["checked_at"])
    estimate = datetime.fromisoformat(delayed["estimated_delivery_by"])
    assert (estimate.date() - checked.date(), estimate.hour) == (timedelta(days=1), 18)
    [summary] = by_type(events, "OrderShipmentSummarized")
    assert summary.data["summary"] == "6 of 8 items delivered, 2 delayed: weather, new estimate tomorrow 18:00"
    assert (summary.data["items_total"], summary.data["items_delivered"]) == (8, 6)
    assert {p["tracking_number"]: p["can_intercept"] for p in summary.data["packages"]} == {
        DELIVERED_PACKAGE: False,
        DELAYED_PACKAGE: True,
    }

    view = await carrier.get(f"/api/complaints/{complaint.complaint_id}/shipments", headers=agent(carrier.config))
    assert view.status_code == 200, view.text
    assert view.json()["summary"] == summary.data["summary"]
    assert [p["can_intercept"] for p in view.json()["packages"] if p["status"] == "delayed"] == [True]


async def test_a_carrier_that_is_down_is_retried_its_circuit_opens_then_half_opens_and_recovers(carrier):
    first, second = "1Z999AA1D000000001", "1Z999AA1D000000002"
    for number in (first, second):
        await carrier.simulator.put(f"/scenarios/{number}", json={"scenario": "in_transit", "carrier": "ups"})
    await carrier.simulator.put("/faults", json={"scenario": "carrier_down", "carrier": "ups", "times": 3})
    asked_before = (await carrier.simulator.get("/requests")).json()["ups"]

    down = a_complaint(tracking_numbers=[first])
    on_intake_topic(carrier.config, down)
    [failed] = await carrier_events(carrier, down.complaint_id, 1)
    assert failed.type == "complaints.carrier.CarrierQueryFailed.v1"
    assert (failed.data["code"], failed.data["attempts"], failed.data["carrier"]) == ("carrier_unavailable", 3, "ups")
    assert "HTTP 503" in failed.data["reason"]
    assert (await carrier.simulator.get("/requests")).json()["ups"] == asked_before + 3

    refused = a_complaint(tracking_numbers=[second])  # the breaker is open: UPS is not even asked
    on_intake_topic(carrier.config, refused)
    [open_circuit] = await carrier_events(carrier, refused.complaint_id, 1)
    assert (open_circuit.data["code"], open_circuit.data["attempts"]) == ("circuit_open", 0)
    assert (await carrier.simulator.get("/requests")).json()["ups"] == asked_before + 3

    carrier.services.gateway.clock.advance(carrier.config.breaker_reset_s)  # half-open: one trial call
    again = await carrier.post(f"/api/complaints/{refused.complaint_id}/recheck", headers=agent(carrier.config))

    assert again.status_code == 200, again.text
    assert [p["status"] for p in again.json()["packages"]] == ["in_transit"]
    assert carrier.services.gateway.breakers["ups"].state == "closed"
    recovered = await carrier_events(carrier, refused.complaint_id, 3)
    assert [e.data["trigger"] for e in by_type(recovered, "ShipmentStatusReported")] == ["agent"]


async def test_the_same_complaint_event_twice_reports_each_package_once(carrier):
    complaint = a_complaint(order_id=STORY_2_ORDER)
    [envelope] = on_intake_topic(carrier.config, complaint)
    on_intake_topic(carrier.config, complaint, ids=[envelope.id])  # redelivered as is
    [copy] = on_intake_topic(carrier.config, complaint)  # the same complaint in a new envelope
    inbox = carrier.services.runtime.inbox

    await wait_for(lambda: inbox.seen(copy.id))
    events = await carrier_events(carrier, complaint.complaint_id, 3, settle=2.0)

    assert sorted(e.type.split(".")[2] for e in events) == [
        "OrderShipmentSummarized",
        "ShipmentStatusReported",
        "ShipmentStatusReported",
    ]
    logged, _ = await carrier.services.runtime.store.load(watch_stream(complaint.complaint_id))
    assert [type(e).__name__ for e in logged].count("ShipmentStatusReported") == 2


async def test_periodic_rechecks_report_a_package_that_arrived_once_and_nothing_when_nothing_changed(carrier):
    number = "794644790201"
    await carrier.simulator.put(f"/scenarios/{number}", json={"scenario": "in_transit", "carrier": "fedex"})
    complaint = a_complaint(tracking_numbers=[number])
    on_intake_topic(carrier.config, complaint)
    first = await carrier_events(carrier, complaint.complaint_id, 2)
    assert [e.data["status"] for e in by_type(first, "ShipmentStatusReported")] == ["in_transit"]
    rechecks, watches = carrier.services.rechecks, carrier.services.rechecks.watches
    await wait_for(lambda: watches.get(complaint.complaint_id))

    rechecks.interval_s, clock, now = 900, carrier.services.gateway.clock, datetime.now(UTC)
    clock.advance(carrier.config.tracking_cache_s)  # the cached answer is stale: the carrier is asked
    assert await rechecks.tick(now) == 1  # still in transit: nothing new to tell

    await carrier.simulator.put(f"/scenarios/{number}", json={"scenario": "delivered_to_neighbour"})
    clock.advance(carrier.config.tracking_cache_s)
    later = now + timedelta(seconds=rechecks.interval_s)
    assert await rechecks.tick(later) == 1
    await rechecks.tick(later)  # the same slot again (another replica, say): appends nothing

    events = await carrier_events(carrier, complaint.complaint_id, 4, settle=1.0)
    reports = by_type(events, "ShipmentStatusReported")
    assert [(e.data["status"], e.data["trigger"]) for e in reports] == [
        ("in_transit", "complaint"),
        ("delivered", "recheck"),
    ]
    assert reports[1].data["delivery"]["handover"] == "neighbour"
    assert by_type(events, "OrderShipmentSummarized")[-1].data["summary"] == "1 of 1 package delivered"
    await wait_for(lambda: _gone(watches, complaint.complaint_id))  # delivered: no longer re-checked


async def _gone(watches, complaint_id: str) -> bool:
    return await watches.get(complaint_id) is None


async def test_an_unknown_carrier_and_a_malformed_tracking_number_fail_with_a_clear_reason(carrier):
    story_1 = a_complaint(order_id="114-2087456-3319876")  # shipped by "northway", a regional partner
    bad_number = a_complaint(tracking_numbers=["not-a-number!"])
    on_intake_topic(carrier.config, story_1, bad_number)

    [unknown] = by_type(await carrier_events(carrier, story_1.complaint_id, 2), "CarrierQueryFailed")
    [malformed] = by_type(await carrier_events(carrier, bad_number.complaint_id, 2), "CarrierQueryFailed")

    assert (unknown.data["code"], unknown.data["carrier"], unknown.data["attempts"]) == (
        "unknown_carrier",
        "northway",
        0,
    )
    assert "'northway' is not one we track" in unknown.data["reason"]
    assert malformed.data["code"] == "malformed_tracking_number"
    assert "'NOTANUMBER!' matches no format" in malformed.data["reason"]


async def test_malformed_or_oversized_carrier_json_is_logged_with_carrier_and_number_and_the_package_is_unknown(
    carrier, caplog
):
    malformed, oversized = "9400111899223197429901", "9400111899223197429902"
    for number, scenario in ((malformed, "malformed_json"), (oversized, "oversized")):
        await carrier.simulator.put(f"/scenarios/{number}", json={"scenario": scenario, "carrier": "usps"})
    complaint = a_complaint(tracking_numbers=[malformed, oversized])

    with caplog.at_level(logging.WARNING, logger="services.carrier.adapters.tracking"):
        on_intake_topic(carrier.config, complaint)
        events = await carrier_events(carrier, complaint.complaint_id, 3)

    statuses = {e.data["tracking_number"]: e.data["status"] for e in by_type(events, "ShipmentStatusReported")}
    assert statuses == {malformed: "unknown", oversized: "unknown"}
    logged = {r.fields["tracking_number"]: r.fields for r in caplog.records if hasattr(r, "fields")}
    assert logged[malformed]["carrier"] == "usps" and "malformed JSON" in logged[malformed]["error"]
    assert logged[oversized]["carrier"] == "usps" and "larger than 200000 bytes" in logged[oversized]["error"]


async def test_a_rate_limited_or_slow_carrier_is_retried_then_the_failure_names_the_cause(carrier):
    limited, slow = "7XX1000634019901", "AB123456790AU"
    for number in (limited, slow):
        await carrier.simulator.put(f"/scenarios/{number}", json={"scenario": "in_transit", "carrier": "auspost"})
    await carrier.simulator.put(
        "/faults", json={"scenario": "rate_limited", "carrier": "auspost", "times": 3, "retry_after_s": 0}
    )
    first = a_complaint(tracking_numbers=[limited])
    on_intake_topic(carrier.config, first)
    [rate_limited] = by_type(await carrier_events(carrier, first.complaint_id, 1), "CarrierQueryFailed")
    assert (rate_limited.data["code"], rate_limited.data["attempts"]) == ("rate_limited", 3)
    assert "HTTP 429" in rate_limited.data["reason"]

    carrier.services.gateway.breakers["auspost"].succeeded()  # a fresh start for the timeouts
    await carrier.simulator.put("/faults", json={"scenario": "slow", "carrier": "auspost", "times": 3, "delay_s": 1.5})
    second = a_complaint(tracking_numbers=[slow])
    on_intake_topic(carrier.config, second)
    [timed_out] = by_type(await carrier_events(carrier, second.complaint_id, 1), "CarrierQueryFailed")
    assert (timed_out.data["code"], timed_out.data["attempts"]) == ("timeout", 3)
    assert "did not answer within 0.5 s" in timed_out.data["reason"]


async def test_the_agent_endpoints_refuse_a_missing_token_a_customer_and_an_unknown_complaint(carrier):
    path = "/api/complaints/c-nobody/recheck"
    assert (await carrier.post(path)).status_code == 401
    customer = await carrier.post(path, headers=agent(carrier.config, role="customer"))
    assert customer.status_code == 403 and "agents" in customer.json()["message"]
    unknown = await carrier.post(path, headers=agent(carrier.config))
    assert unknown.status_code == 404 and "c-nobody" in unknown.json()["message"]


def a_push(tracking: dict, number: str = DELAYED_PACKAGE, order_id: str = STORY_2_ORDER) -> dict:
    return {
        "event_id": f"evt-{uuid.uuid4().hex[:10]}",
        "carrier": "ups",
        "tracking_number": number,
        "order_id": order_id,
        "tracking": tracking,
    }


async def test_a_pushed_weather_delay_for_an_order_nobody_complained_about_opens_a_proactive_case_in_intake(
    carrier, intake
):
    tracking = (await carrier.simulator.get(f"/simulation/tracking/ups/{DELAYED_PACKAGE}")).json()
    body, headers = signed(a_push(tracking), carrier.config.tracking_webhook_secret)

    answer = await carrier.post("/api/webhooks/tracking", content=body, headers=headers)
    again = await carrier.post("/api/webhooks/tracking", content=body, headers=headers)  # pushed twice

    assert answer.status_code == 202 and answer.json()["status"] == "alerted", answer.text
    assert again.status_code == 202 and again.json()["status"] == "no news"
    [alert] = await asyncio.to_thread(
        published,
        carrier.config.kafka_bootstrap_servers,
        TOPICS["carrier"],
        STORY_2_ORDER,
        1,
        60,
        1.0,
        carrier.services.runtime.store.source,
    )
    assert alert.type == "complaints.carrier.ShipmentExceptionDetected.v1"
    assert (alert.data["status"], alert.data["reason"], alert.data["customer_id"]) == (
        "delayed",
        "weather",
        "cust-2002",
    )

    store = intake.state.services.runtime.store

    async def proactive_case():
        claims, _ = await store.load(order_stream(STORY_2_ORDER))
        if not claims:
            return None
        filed, _ = await store.load(complaint_stream(claims[-1].complaint_id))
        return filed[0] if filed else None

    case = await wait_for(proactive_case, timeout=60)
    assert (case.channel, case.category, case.complainant.customer_id) == ("proactive", "late_delivery", "cust-2002")
    assert case.tracking_numbers == [DELAYED_PACKAGE] and "weather" in case.description


async def test_an_unsigned_or_wrongly_signed_push_is_refused_with_401_and_nothing_is_emitted(carrier):
    tracking = (await carrier.simulator.get(f"/simulation/tracking/ups/{DELAYED_PACKAGE}")).json()
    body, headers = signed(a_push(tracking), carrier.config.tracking_webhook_secret)
    _, wrong = signed(a_push(tracking), "not-the-shared-secret-at-all")

    unsigned = await carrier.post("/api/webhooks/tracking", content=body, headers={"Content-Type": "application/json"})
    wrongly_signed = await carrier.post("/api/webhooks/tracking", content=body, headers=wrong)
    tampered = await carrier.post("/api/webhooks/tracking", content=body.replace(b"ups", b"UPS", 1), headers=headers)

    assert [r.status_code for r in (unsigned, wrongly_signed, tampered)] == [401, 401, 401]
    assert "X-Tracking-Signature" in unsigned.json()["message"]
    logged, _ = await carrier.services.runtime.store.load(alerts_stream(STORY_2_ORDER))
    assert logged == []


async def test_a_push_for_an_unknown_order_or_a_foreign_package_is_refused_naming_the_field(carrier):
    tracking = (await carrier.simulator.get(f"/simulation/tracking/ups/{DELAYED_PACKAGE}")).json()

    async def push(payload: dict):
        body, headers = signed(payload, carrier.config.tracking_webhook_secret)
        return await carrier.post("/api/webhooks/tracking", content=body, headers=headers)

    unknown = await push(a_push(tracking, order_id="999-0000000-0000000"))
    foreign = await push(a_push(tracking, number="1Z999AA19999999999"))
    garbled = await push(a_push({"trackResponse": {}}))

    assert unknown.status_code == 422 and unknown.json()["message"].startswith("order_id:")
    assert foreign.status_code == 422 and foreign.json()["message"].startswith("tracking_number:")
    assert garbled.status_code == 422 and garbled.json()["message"].startswith("tracking:")
