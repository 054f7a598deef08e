"""The steps the desk and partner-view tests share: people on the roster, a filed complaint,
signing in through the pages, and what routing did, read back from its topic and its store."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect
from pymongo import MongoClient

from contracts import TOPICS
from contracts.envelope import Envelope
from services.kernel import auth
from tests.e2e.conftest import KAFKA
from tests.integration.support import events_on

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".cache" / "screenshots"


def bearer(settings, sub: str, role: str, ttl: timedelta = timedelta(minutes=30), **claims: str) -> dict:
    return {"Authorization": f"Bearer {auth.sign({'sub': sub, 'role': role, **claims}, settings.signing_key, ttl)}"}


def an_agent_on_duty(routing_url: str, settings, skills: list[str], teams: list[str] = ()) -> str:
    """A new agent with these skills (and teams), available: the only fitting agent of the test,
    so every complaint it files reaches them."""
    agent_id = f"agt-{uuid.uuid4().hex[:8]}"
    boss = bearer(settings, "adm-e2e", "admin")  # an admin: the teams may be restricted ones
    answer = httpx.post(
        f"{routing_url}/api/agents",
        headers=boss,
        json={
            "agent_id": agent_id,
            "name": f"Agent {agent_id}",
            "skills": skills,
            "languages": ["en-GB"],
            "capacity": 5,
            "teams": list(teams),
        },
    )
    assert answer.status_code == 201, answer.text
    answer = httpx.put(
        f"{routing_url}/api/agents/{agent_id}/availability", headers=boss, json={"availability": "available"}
    )
    assert answer.status_code == 200, answer.text
    return agent_id


def off_duty(routing_url: str, settings, agent_id: str) -> None:
    httpx.put(
        f"{routing_url}/api/agents/{agent_id}/availability",
        json={"availability": "offline"},
        headers=bearer(settings, "sup-e2e", "supervisor"),
    )


def a_partner_team(routing_url: str, settings, categories: list[str], sla_minutes: int = 240) -> str:
    team_id = f"team-logistics-{uuid.uuid4().hex[:6]}"
    answer = httpx.post(
        f"{routing_url}/api/partner-teams",
        headers=bearer(settings, "sup-e2e", "supervisor"),
        json={
            "team_id": team_id,
            "name": "Regional logistics partner",
            "categories": categories,
            "response_sla_minutes": sla_minutes,
        },
    )
    assert answer.status_code == 201, answer.text
    return team_id


def a_filed_complaint(intake_url: str, settings, category: str, description: str, **fields) -> str:
    """Filed by a logged-in customer (so an order may be named without the order system)."""
    customer = f"cust-{uuid.uuid4().hex[:6]}"
    answer = httpx.post(
        f"{intake_url}/api/complaints",
        headers=bearer(settings, customer, "customer"),
        json={
            "category": category,
            "description": description,
            "complainant": {"display_name": "Sam Okafor", "email": f"{customer}@example.com", "phone": "+447700900123"},
            **fields,
        },
    )
    assert answer.status_code == 201, answer.text
    return answer.json()["complaint_id"]


def sign_in(page: Page, base_url: str, audience: str, sub: str, team: str | None = None) -> None:
    """The development sign-in of the page (the local stack's): who, and for a partner the team."""
    if "/sign-in" not in page.url:
        page.goto(f"{base_url}/{audience}/sign-in")
    if team:
        page.get_by_label("Team").fill(team)
    page.get_by_label("Your agent id" if audience == "desk" else "Your partner user id").fill(sub)
    page.get_by_role("button", name="Sign in for development").click()
    expect(page.locator("#who")).to_contain_text(sub)


def paste_token(page: Page, base_url: str, audience: str, token: str) -> None:
    page.goto(f"{base_url}/{audience}/sign-in")
    page.get_by_label("Your access token").fill(token)
    page.get_by_role("button", name="Sign in", exact=True).click()


def routing_events(complaint_id: str, ce_type: str, count: int, timeout_s: float = 30) -> list[Envelope]:
    """The first ``count`` events of ``ce_type`` about ``complaint_id`` on routing's topic."""
    return events_on(KAFKA, TOPICS["routing"], complaint_id, count, timeout_s, ce_type=ce_type)


def logged_types(settings, complaint_id: str) -> list[str]:
    """The event types routing appended to the case's stream, in order (its store, not the topic)."""
    with MongoClient(settings.mongodb_url) as client:
        commits = (
            client[settings.database_name]["commits"].find({"stream_id": f"case-{complaint_id}"}).sort("version", 1)
        )
        return [event["type"].split(".")[-2] for commit in commits for event in commit["events"]]


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- the desk's happy path, step by step (the stories' tests read as these steps) -----------------


def queue_link(page: Page, queue: str, complaint_id: str):
    """The queue's link to a case (its words name the person, the category and the age, not the id)."""
    return page.locator(f'{queue} li[data-complaint-id="{complaint_id}"] a.case-link')


def open_case_from_the_queue(page: Page, intake_url: str, complaint_id: str) -> None:
    link = queue_link(page, "#my-queue", complaint_id)
    expect(link).to_be_visible(timeout=30_000)
    link.click()
    page.wait_for_url(f"{intake_url}/desk/cases/{complaint_id}")
    expect(page.locator("#timeline")).to_contain_text("Assigned to", timeout=20_000)


def transfer_with_a_brief(page: Page, team: str, asks: str, tried: str, promised: str) -> None:
    transfer = page.locator("#transfer")
    transfer.get_by_label("Partner team").select_option(team)
    transfer.get_by_label("What the customer asks").fill(asks)
    transfer.get_by_label("What was already tried or checked").fill(tried)
    transfer.get_by_label("What the customer was promised").fill(promised)
    transfer.get_by_role("button", name="Transfer with this brief").click()
    expect(page.locator("#routing-state")).to_contain_text("With a partner team")


def partner_records_an_outcome(partner_page: Page, complaint_id: str, for_customer: str, internal: str) -> None:
    """The partner, signed in on their view: the case's card, acknowledged, then its outcome."""
    card = partner_page.locator(f'[data-complaint-id="{complaint_id}"]')
    expect(card).to_be_visible(timeout=20_000)
    card.get_by_role("button", name="Acknowledge: we have read the brief").click()
    expect(card.locator(".status")).to_have_text("Acknowledged", timeout=20_000)
    card.get_by_label("Outcome for the customer").fill(for_customer)
    card.get_by_label("Internal note (staff only)").fill(internal)
    card.get_by_role("button", name="Record the outcome").click()
    expect(card.locator(".status")).to_have_text("Outcome recorded", timeout=20_000)


def request_an_action(page: Page, action: str, order_id: str, items: list[str], amount: str) -> None:
    form = page.locator("#action")
    form.get_by_label("Action").select_option(action)
    form.get_by_label("Order").fill(order_id)
    form.get_by_label("Items").fill("\n".join(items))
    form.get_by_label("Amount").fill(amount)
    form.get_by_role("button", name="Request this action").click()
    try:
        expect(form.locator(".form-message")).to_have_text("Done.")
    except AssertionError as refused:  # say which field the API named, and what was sent
        slots = [t for t in form.locator("[data-error-for]").all_inner_texts() if t.strip()]
        sent = {
            name: form.locator(f'[name="{name}"]').input_value()
            for name in ("action", "order_id", "items", "amount.value")
        }
        raise AssertionError(f"{action} refused: {slots} (the form held {sent})") from refused


def resolve(page: Page, recap: str, next_steps: str) -> None:
    """Fill the resolution and press the button (the caller takes the time of the click)."""
    form = page.locator("#resolve")
    form.get_by_label("Recap for the customer").fill(recap)
    form.get_by_label("Next steps").fill(next_steps)
    form.get_by_role("button", name="Resolve the case").click()
