"""The carrier service on the real broker and store, asking the carrier simulator over real HTTP."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime, timedelta

from contracts import TOPICS
from contracts.intake import Category, Channel, Complainant, ComplaintFiled
from services.carrier.domain import watch_stream
from tests.integration.carrier.conftest import agent, on_intake_topic, published
from tests.integration.support import wait_for

STORY_2_ORDER = "114-5523190-0012345"
DELIVERED_PACKAGE, DELAYED_PACKAGE = "1Z999AA10123456784", "1Z999AA10123456795"


def a_complaint(order_id: str | None = None, tracking_numbers: list[str] | None = None) -> ComplaintFiled:
    return ComplaintFiled(complaint_id=f"c-{uuid.uuid4().hex[:12]}", category=Category.PART_OF_ORDER_MISSING,
                          description="Only 6 of my 8 items arrived.", channel=Channel.WEB,
                          complainant=Complainant(customer_id="cust-2002"), order_id=order_id,
                          tracking_numbers=tracking_numbers or [], filed_at=datetime.now(UTC))


async def carrier_events(carrier, key: str, count: int, settle: float = 0.0):
    return await asyncio.to_thread(published, carrier.config.kafka_bootstrap_servers, TOPICS["carrier"], key,
                                   count, 60, settle)


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
        "delayed", "weather", 2, True)
    checked = datetime.fromisoformat(delayed["checked_at"])
    estimate = datetime.fromisoformat(delayed["estimated_delivery_by"])
    assert (estimate.date() - checked.date(), estimate.hour) == (timedelta(days=1), 18)
    [summary] = by_type(events, "OrderShipmentSummarized")
    assert summary.data["summary"] == "6 of 8 items delivered, 2 delayed: weather, new estimate tomorrow 18:00"
    assert (summary.data["items_total"], summary.data["items_delivered"]) == (8, 6)
    assert {p["tracking_number"]: p["can_intercept"] for p in summary.data["packages"]} == {
        DELIVERED_PACKAGE: False, DELAYED_PACKAGE: True}

    view = await carrier.get(f"/api/complaints/{complaint.complaint_id}/shipments", headers=agent(carrier.config))
    assert view.status_code == 200, view.text
    assert view.json()["summary"] == summary.data["summary"]
    assert [p["can_intercept"] for p in view.json()["packages"] if p["status"] == "delayed"] == [True]
