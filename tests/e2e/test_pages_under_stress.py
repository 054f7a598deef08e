"""The customer's pages as a person in distress uses them (issue 20), in a real browser on the real
intake app, broker and store: the call first on a phone's first screen, an error summary that takes
the focus, what happens next and by when on the case page, a way out when the code cannot arrive.
Every page also passes axe-core and fits a 375 px phone (``a_person_can_use``)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Page, expect

from contracts import TOPICS
from contracts.carrier import OrderShipmentSummarized
from contracts.envelope import Envelope, Event, to_kafka
from contracts.intake import CATEGORY_LABELS, ComplaintFiled, short_reference
from contracts.routing import HandoffBrief, TransferredToPartner
from services.intake.domain import complaint_stream
from services.kernel import auth
from tests.e2e.accessibility import PHONE, a_person_can_use, focus_ring_contrast
from tests.e2e.conftest import KAFKA
from tests.e2e.desk_story import a_filed_complaint, an_agent_on_duty, off_duty
from tests.e2e.test_complaint_page import stored_events
from tests.integration.support import produce_raw

pytestmark = pytest.mark.integration

DRIVER = CATEGORY_LABELS["delivery_driver_conduct"]


@pytest.fixture
def phone(browser):
    """A page the size of a phone (375×812), as the people of our stories hold it."""
    context = browser.new_context(locale="en-GB", viewport=PHONE, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def bottom(page: Page, locator) -> float:
    box = locator.bounding_box()
    assert box is not None, f"{locator} is not on the page"
    return box["y"] + box["height"]


def test_on_a_phone_the_call_is_the_first_thing_a_person_can_do(phone: Page, intake_server):
    phone.goto(intake_server)

    categories = phone.get_by_role("group", name="What is your complaint about?")
    for what in (
        categories.get_by_role("radio").last,
        phone.get_by_label("Phone number"),
        phone.get_by_role("button", name="Call me now"),
    ):
        assert bottom(phone, what) <= PHONE["height"], f"{what} is below the first screen"
    # The rest is optional and comes after the button, in the order a keyboard meets it.
    assert bottom(phone, phone.get_by_role("button", name="Call me now")) < bottom(
        phone, phone.get_by_label("What happened?")
    )
    expect(phone.get_by_role("button", name="Send my complaint")).to_be_visible()
    a_person_can_use(phone, "complaint-page")


def test_the_focus_ring_stands_out_on_every_kind_of_control(page: Page, intake_server):
    page.goto(intake_server)
    seen = []
    for _ in range(8):  # the skip link, the brand link, a choice, the phone, the button, …
        page.keyboard.press("Tab")
        what = page.evaluate("document.activeElement.tagName + ':' + (document.activeElement.type || '')")
        seen.append(what)
        assert focus_ring_contrast(page) >= 3, f"the focus ring on {what} is {focus_ring_contrast(page):.2f}:1"
    assert {"A:", "INPUT:radio", "INPUT:tel", "BUTTON:button"} <= set(seen), seen


def test_a_refused_send_moves_the_focus_to_a_summary_that_links_to_each_field(page: Page, intake_server):
    page.goto(intake_server)
    expect(page.get_by_text("An email or a phone number is enough")).to_be_visible()

    page.get_by_role("button", name="Send my complaint").click()

    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    expect(summary.get_by_role("heading")).to_have_text("There is a problem")
    expect(summary.get_by_role("link")).to_have_text(
        [
            "Choose what your complaint is about.",
            "Tell us what happened.",
            "Enter an email address or a phone number, so that we can answer you (one is enough).",
        ]
    )
    assert page.title().startswith("Error: ")
    expect(page.locator("#email-error")).to_have_text(re.compile(r"^Error: Enter an email address or a phone"))
    a_person_can_use(page, "complaint-page-errors")

    summary.get_by_role("link", name="Tell us what happened.").click()
    expect(page.get_by_label("What happened?")).to_be_focused()
    summary.get_by_role("link", name="Choose what your complaint is about.").click()
    expect(page.get_by_role("radio").first).to_be_focused()


def publish(topic: str, *events: Event) -> None:
    """Put the owning service's events on its topic, as it publishes them (CloudEvents, keyed by
    the complaint): the case page reads only what intake's view makes of them."""
    now = datetime.now(UTC)
    source = {"routing": "/services/routing", "carrier": "/services/carrier"}[topic]
    produce_raw(
        KAFKA,
        TOPICS[topic],
        [
            to_kafka(
                Envelope(
                    id=str(uuid.uuid4()),
                    type=e.ce_type(),
                    source=source,
                    subject=e.subject(),
                    time=now,
                    correlationid=str(uuid.uuid4()),
                    data=e.model_dump(mode="json"),
                )
            )
            for e in events
        ],
    )


def anonymous_filing(intake_server: str, category: str = "delivery_driver_conduct", **complainant) -> dict:
    answer = httpx.post(
        f"{intake_server}/api/complaints",
        json={
            "category": category,
            "description": "The driver nearly hit me.",
            "complainant": complainant or {"email": f"sam.{uuid.uuid4().hex[:8]}@example.com"},
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def next_step(page: Page) -> tuple:
    return page.locator("#next-title"), page.locator("#next-by")


def test_a_written_case_says_who_answers_and_by_when_and_a_call_can_be_asked_for_from_it(
    phone: Page, intake_server, intake_settings
):
    filed = anonymous_filing(intake_server)
    phone.goto(f"{intake_server}{filed['status_url']}")
    title, by = next_step(phone)
    expect(title).to_have_text("An agent will read your complaint and email you.")
    expect(by).to_have_text(re.compile(r"^By \w{3} \d{1,2} \w{3}, \d\d:\d\d$"))  # tomorrow, a working day on
    expect(phone.locator("#reference")).to_have_text(short_reference(filed["complaint_id"]))
    a_person_can_use(phone, "case-page-written")

    phone.get_by_label("Phone number to call").fill("+44 7700 900777")
    phone.get_by_role("button", name="Call me now").click()

    # Whether routing (when it runs) has queued it yet or not, the page says one thing, from the case.
    waiting = re.compile(
        r"^(We have your request: an agent will call you shortly|"
        r"You are number \d+ in the queue for a call)\.$"
    )
    expect(title).to_have_text(waiting, timeout=20_000)
    expect(phone.locator("#callback-state")).to_have_text(waiting)
    expect(phone.get_by_role("button", name="Cancel the call")).to_be_visible()
    asked = [
        e
        for e in stored_events(intake_settings, complaint_stream(filed["complaint_id"]))
        if e["type"].endswith("CallbackRequested.v1")
    ]
    assert [e["data"]["phone"] for e in asked] == ["+447700900777"]


def test_a_queued_then_dispatched_call_says_the_place_the_wait_and_then_that_we_are_calling(
    phone: Page, intake_server, routing_server, routing_settings
):
    # A call about a delivery to the wrong address, which no agent on duty handles: routing queues it.
    filed = anonymous_filing(intake_server, "wrong_address", phone="+447700900888")
    call = httpx.post(
        f"{intake_server}/api/complaints/{filed['complaint_id']}/callback",
        json={"phone": "+447700900888"},
        headers={"Authorization": f"Bearer {filed['access_token']}"},
    )
    assert call.status_code == 202, call.text
    phone.goto(f"{intake_server}{filed['status_url']}")
    title, by = next_step(phone)
    expect(title).to_have_text(re.compile(r"^You are number \d+ in the queue for a call\.$"), timeout=20_000)
    expect(by).to_have_text(re.compile(r"^By \d\d:\d\d today$"))  # routing's estimated wait
    expect(phone.get_by_role("button", name="Cancel the call")).to_be_visible()
    a_person_can_use(phone, "case-page-queued")

    agent = an_agent_on_duty(routing_server, routing_settings, ["wrong_address"])
    try:
        expect(title).to_have_text("We are calling you now.", timeout=20_000)
        expect(phone.locator("#callback-state")).to_have_text("We are calling you now.")
        expect(phone.locator("#announce")).to_have_text("We are calling you now.")  # the change, once
        expect(phone.get_by_role("button", name="Cancel the call")).to_be_hidden()
        a_person_can_use(phone, "case-page-dialling")
    finally:
        off_duty(routing_server, routing_settings, agent)


def test_a_transferred_case_says_the_team_has_it_and_when_the_customer_hears_and_the_carrier_in_plain_words(
    phone: Page, intake_server, intake_settings
):
    # Filed by a logged-in customer: the order is proven theirs, so the carrier's words may be shown.
    complaint_id = a_filed_complaint(
        intake_server,
        intake_settings,
        "part_of_order_missing",
        "Only 6 of my 8 items came.",
        order_id="114-5523190-0099999",
    )
    # The case page's link, with the token intake's filing answers with (minted as intake does).
    token = auth.sign({"complaint_id": complaint_id}, intake_settings.signing_key, timedelta(hours=1))
    promised_by = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    publish(
        "routing",
        TransferredToPartner(
            complaint_id=complaint_id,
            team_id="team-logistics-uk-south",
            by_agent_id="agt-ana",
            brief=HandoffBrief(
                customer_asks="The 2 missing items or his money back.",
                tried="Asked the carrier.",
                promised="An answer from the depot tomorrow.",
                promised_by=promised_by,
            ),
            transferred_at=datetime.now(UTC),
            sla_due_at=datetime.now(UTC) + timedelta(hours=4),
        ),
    )
    publish(
        "carrier",
        OrderShipmentSummarized(
            complaint_id=complaint_id,
            order_id="114-5523190-0099999",
            packages=[],
            items_total=8,
            items_delivered=6,
            summary="6 of 8 items delivered, 2 delayed: weather, new estimate tomorrow 18:00",
            summarized_at=datetime.now(UTC),
        ),
    )
    phone.goto(f"{intake_server}/complaints/{complaint_id}?token={token}")

    title, by = next_step(phone)
    expect(title).to_have_text("Your case is with the team that can act on it.", timeout=20_000)
    local = promised_by.astimezone()  # the browser's zone is the machine's
    expect(by).to_contain_text(f"{local:%H:%M}")
    expect(phone.locator("#shipment-summary")).to_have_text(
        "6 of 8 items delivered, 2 delayed: weather, new estimate tomorrow 18:00.", timeout=20_000
    )
    expect(phone.locator("#case")).not_to_contain_text("team-logistics-uk-south")  # staff's words stay staff's
    expect(phone.locator("#case")).not_to_contain_text("Asked the carrier.")
    a_person_can_use(phone, "case-page-transferred")


def test_a_seller_who_cannot_get_the_code_files_without_it_for_a_manual_check(
    phone: Page, intake_server, intake_settings
):
    phone.goto(f"{intake_server}/locked-out")
    phone.get_by_text("Can't get the code?").click()
    expect(phone.get_by_text("checks by hand that it is you")).to_be_visible()
    expect(phone.get_by_role("heading", name="Finding your seller account id")).to_be_visible()
    a_person_can_use(phone, "locked-out")

    phone.get_by_role("link", name="Complain without a code").click()
    expect(phone.locator("#without-code-banner")).to_contain_text("checks by hand that it is you")
    expect(phone.get_by_role("radio", name=CATEGORY_LABELS["account_locked"])).to_be_checked()
    a_person_can_use(phone, "complaint-page-without-code")
    phone.get_by_label("Your seller account id").fill("sel-48213")
    phone.get_by_label("What happened?").fill("My account is locked and the code goes to the locked account's email.")
    phone.get_by_label("Email address").fill("maria.private@example.com")
    phone.get_by_role("button", name="Send my complaint").click()

    phone.wait_for_url(re.compile(r"/complaints/[^/?]+\?token="))
    complaint_id = phone.url.split("/complaints/")[1].split("?")[0]
    [filed] = [
        e
        for e in stored_events(intake_settings, complaint_stream(complaint_id))
        if e["type"] == ComplaintFiled.ce_type()
    ]
    # Unverified and about a locked account: routing's rules give it to a human for a manual
    # check (security_unverified), not to anyone who acts on the account at once.
    assert filed["data"]["assurance"] == "unverified" and filed["data"]["category"] == "account_locked"
    assert filed["data"]["description"].startswith(
        "I could not get the one-time code, so I am complaining without it. My seller account id: sel-48213."
    )
    assert filed["data"]["complainant"].get("seller_id") is None  # nothing proves it
