"""The three stories of MISSION.md, end to end: a real browser for every person in them, the real
intake, routing and notify apps on the real broker and store, a real SMTP server, and the
simulators of the order system, the carriers and the telephone network.

Each story prints the latencies it is about (click to dial, resolve to email); they are figures
to read, not thresholds.
"""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from contracts.intake import CATEGORY_LABELS, short_reference
from services.kernel import auth
from tests.e2e.customer_story import (
    answer_by_the_email_link,
    file_and_call_on_the_page,
    link_after,
    mail_with,
    measured,
    someone,
    status_page_shows,
    the_call,
)
from tests.e2e.desk_story import (
    a_partner_team,
    an_agent_on_duty,
    bearer,
    off_duty,
    open_case_from_the_queue,
    partner_records_an_outcome,
    request_an_action,
    resolve,
    routing_events,
    screenshot,
    sign_in,
    transfer_with_a_brief,
)

pytestmark = pytest.mark.integration

DRIVER = "delivery_driver_conduct"


@pytest.fixture
def another_page(browser: Browser):
    """A second person's browser (the agent's, the partner's): its own context, its own session."""
    contexts = []

    def open_one() -> Page:
        context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_one
    for context in contexts:
        context.close()


@pytest.fixture
def on_duty(routing_server, routing_settings):
    """Put a new agent with these skills (and teams) on duty; off duty again after the test, so
    the next test's complaints are not theirs."""
    agents = []

    def agent(skills: list[str], teams: list[str] = ()) -> str:
        agents.append(an_agent_on_duty(routing_server, routing_settings, skills, teams))
        return agents[-1]

    yield agent
    for agent_id in agents:
        off_duty(routing_server, routing_settings, agent_id)


def test_the_button_call_me_now_the_agent_hands_over_with_a_brief_the_partner_acts_and_the_customer_closes_it(
    page: Page,
    another_page,
    intake_server,
    routing_server,
    routing_settings,
    notify_server,
    mailbox,
    telephony_url,
    on_duty,
    spans,
):
    agent = on_duty([DRIVER])
    logistics = a_partner_team(routing_server, routing_settings, [DRIVER])
    email, phone = someone("sam")

    # He lands on the complaint page, picks the category, writes two lines and pushes the button.
    complaint_id, status_url, clicked_at = file_and_call_on_the_page(
        page, intake_server, DRIVER, "The van reversed onto the pavement and nearly hit me.", "Sam Okafor", email, phone
    )

    # His phone rings: notify asked the provider to call him and bridge the fitting agent.
    call = the_call(telephony_url, phone)
    measured("the button", "click to dial", clicked_at, call["date_created"])
    assert f"<Client>{agent}</Client>" in call["twiml"]
    expect(page.locator("#callback-state")).to_have_text("We are calling you now.", timeout=20_000)
    # And a receipt is in his inbox: a reference he can read aloud, the link back to his case.
    reference = short_reference(complaint_id)
    receipt = mail_with(mailbox, email, f"We have your complaint: reference {reference}")
    assert f"{intake_server}/complaints/{complaint_id}?token=" in receipt["text"]
    expect(page.locator("#reference")).to_have_text(reference)

    # The agent has the case in front of them, and hands it to the logistics partner with a brief.
    desk = another_page()
    sign_in(desk, intake_server, "desk", agent)
    open_case_from_the_queue(desk, intake_server, complaint_id)
    expect(desk.locator("#filing")).to_contain_text("nearly hit me")
    mark_the_call_connected(desk, agent)
    expect(page.locator("#callback-state")).to_have_text("You are on the call with us.", timeout=20_000)
    transfer_with_a_brief(
        desk,
        logistics,
        asks="Wants the driver stopped from driving on pavements.",
        tried="Took the details: van reversed onto the pavement at 08:10 today.",
        promised="The partner team will look into it and tell him what they did.",
    )

    # The partner team already knows the key points, acknowledges, and records what it did.
    partner = another_page()
    sign_in(partner, intake_server, "partner", "pat-depot", team=logistics)
    card = partner.locator(f'[data-complaint-id="{complaint_id}"]')
    expect(card).to_contain_text("Wants the driver stopped from driving on pavements.", timeout=20_000)
    partner_records_an_outcome(
        partner,
        complaint_id,
        for_customer="The driver was spoken to and retrained; the route now avoids your street.",
        internal="Driver D-4471, second incident this month.",
    )

    # The agent resolves; within moments he is asked by email whether it is closed.
    expect(desk.locator("#timeline")).to_contain_text("Outcome from", timeout=20_000)
    question = resolve_and_wait_for_the_question(
        desk,
        mailbox,
        "the button",
        complaint_id,
        email,
        recap="We passed your report to the regional logistics partner, who acted on it.",
        next_steps="Nothing more is needed from you.",
    )

    # He hears the outcome (never the internal note), and answers yes from the email.
    outcome = mail_with(mailbox, email, f"What was done about your complaint {complaint_id}")
    assert "retrained" in outcome["text"] and "D-4471" not in outcome["text"]
    answer_by_the_email_link(
        page, link_after(question["text"], "Yes, it's closed:"), "Yes, it's closed", check_as="notify-closure"
    )
    expect(page.get_by_text("Your complaint is closed.")).to_be_visible()

    # The case is closed everywhere: his page, and routing's case.
    page.goto(status_url)
    status_page_shows(page, "Closed")
    expect(page.locator("#callback-state")).to_have_text("The call has ended.")
    expect(page.locator("#outcomes")).to_contain_text("The driver was spoken to and retrained")
    expect(page.locator("#timeline")).to_contain_text("You confirmed your complaint is closed")
    assert "D-4471" not in page.content()
    screenshot(page, "customer-page")
    assert routing_case(routing_server, routing_settings, complaint_id, agent, until="closed")["status"] == "closed"

    # The operators can follow it too: one trace from his click to the dial-out, across intake,
    # routing and notify, and the services' metrics show what they did.
    click = the_trace_of(spans, f"/api/complaints/{complaint_id}/callback")
    consumed = {s.attributes.get("cloudevents.event_type") for s in click if s.kind.name == "CONSUMER"}
    assert {"complaints.intake.CallbackRequested.v1", "complaints.routing.CallbackDispatched.v1"} <= consumed
    assert "eventstore.append" in {s.name for s in click}
    assert any(str(s.attributes.get("url.full", "")).startswith(telephony_url) for s in click), "the dial-out"
    metrics = httpx.get(f"{routing_server}/metrics").text
    for name in (
        "http_server_request_duration_seconds_count",
        "complaints_events_appended_total",
        "complaints_relay_publish_duration_seconds_count",
        "complaints_consumer_handling_duration_seconds_count",
        "http_client_request_duration_seconds_count",
    ):
        assert any(line.startswith(name) and float(line.rsplit(" ", 1)[1]) > 0 for line in metrics.splitlines()), name


def the_trace_of(spans, path: str) -> list:
    """Every span of the trace that began with the request for ``path`` (its server span; the
    page's retry of the same click, if any, counts as the same click)."""
    finished = spans.get_finished_spans()
    roots = {s.context.trace_id for s in finished if s.attributes.get("url.path") == path and s.kind.name == "SERVER"}
    assert roots, f"no request for {path} was traced"
    return [s for s in finished if s.context.trace_id in roots]


def resolve_and_wait_for_the_question(
    desk: Page, mailbox, story: str, complaint_id: str, to: str, recap: str, next_steps: str
) -> dict:
    """Resolve on the desk; the "is this closed?" email, once the SMTP server has it. Prints the
    time from routing's ComplaintResolved to that receipt."""
    resolve(desk, recap=recap, next_steps=next_steps)
    resolved_at = routing_events(complaint_id, "complaints.routing.ComplaintResolved.v1", 1)[0].time
    question = mail_with(mailbox, to, f"Is your complaint {complaint_id} closed?")
    measured(story, "resolve to email", resolved_at, question["received_at"])
    return question


def mark_the_call_connected(desk: Page, agent: str) -> None:
    callbacks = desk.locator("#callbacks")
    expect(callbacks).to_contain_text(f"Dialling the customer for {agent}", timeout=30_000)
    callbacks.get_by_role("button", name="Mark the call connected").click()
    expect(callbacks).to_contain_text("Call connected at", timeout=10_000)


def routing_case(routing_url: str, settings, complaint_id: str, agent: str, until: str, timeout_s: float = 30) -> dict:
    """Routing's view of the case, once its status is ``until`` (or the last seen, at the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        case = httpx.get(f"{routing_url}/api/cases/{complaint_id}", headers=bearer(settings, agent, "agent")).json()
        if case.get("status") == until or time.monotonic() > deadline:
            return case
        time.sleep(0.2)


MISSING = "part_of_order_missing"
ORDER = "114-5523190-0012345"  # 8 items in 2 UPS packages; the second (2 items) delayed by weather
UNDELIVERED = ["ELEC-HEADPHONES-BT x 1", "SPORT-YOGA-MAT x 1"]


def test_the_17_minute_call_the_agent_sees_each_package_cancels_the_undelivered_items_and_refunds_their_shipping(
    page: Page,
    another_page,
    intake_server,
    routing_server,
    routing_settings,
    carrier_server,
    notify_server,
    mailbox,
    telephony_url,
    on_duty,
):
    agent = on_duty([MISSING])
    email, phone = someone("sam")
    # Someone else got hold of the order number first (a forwarded email, a parcel label).
    dana = someone("dana")[0]
    earlier = httpx.post(
        f"{intake_server}/api/complaints",
        json={
            "category": MISSING,
            "description": "Two items of this order never came.",
            "order_id": ORDER,
            "complainant": {"display_name": "Dana Whitfield", "email": dana},
        },
    )
    assert earlier.status_code == 201 and earlier.json()["status"] == "open", earlier.text

    # From his order's page ("problem with this order?") to the complaint page, order filled in.
    page.goto(f"{intake_server}/?order_id={ORDER}")
    expect(page.get_by_label("Order number")).to_have_value(ORDER)
    complaint_id, status_url, clicked_at = file_and_call_on_the_page(
        page,
        intake_server,
        MISSING,
        "One-day shipping, 8 items ordered, only 6 arrived.",
        "Sam Okafor",
        email,
        phone,
        already_open=True,
    )
    assert complaint_id != earlier.json()["complaint_id"], "naming the same order never joins another's case"
    call = the_call(telephony_url, phone)
    measured("the 17-minute call", "click to dial", clicked_at, call["date_created"])
    assert f"<Client>{agent}</Client>" in call["twiml"]

    # The agent takes the call with the same order in front of them that the customer named, and
    # the carriers' answer per package: 6 of 8 delivered, 2 delayed by weather, a new estimate.
    desk = another_page()
    sign_in(desk, intake_server, "desk", agent)
    open_case_from_the_queue(desk, intake_server, complaint_id)
    mark_the_call_connected(desk, agent)
    expect(desk.locator("#customer")).to_contain_text(f"Order {ORDER}")
    expect(desk.locator("#filing")).to_contain_text(ORDER)
    # The agent sees who else reported the order, with a link to that case; Sam never does.
    related = desk.locator("#related")
    expect(related.get_by_role("heading")).to_have_text("Also reported by")
    # Among them (the carrier may have pushed an exception about the order: a proactive case).
    dana_reported = related.locator("li", has_text="Dana Whitfield")
    expect(dana_reported).to_contain_text(f"Dana Whitfield, {dana}, by web on")
    expect(dana_reported.get_by_role("link", name=earlier.json()["complaint_id"])).to_have_attribute(
        "href", f"/desk/cases/{earlier.json()['complaint_id']}"
    )
    screenshot(desk, "related-case")
    carrier = desk.locator("#carrier-panel")
    expect(carrier.locator("#carrier-summary")).to_contain_text(
        re.compile(r"^6 of 8 items delivered, 2 delayed: weather, new estimate "), timeout=30_000
    )
    delayed = carrier.locator('tr[data-tracking-number="1Z999AA10123456795"]')
    expect(delayed.locator("td")).to_have_text(
        ["UPS", "1Z999AA10123456795", "delayed", re.compile(r"^2 items"), re.compile(r"\d{4}"), "yes"]
    )
    expect(carrier.locator('tr[data-tracking-number="1Z999AA10123456784"] td').nth(2)).to_have_text("delivered")
    expect(desk.locator("#timeline")).to_contain_text(
        "UPS 1Z999AA10123456795: delayed (weather); last scan", timeout=20_000
    )
    # On hold, he asks once more (the local depot): the carriers again, the same answer.
    carrier.get_by_role("button", name="Re-check with the carriers").click()
    expect(carrier.locator(".form-message")).to_have_text("Done.")

    # He cancels the two undelivered items mid-shipment, refunds their shipping, recaps, resolves.
    request_an_action(desk, "cancel_items", ORDER, UNDELIVERED, amount="64.98")  # their price, refunded
    request_an_action(desk, "refund_shipping", ORDER, UNDELIVERED, amount="9.98")
    recap = resolve_and_wait_for_the_question(
        desk,
        mailbox,
        "the 17-minute call",
        complaint_id,
        email,
        recap="We cancelled the 2 items still on the way (headphones, yoga mat) and refunded their shipping, GBP 9.98.",
        next_steps="The refund lands on your card within 3 working days.",
    )
    expect(desk.locator("#routing-state")).to_contain_text("Resolved")
    screenshot(desk, "agent-case-story-2")

    # Downstream systems (orders, payments) get the order, the items and the amounts.
    actions = routing_events(complaint_id, "complaints.routing.ResolutionActionRequested.v1", 2)
    assert [(a.data["action"], a.data["order_id"], a.data["items"], a.data["amount"]) for a in actions] == [
        (
            "cancel_items",
            ORDER,
            [{"sku": "ELEC-HEADPHONES-BT", "quantity": 1}, {"sku": "SPORT-YOGA-MAT", "quantity": 1}],
            {"value": "64.98", "currency": "GBP"},
        ),
        (
            "refund_shipping",
            ORDER,
            [{"sku": "ELEC-HEADPHONES-BT", "quantity": 1}, {"sku": "SPORT-YOGA-MAT", "quantity": 1}],
            {"value": "9.98", "currency": "GBP"},
        ),
    ]

    # He has received the recap with the next steps, and answers on his own case page.
    assert "refunded their shipping, GBP 9.98" in recap["text"] and "within 3 working days" in recap["text"]
    page.goto(status_url)
    expect(page.locator("#outcomes")).to_contain_text("within 3 working days", timeout=20_000)
    expect(page.locator("#closure-state")).to_have_text(
        "We think we have solved it. Please tell us whether that is so.", timeout=20_000
    )
    page.get_by_role("button", name="Yes, it is closed").click()
    status_page_shows(page, "Closed")
    expect(page.locator("#closure-state")).to_have_text("You told us it is closed. Thank you.")
    assert "Dana" not in page.content() and earlier.json()["complaint_id"] not in page.content()
    assert routing_case(routing_server, routing_settings, complaint_id, agent, until="closed")["status"] == "closed"


LOCKED_SELLER, HER_EMAIL = "sel-48213", "maria.chen@willowandclay.example"  # locked in orders.json
HER_PHONE = "+447700900377"
SECURITY = "team-account-security"  # the team rules.json sends locked accounts to


@pytest.fixture
def security_team(routing_server, routing_settings):
    """The account-security team of rules.json (restricted: only its members take its calls)."""
    answer = httpx.post(
        f"{routing_server}/api/partner-teams",
        headers=bearer(routing_settings, "adm-e2e", "admin"),
        json={
            "team_id": SECURITY,
            "name": "Account security",
            "categories": ["account_locked"],
            "response_sla_minutes": 60,
            "restricted": True,
        },
    )
    assert answer.status_code == 201, answer.text
    return SECURITY


def test_the_locked_out_seller_files_by_one_time_code_reaches_security_only_is_not_nagged_and_is_escalated(
    page: Page,
    another_page,
    intake_server,
    intake_settings,
    routing_server,
    routing_settings,
    notify_server,
    notify_settings,
    mailbox,
    telephony_url,
    security_team,
    on_duty,
):
    # A generalist who could take anything about accounts, and the team's own agent: both free.
    generalist = on_duty(["account_locked", DRIVER])
    member = on_duty(["account_locked"], teams=[security_team])

    # She cannot log in: a one-time code goes to the email on file; she files with it and asks
    # for a call. Only the security team's own agent may call her back.
    complaint_id, status_url, clicked_at = file_as_the_locked_out_seller(page, intake_server, mailbox)
    call = the_call(telephony_url, HER_PHONE)
    measured("the locked-out seller", "click to dial", clicked_at, call["date_created"])
    assert f"<Client>{member}</Client>" in call["twiml"]

    # The case reaches the account-security team, and no one else.
    security = another_page()
    sign_in(security, intake_server, "partner", "sec-jin", team=SECURITY)
    card = security.locator(f'[data-complaint-id="{complaint_id}"]')
    expect(card).to_contain_text("a buyer's parcel is lost", timeout=30_000)  # what she wrote, no brief needed
    expect(card.locator(".filing")).to_contain_text(LOCKED_SELLER)
    expect(card.locator(".filing")).to_contain_text("verified contact")
    expect(card.locator(".routed-hint")).to_be_visible()  # worked by the team's agents on the desk
    expect(card.get_by_role("button", name="Acknowledge: we have read the brief")).to_be_hidden()
    other_team = httpx.get(
        f"{intake_server}/api/desk/cases/{complaint_id}",
        headers=bearer(intake_settings, "pat-depot", "partner", team="team-logistics-uk-south"),
    )
    assert other_team.status_code == 404, "another team's partner must not read it"
    case = routing_case(routing_server, routing_settings, complaint_id, generalist, until="open")
    assert case["routed_team_id"] == SECURITY, case
    held = httpx.get(
        f"{routing_server}/api/agents/{generalist}/queue", headers=bearer(routing_settings, generalist, "agent")
    )
    assert held.status_code == 200 and complaint_id not in held.text, held.text
    screenshot(security, "security-team-view")

    # The seller-account system asks for its daily "log in to fix this" twelve times: she cannot
    # act on it, so none is sent, and a human is asked, once.
    caller = {"Authorization": f"Bearer {notify_settings.inbound_webhook_secret}"}
    verdicts = []
    for day in range(1, 13):
        answer = httpx.post(
            f"{notify_server}/api/notifications",
            headers=caller,
            json={
                "request_id": f"login-reminder-{LOCKED_SELLER}-{complaint_id}-day-{day}",
                "template": "seller_login_reminder",
                "recipient": LOCKED_SELLER,
                "address": HER_EMAIL,
                "display_name": "Maria Chen",
                "context": {"login_url": "https://sellers.example.com/login"},
            },
        )
        assert answer.status_code == 202, answer.text
        verdicts.append(answer.json()["verdict"])
    assert verdicts == ["suppressed"] * 12
    boss = bearer(routing_settings, "sup-maya", "supervisor")
    person = wait_until(
        lambda: next(
            (
                c
                for c in httpx.get(f"{routing_server}/api/supervisor/queue", headers=boss).json()["cases"]
                if c.get("recipient") == LOCKED_SELLER
            ),
            None,
        )
    )
    assert [e["reason"] for e in person["escalations"]] == ["notification_blocked"]
    receipt = f"We have your complaint: reference {short_reference(complaint_id)}"
    mail_with(mailbox, HER_EMAIL, receipt)
    assert [m["subject"] for m in mailbox.messages(HER_EMAIL)] == ["Your one-time code", receipt]

    # She writes again and again about the same case with nothing changing: a human takes over.
    for attempt in range(1, 5):
        write_to_the_case(
            intake_server,
            intake_settings,
            complaint_id,
            f"Attempt {attempt}: still locked out, and my buyer is still waiting.",
        )
    escalated = routing_events(complaint_id, "complaints.routing.Escalated.v1", 1, timeout_s=60)[0]
    assert escalated.data["reason"] == "repeated_contacts"
    on_queue = wait_until(
        lambda: next(
            (
                c
                for c in httpx.get(f"{routing_server}/api/supervisor/queue", headers=boss).json()["cases"]
                if c.get("complaint_id") == complaint_id
            ),
            None,
        )
    )
    assert "repeated_contacts" in [e["reason"] for e in on_queue["escalations"]]
    page.goto(status_url)
    expect(page.locator("#timeline")).to_contain_text("A supervisor is now looking at your case", timeout=30_000)

    # The security agent who called her resolves it; she is asked whether it is closed.
    desk = another_page()
    sign_in(desk, intake_server, "desk", member)
    open_case_from_the_queue(desk, intake_server, complaint_id)
    expect(desk.locator("#timeline")).to_contain_text("Escalated (repeated_contacts)", timeout=20_000)
    resolve_and_wait_for_the_question(
        desk,
        mailbox,
        "the locked-out seller",
        complaint_id,
        HER_EMAIL,
        recap="We checked the card with you and lifted the lock; the buyer's details are visible again.",
        next_steps="Log in again; your buyer's lost parcel is with seller support.",
    )


def file_as_the_locked_out_seller(page: Page, intake_url: str, mailbox) -> tuple[str, str, datetime]:
    """On the complaint page's locked-out path: a code to the email on file, read in her inbox,
    then the complaint filed with it and "Call me now". Returns the complaint id, her status
    page's URL and the moment of the click."""
    page.goto(intake_url)
    page.get_by_role("link", name="Locked out of your account? Verify with a one-time code instead").click()
    page.get_by_label("Your seller account id").fill(LOCKED_SELLER)
    page.get_by_label("By email, to the address on file").check()
    page.get_by_role("button", name="Send me a code").click()
    code = re.search(r"\b(\d{6})\b", mail_with(mailbox, HER_EMAIL, "Your one-time code")["text"]).group(1)
    page.get_by_label("The 6-digit code").fill(code)
    page.get_by_role("button", name="Verify").click()
    expect(page.get_by_role("status")).to_contain_text(
        f"Verified by a one-time code for seller account {LOCKED_SELLER}"
    )
    page.get_by_role("radio", name=CATEGORY_LABELS["account_locked"]).check()
    page.get_by_label("What happened?").fill(
        "Locked out for 12 days on a fraud suspicion; a buyer's parcel is lost and I cannot see their details."
    )
    page.get_by_label("Phone number").fill(HER_PHONE)
    clicked_at = datetime.now(UTC)
    page.get_by_role("button", name="Call me now").click()
    page.wait_for_url(re.compile(r"/complaints/[^/?]+\?token="))
    return page.url.split("/complaints/")[1].split("?")[0], page.url, clicked_at


def write_to_the_case(intake_url: str, settings, complaint_id: str, text: str) -> None:
    """An email to the case's reply address, as the mail provider's inbound webhook delivers it."""
    token = auth.reply_token(complaint_id, settings.signing_key)
    answer = httpx.post(
        f"{intake_url}/api/inbound/email",
        headers={"Authorization": f"Bearer {settings.inbound_webhook_secret}"},
        content=(
            f"From: Maria Chen <{HER_EMAIL}>\nTo: case+{token}@reply.shop.example\nSubject: Re: my account\n"
            f"Message-ID: <m-{uuid.uuid4().hex}@willowandclay.example>\n\n{text}\n"
        ).encode(),
    )
    assert answer.json() == {"status": "message", "complaint_id": complaint_id}, answer.text


def wait_until(found, timeout_s: float = 30):
    deadline = time.monotonic() + timeout_s
    while (value := found()) is None:
        assert time.monotonic() < deadline, f"not within {timeout_s:.0f} s"
        time.sleep(0.2)
    return value
