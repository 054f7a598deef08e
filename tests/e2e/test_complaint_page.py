"""Stories 1 and 3 in a real browser: the complaint page, its "Call me now" button and the status
page; the locked-out seller's way in with a one-time code."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from confluent_kafka import Consumer
from playwright.sync_api import Page, expect
from pymongo import MongoClient

from contracts import TOPICS
from contracts.envelope import Envelope, from_kafka
from contracts.intake import CATEGORY_LABELS, CallbackRequested, ComplaintFiled, VerificationCodeRequested
from services.intake.domain import complaint_stream, verification_stream
from services.intake.handlers import CODE_SENT
from services.intake.settings import IntakeSettings
from tests.e2e.conftest import KAFKA
from tests.integration.support import code_as_notify_reads_it, kafka_config

pytestmark = pytest.mark.integration

CALLING = re.compile(
    r"an agent will call you shortly|We are calling you now|You are number \d+ in the queue|"
    r"You are in the queue"
)


def intake_event(complaint_id: str, ce_type: str, timeout_s: float = 30) -> tuple[Envelope, dict]:
    """The first CloudEvent of ``ce_type`` about ``complaint_id`` on the intake topic, and its headers."""
    consumer = Consumer(
        kafka_config(
            KAFKA,
            **{
                "group.id": f"e2e-{uuid.uuid4().hex}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "topic.metadata.refresh.interval.ms": 1000,
            },
        )
    )
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
    question = page.get_by_role("group", name="What is your complaint about?")
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

    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    summary.get_by_role("link", name="Enter your phone number so that we can call you.").click()
    expect(page.get_by_label("Phone number")).to_be_focused()
    assert posts == [] and page.url.rstrip("/") == intake_server


def test_an_order_number_the_order_system_does_not_know_is_shown_next_to_the_field_and_nothing_is_filed(
    page: Page, intake_server
):
    page.goto(f"{intake_server}/?order_id=114-0000000-0000000")
    expect(page.get_by_label("Order number")).to_have_value("114-0000000-0000000")
    page.get_by_role("radio", name=CATEGORY_LABELS["part_of_order_missing"]).check()
    page.get_by_label("What happened?").fill("Only 6 of my 8 items came.")
    page.get_by_label("Email address").fill("sam.okafor@example.com")

    with page.expect_response("**/api/complaints") as answer:
        page.get_by_role("button", name="Send my complaint").click()

    assert answer.value.status == 422
    expect(page.locator("#order_id-error")).to_have_text(
        "Error: We do not know this order number. Check it against your order confirmation."
    )
    expect(page.locator("#error-summary")).to_be_focused()
    expect(page.locator("#error-summary")).to_contain_text("We were told: order_id: unknown order")
    assert page.url.startswith(f"{intake_server}/?order_id=")


# --- story 3: the locked-out seller (infra/simulators/orders.json) --------------------------------

LOCKED_SELLER, HER_EMAIL = "sel-48213", "maria.chen@willowandclay.example"
BUYERS_ORDER = "114-7710042-5501234"  # placed in her shop by cust-3003
VERIFIED_BANNER = f"Verified by a one-time code for seller account {LOCKED_SELLER} — you can file without logging in"


def stored_events(settings: IntakeSettings, stream_id: str) -> list[dict]:
    """The CloudEvents of one stream in intake's own event store, in order."""
    with MongoClient(settings.mongodb_url) as client:
        commits = client[settings.database_name]["commits"].find({"stream_id": stream_id})
        return [event for commit in sorted(commits, key=lambda c: c["version"]) for event in commit["events"]]


def code_sent(settings: IntakeSettings, verification_id: str) -> str:
    """What the person would read in their email or text: the newest code of the verification
    (notify delivers it from this event; the test reads intake's log instead of a mailbox)."""
    requested = [
        e
        for e in stored_events(settings, verification_stream(verification_id))
        if e["type"] == VerificationCodeRequested.ce_type()
    ]
    assert requested, f"no code was sent for {verification_id}"
    return code_as_notify_reads_it(verification_id, requested[-1]["data"]["code_sealed"])


def ask_for_a_code(page: Page, settings: IntakeSettings) -> tuple[str, str]:
    """Push "Send me a code" on the filled-in locked-out page; the verification id and the code."""
    with page.expect_response("**/api/verification/codes") as asked:
        page.get_by_role("button", name="Send me a code").click()
    expect(page.locator("#request-message")).to_have_text(CODE_SENT)
    verification_id = asked.value.json()["verification_id"]
    return verification_id, code_sent(settings, verification_id)


def test_a_locked_out_seller_verifies_by_a_code_to_her_email_and_files_without_logging_in(
    page: Page, intake_server, intake_settings: IntakeSettings
):
    page.goto(intake_server)
    page.get_by_role("link", name="Locked out of your account? Verify with a one-time code instead").click()
    page.wait_for_url("**/locked-out")
    page.get_by_label("Your seller account id").fill(LOCKED_SELLER)
    page.get_by_label("By email, to the address on file").check()
    _, code = ask_for_a_code(page, intake_settings)

    page.get_by_label("The 6-digit code").fill(code)
    page.get_by_role("button", name="Verify").click()

    page.wait_for_url(re.compile(r"/\?verified=1$"))
    expect(page.get_by_role("status")).to_have_text(VERIFIED_BANNER)
    expect(page.get_by_role("link", name="Locked out of your account?")).to_be_hidden()
    assert page.evaluate("localStorage.length") == 0 and "token" not in page.url
    page.get_by_role("radio", name=CATEGORY_LABELS["account_locked"]).check()
    page.get_by_label("What happened?").fill(
        "My seller account was locked for suspected card fraud, but the "
        "card is mine. Buyers' orders are waiting to be sent."
    )
    page.get_by_role("button", name="Send my complaint").click()

    page.wait_for_url(re.compile(r"/complaints/[^/?]+\?token="))
    expect(page.locator("#category")).to_have_text(CATEGORY_LABELS["account_locked"])
    complaint_id = page.locator("#complaint-id").inner_text().strip()
    filed = stored_events(intake_settings, complaint_stream(complaint_id))[0]
    assert filed["type"] == ComplaintFiled.ce_type()
    assert filed["data"]["assurance"] == "verified_contact"
    assert filed["data"]["complainant"]["seller_id"] == LOCKED_SELLER
    assert filed["data"]["complainant"]["email"] == HER_EMAIL
    assert page.evaluate("sessionStorage.length") == 0  # the filing token is spent: forgotten


def test_a_wrong_code_is_shown_next_to_the_code_field_and_files_nothing(
    page: Page, intake_server, intake_settings: IntakeSettings
):
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    response = page.goto(f"{intake_server}/locked-out")
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "default-src 'self'" in response.headers["content-security-policy"]
    page.get_by_label("An order of mine").check()
    page.get_by_label("Order number").fill(BUYERS_ORDER)
    page.get_by_label("By text message, to the phone number on file").check()
    _, code = ask_for_a_code(page, intake_settings)
    code_field = page.get_by_label("The 6-digit code")

    code_field.fill("12345")
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("#code-error")).to_contain_text("6 digits")

    code_field.fill(f"{(int(code) + 1) % 10**6:06d}")
    page.get_by_role("button", name="Verify").click()

    expect(page.locator("#code-error")).to_contain_text("wrong or expired")
    expect(code_field).to_have_attribute("aria-invalid", "true")
    expect(code_field).to_have_attribute("aria-describedby", re.compile(r"\bcode-error\b"))
    expect(code_field).to_be_focused()
    assert page.url.endswith("/locked-out") and page.evaluate("sessionStorage.length") == 0
    assert [p.removeprefix(intake_server) for p in posts] == ["/api/verification/codes", "/api/verification/verify"]


def test_after_too_many_wrong_codes_the_page_says_when_to_try_again(
    page: Page, intake_server, intake_settings: IntakeSettings
):
    page.goto(f"{intake_server}/locked-out")
    page.get_by_label("An order of mine").check()
    page.get_by_label("Order number").fill(BUYERS_ORDER)
    page.get_by_label("By email, to the address on file").check()
    _, code = ask_for_a_code(page, intake_settings)
    wrong = f"{(int(code) + 1) % 10**6:06d}"

    for _ in range(6):  # the API locks after the fifth wrong code in a row
        with page.expect_response("**/api/verification/verify") as answered:
            page.get_by_label("The 6-digit code").fill(wrong)
            page.get_by_role("button", name="Verify").click()
        if answered.value.status == 429:
            break

    assert answered.value.status == 429
    expect(page.locator("#code-error")).to_have_text(
        re.compile(r"Too many wrong codes\. Please try again in about an hour")
    )
    assert page.evaluate("sessionStorage.length") == 0


def test_an_expired_verification_is_forgotten_and_the_complaint_page_says_so(page: Page, intake_server):
    page.goto(intake_server)
    page.evaluate("""sessionStorage.setItem("intake.filingToken", JSON.stringify({token: "old",
        expiresAt: Date.now() - 1000, reference: {kind: "seller_id", value: "sel-48213"}}))""")
    page.reload()

    expect(page.get_by_role("status")).to_contain_text("verification has expired")
    expect(page.get_by_role("status").get_by_role("link", name="verify again")).to_have_attribute("href", "/locked-out")
    assert page.evaluate("sessionStorage.length") == 0
