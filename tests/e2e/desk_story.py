"""The steps the desk and partner-view tests share: people on the roster, a filed complaint,
signing in through the pages, and what routing did, read back from its topic and its store."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
from confluent_kafka import Consumer
from playwright.sync_api import Page, expect
from pymongo import MongoClient

from contracts import TOPICS
from contracts.envelope import Envelope, from_kafka
from services.kernel import auth
from tests.e2e.conftest import KAFKA

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".cache" / "screenshots"


def bearer(settings, sub: str, role: str, ttl: timedelta = timedelta(minutes=30), **claims: str) -> dict:
    return {"Authorization": f"Bearer {auth.sign({'sub': sub, 'role': role, **claims}, settings.signing_key, ttl)}"}


def an_agent_on_duty(routing_url: str, settings, skills: list[str]) -> str:
    """A new agent with these skills, available: the only fitting agent of the test, so every
    complaint it files reaches them."""
    agent_id = f"agt-{uuid.uuid4().hex[:8]}"
    boss = bearer(settings, "sup-e2e", "supervisor")
    answer = httpx.post(f"{routing_url}/api/agents", headers=boss, json={
        "agent_id": agent_id, "name": f"Agent {agent_id}", "skills": skills, "languages": ["en-GB"],
        "capacity": 5})
    assert answer.status_code == 201, answer.text
    answer = httpx.put(f"{routing_url}/api/agents/{agent_id}/availability", headers=boss,
                       json={"availability": "available"})
    assert answer.status_code == 200, answer.text
    return agent_id


def off_duty(routing_url: str, settings, agent_id: str) -> None:
    httpx.put(f"{routing_url}/api/agents/{agent_id}/availability", json={"availability": "offline"},
              headers=bearer(settings, "sup-e2e", "supervisor"))


def a_partner_team(routing_url: str, settings, categories: list[str], sla_minutes: int = 240) -> str:
    team_id = f"team-logistics-{uuid.uuid4().hex[:6]}"
    answer = httpx.post(f"{routing_url}/api/partner-teams", headers=bearer(settings, "sup-e2e", "supervisor"), json={
        "team_id": team_id, "name": "Regional logistics partner", "categories": categories,
        "response_sla_minutes": sla_minutes})
    assert answer.status_code == 201, answer.text
    return team_id


def a_filed_complaint(intake_url: str, settings, category: str, description: str, **fields) -> str:
    """Filed by a logged-in customer (so an order may be named without the order system)."""
    customer = f"cust-{uuid.uuid4().hex[:6]}"
    answer = httpx.post(f"{intake_url}/api/complaints", headers=bearer(settings, customer, "customer"), json={
        "category": category, "description": description, "complainant": {
            "display_name": "Sam Okafor", "email": f"{customer}@example.com", "phone": "+447700900123"},
        **fields})
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
    consumer = Consumer({"bootstrap.servers": KAFKA, "group.id": f"e2e-{uuid.uuid4().hex}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([TOPICS["routing"]])
    found, deadline = [], time.monotonic() + timeout_s
    try:
        while len(found) < count and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error() or message.key() != complaint_id.encode():
                continue
            envelope = from_kafka(message.value(), message.headers())
            if envelope.type == ce_type:
                found.append(envelope)
    finally:
        consumer.close()
    assert len(found) >= count, f"{len(found)} {ce_type} about {complaint_id} within {timeout_s:.0f} s"
    return found


def logged_types(settings, complaint_id: str) -> list[str]:
    """The event types routing appended to the case's stream, in order (its store, not the topic)."""
    with MongoClient(settings.mongodb_url) as client:
        commits = client[settings.database_name]["commits"].find(
            {"stream_id": f"case-{complaint_id}"}).sort("version", 1)
        return [event["type"].split(".")[-2] for commit in commits for event in commit["events"]]


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
