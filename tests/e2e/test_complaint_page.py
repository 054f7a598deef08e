"""Story 1 in a real browser: the complaint page, its "Call me now" button and the status page."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from confluent_kafka import Consumer
from playwright.sync_api import Page, expect

from contracts import TOPICS
from contracts.envelope import Envelope, from_kafka
from contracts.intake import CATEGORY_LABELS, CallbackRequested
from tests.e2e.conftest import KAFKA

pytestmark = pytest.mark.integration

CALLING = re.compile(r"an agent will call you shortly|We are calling you now|You are number \d+ in the queue|"
                     r"You are in the queue")


def intake_event(complaint_id: str, ce_type: str, timeout_s: float = 30) -> tuple[Envelope, dict]:
    """The first CloudEvent of ``ce_type`` about ``complaint_id`` on the intake topic, and its headers."""
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": f"e2e-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False,
                         "topic.metadata.refresh.interval.ms": 1000})
    consumer.subscribe([TOPICS["intake"]])
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            headers = {k: (v or b"").decode() for k, v in message.headers() or []}
            if headers.get("ce_subject") == complaint_id and headers.get("ce_type") == ce_type:
                return from_kafka(message.value(), message.headers()), headers
    finally:
        consumer.close()
    raise AssertionError(f"no {ce_type} for {complaint_id} on {TOPICS['intake']} within {timeout_s:.0f} s")


def test_the_page_lists_every_category_under_the_question(page: Page, intake_server):
    page.goto(intake_server)
    question = page.get_by_role("group", name="Does your complaint involve the following?")
    for label in CATEGORY_LABELS.values():
        expect(question.get_by_role("radio", name=label, exact=True)).to_be_visible()
    expect(question.get_by_role("radio")).to_have_count(len(CATEGORY_LABELS))


def test_call_me_now_puts_a_callback_request_on_the_intake_topic_and_shows_the_call(page: Page, intake_server):
    page.goto(intake_server)
    page.get_by_role("radio", name=CATEGORY_LABELS["delivery_driver_conduct"]).check()
    page.get_by_label("What happened?").fill("The driver reversed onto the pavement and nearly hit me.")
    page.get_by_label("Phone number").fill("+44 7700 900123")

    page.get_by_role("button", name="Call me now").click()

    page.wait_for_url(re.compile(r"/complaints/[^/?]+\?token="))
    expect(page.locator("#callback-state")).to_have_text(CALLING)  # (the timeline may say it too)
    expect(page.locator("#category")).to_have_text(CATEGORY_LABELS["delivery_driver_conduct"])
    complaint_id = page.locator("#complaint-id").inner_text().strip()
    envelope, headers = intake_event(complaint_id, CallbackRequested.ce_type())
    assert headers["ce_type"] == "complaints.intake.CallbackRequested.v1"
    assert envelope.data["complaint_id"] == complaint_id and envelope.data["phone"] == "+447700900123"
    expect(page.locator("#timeline")).to_contain_text("You asked us to call you back")


def test_call_me_now_without_a_phone_says_so_and_files_nothing(page: Page, intake_server):
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    page.goto(intake_server)
    page.get_by_label("What happened?").fill("The driver nearly hit me.")

    page.get_by_role("button", name="Call me now").click()

    expect(page.get_by_role("alert").filter(has_text="phone number")).to_be_visible()
    expect(page.get_by_label("Phone number")).to_be_focused()
    assert posts == [] and page.url.rstrip("/") == intake_server
