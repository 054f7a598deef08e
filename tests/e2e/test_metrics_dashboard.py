"""The supervisors' dashboard in Chromium: a generated week of traffic (tools/demo_week.py) on the
real topics, the real intake app computing the figures, and the page drawing them with the
vendored Chart.js, passing axe-core's WCAG 2.1 AA rules, photographed into .cache/screenshots/."""

from __future__ import annotations

import asyncio
import socket
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from playwright.sync_api import Page, expect
from pymongo import MongoClient

from contracts import TOPICS
from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from services.kernel import auth
from tests.e2e.accessibility import a_person_can_use
from tests.e2e.conftest import KAFKA, MONGO, read_from_the_end, serving
from tests.e2e.desk_story import paste_token
from tools.demo_week import append_to_intake, publish, week_of_traffic
from tools.vendor_charts import vendored


@pytest.fixture(scope="module")
def dashboard_intake(order_system_url):  # noqa: F811
    """An intake app of its own (group and database), reading the topics from their end."""
    vendored()  # Chart.js into the static assets (npm ci once)
    name = f"intake-metrics-{uuid.uuid4().hex[:8]}"
    settings = IntakeSettings(
        kafka_bootstrap_servers=KAFKA,
        mongodb_url=MONGO,
        service_name=name,
        mongodb_database=f"e2e_{name.replace('-', '_')}",
        outbox_poll_interval_s=0.2,
        lease_ttl_s=3.0,
        retry_backoff_max_s=0.5,
        order_system_url=order_system_url,
        metrics_days=9,
    )
    read_from_the_end(settings.consumer_group, *TOPICS.values())
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        with serving(create_app(settings), sock, settings, "intake-metrics") as url:
            yield url, settings
    finally:
        sock.close()


def applied(settings: IntakeSettings) -> int:
    with MongoClient(settings.mongodb_url) as client:
        docs = client[settings.database_name]["experience_facts"].find({}, {"applied": 1})
        return sum(len(d["applied"]) for d in docs)


def test_a_supervisor_sees_a_week_of_figures_charted_and_the_cases_that_breach(page: Page, dashboard_intake):
    url, settings = dashboard_intake
    traffic = week_of_traffic(datetime.now(UTC), seed=11, per_day=10)
    with ThreadPoolExecutor(1) as thread:  # Playwright's sync API holds this thread's event loop
        thread.submit(asyncio.run, append_to_intake(settings.mongodb_url, settings.database_name, traffic)).result()
    publish(KAFKA, traffic)
    deadline = datetime.now(UTC) + timedelta(seconds=240)
    while applied(settings) < len(traffic):  # intake consumed and projected every event
        assert datetime.now(UTC) < deadline, f"{applied(settings)} of {len(traffic)} events applied"
        page.wait_for_timeout(250)

    paste_token(
        page,
        url,
        "desk",
        auth.sign({"sub": "sup-maya", "role": "supervisor"}, settings.signing_key, timedelta(hours=1)),
    )
    page.wait_for_url(f"{url}/desk/")  # signed in: the desk's first page
    page.get_by_role("link", name="Customer experience").click()
    expect(page.locator("body[data-loaded=true]")).to_be_visible()
    expect(page.locator("#headline")).to_contain_text("Closed, confirmed by the complainant")
    # eight days (the week and today) on the line charts, every team on the bars
    assert page.evaluate("Chart.getChart('chart-waits').data.labels.length") >= 8
    assert set(page.evaluate("Chart.getChart('chart-teams').data.labels")) == {
        "team-logistics-uk-south",
        "team-seller-support",
        "team-account-security",
    }
    expect(page.locator("#breaches tbody tr").first).to_be_visible()
    assert page.locator("#table-teams tbody tr").count() == 3  # the numbers, not only the bars
    a_person_can_use(page, "desk-metrics")


def test_an_agent_is_told_the_figures_are_for_supervisors(page: Page, dashboard_intake):
    url, settings = dashboard_intake
    paste_token(
        page, url, "desk", auth.sign({"sub": "agt-ana", "role": "agent"}, settings.signing_key, timedelta(hours=1))
    )
    page.wait_for_url(f"{url}/desk/")
    expect(page.get_by_role("link", name="Customer experience")).to_be_hidden()  # not offered to agents
    page.goto(f"{url}/desk/metrics")  # and if they come anyway, the page says whose it is
    expect(page.locator("#page-message")).to_contain_text("for supervisors")
