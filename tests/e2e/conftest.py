"""Fixtures for browser tests: Debian's Chromium driven by Playwright, and the real intake,
routing and notify apps with the simulators of the outside world (order system, telephony, a real
SMTP server).

Each app runs in a uvicorn thread against the real broker and store (its own database per test
session), as its own Kafka user on a stack with users (the default of ``make test``: the stories
pass under the ACLs a cluster applies); routing and notify start only for the tests that ask for
them. The browser is launched once per session, each test gets a fresh page.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import uvicorn
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pymongo import MongoClient

from contracts import TOPICS
from services.carrier.app import create_app as create_carrier_app
from services.carrier.settings import CarrierSettings
from services.intake.app import create_app
from services.intake.settings import IntakeSettings
from services.kernel.clock import OffsetClock
from services.kernel.telemetry import setup_tracing
from services.notify.app import create_app as create_notify_app
from services.notify.settings import NotifySettings
from services.routing.app import create_app as create_routing_app
from services.routing.settings import RoutingSettings
from tests.integration.simulators import (  # noqa: F401
    carrier_simulator_url,
    mailbox,
    order_system_url,
    telephony_url,  # (session fixtures)
)
from tests.integration.support import service_credentials

CHROMIUM = Path("/usr/bin/chromium")
# `playwright install` cannot download browsers here: INFRA.md's Debian Chromium and its flags.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
MONGO = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:29017/")


def pytest_collection_modifyitems(config, items) -> None:
    """The dashboard's test puts a generated week of traffic on the shared topics: it runs first
    in this package, before the package's services start (each reads the topics from their end
    when it starts), so none of them takes that week as work — routing would give ~80 complaints
    to the agents of the stories that follow."""
    here = [i for i in items if i.path.parent.name == "e2e"]
    dashboard = [i for i in here if i.path.name == "test_metrics_dashboard.py"]
    if dashboard and here:
        at = items.index(here[0])
        for item in dashboard:
            items.remove(item)
        items[at:at] = dashboard


@pytest.fixture(scope="session")
def spans() -> InMemorySpanExporter:
    """Every span the apps of this process finish, as an exporter would receive them (the apps
    run in this process: one tracer provider, as each service has its own in production)."""
    exporter = InMemorySpanExporter()
    setup_tracing("e2e", SimpleSpanProcessor(exporter))
    return exporter


# Package scope, not session: Playwright's sync API runs an event loop in this thread while it is
# open, and the async tests that follow (pytest-asyncio) cannot start theirs inside it.
@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives every session a fresh temporary user-data-dir, removed on close.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


def pytest_terminal_summary(terminalreporter) -> None:
    """The stories' latencies at the end of every run (a passing test's prints are captured)."""
    from tests.e2e.customer_story import LATENCIES

    if LATENCIES:
        terminalreporter.section("the stories' latencies (measured, not asserted)")
        for story, what, seconds in LATENCIES:
            terminalreporter.write_line(f"{story:<24} {what:<18} {seconds * 1000:7.0f} ms")


@pytest.fixture(scope="session")
def sockets() -> Iterator[dict[str, socket.socket]]:
    """A free 127.0.0.1 port per app, bound first: each app's settings name the other's URL."""
    bound = {name: socket.socket() for name in ("intake", "routing", "carrier", "notify")}
    for sock in bound.values():
        sock.bind(("127.0.0.1", 0))
    yield bound
    for sock in bound.values():
        sock.close()


def url_of(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="session")
def intake_settings(sockets, order_system_url: str) -> IntakeSettings:  # noqa: F811
    """Intake in its own group and database, like the others: under the default group ("intake")
    another run of these tests on the same broker took half of routing's partitions, and with
    them the events about this run's cases."""
    name = f"intake-e2e-{uuid.uuid4().hex[:8]}"
    return IntakeSettings(
        kafka_bootstrap_servers=KAFKA,
        mongodb_url=MONGO,
        service_name=name,
        **service_credentials("intake"),
        mongodb_database=f"e2e_{name.replace('-', '_')}",
        outbox_poll_interval_s=0.2,
        lease_ttl_s=3.0,
        retry_backoff_max_s=0.5,
        routing_public_url=url_of(sockets["routing"]),
        order_system_url=order_system_url,
        carrier_public_url=url_of(sockets["carrier"]),
        dev_sign_in=True,
    )


# Package scope, like routing's: no app thread of these tests runs on in this process (holding the
# GIL, consuming every topic) while tests/integration measure races and timings.
@pytest.fixture(scope="package")
def intake_server(intake_settings: IntakeSettings, sockets) -> Iterator[str]:
    """The real intake app (pages and API) on its port; yields its base URL. It reads the other
    services' topics from their end: earlier tests' events (a carrier's exception) are not its work."""
    read_from_the_end(intake_settings.consumer_group, TOPICS["routing"], TOPICS["carrier"], TOPICS["notify"])
    with serving(create_app(intake_settings), sockets["intake"], intake_settings, "intake") as base_url:
        yield base_url


@pytest.fixture(scope="session")
def routing_settings(sockets, order_system_url: str) -> RoutingSettings:  # noqa: F811
    """Routing in its own group and database, allowing the intake pages' origin (CORS); its timer
    ticker idle (an SLA of hours never falls due in a test)."""
    name = f"routing-e2e-{uuid.uuid4().hex[:8]}"
    return RoutingSettings(
        kafka_bootstrap_servers=KAFKA,
        mongodb_url=MONGO,
        service_name=name,
        **service_credentials("routing"),
        mongodb_database=f"e2e_{name.replace('-', '_')}",
        outbox_poll_interval_s=0.2,
        lease_ttl_s=3.0,
        retry_backoff_max_s=0.5,
        timer_interval_s=3600,
        cors_origins=url_of(sockets["intake"]),
        order_system_url=order_system_url,
    )


# Package scope: stopped before tests/integration, whose tests read routing's topic and must not
# find this instance's events about their complaints there.
@pytest.fixture(scope="package")
def routing_server(routing_settings: RoutingSettings, sockets, intake_server, routing_clock) -> Iterator[str]:
    """The real routing app (agent and partner API) on its port; yields its base URL. It starts
    reading intake's topic at its end: earlier tests' complaints are not this session's work."""
    read_from_the_end(routing_settings.consumer_group, TOPICS["intake"], TOPICS["notify"])
    app = create_routing_app(routing_settings)
    app.state.clock = routing_clock
    with serving(app, sockets["routing"], routing_settings, "routing") as url:
        yield url


@pytest.fixture(scope="session")
def routing_clock() -> OffsetClock:
    """Routing's clock for tokens: a test lets a session expire by moving it on, not by waiting."""
    return OffsetClock()


# Package scope, like routing's: its events about this package's complaints stay out of tests/integration.
@pytest.fixture(scope="package")
def carrier_server(sockets, intake_server, order_system_url, carrier_simulator_url) -> Iterator[str]:
    """The real carrier app (shipments, re-checks) on its port, in its own group and database,
    asking the order and carrier simulators and allowing the intake pages' origin (CORS); yields
    its base URL. Like routing, it reads intake's and routing's topics from their end."""
    name = f"carrier-e2e-{uuid.uuid4().hex[:8]}"
    carriers = {f"{carrier}_url": carrier_simulator_url for carrier in ("fedex", "ups", "usps", "auspost")}
    settings = CarrierSettings(
        kafka_bootstrap_servers=KAFKA,
        mongodb_url=MONGO,
        service_name=name,
        **service_credentials("carrier"),
        mongodb_database=f"e2e_{name.replace('-', '_')}",
        outbox_poll_interval_s=0.2,
        lease_ttl_s=3.0,
        retry_backoff_max_s=0.5,
        recheck_interval_s=0,
        order_system_url=order_system_url,
        cors_origins=url_of(sockets["intake"]),
        **carriers,
    )
    read_from_the_end(settings.consumer_group, TOPICS["intake"], TOPICS["routing"])
    with serving(create_carrier_app(settings), sockets["carrier"], settings, "carrier") as url:
        yield url


@pytest.fixture(scope="session")
def notify_settings(sockets, mailbox, telephony_url, order_system_url) -> NotifySettings:  # noqa: F811
    """Notify in its own group and database, sending through the mailbox simulator's real SMTP
    server, dialling through the telephony simulator; its links point at its own port."""
    name = f"notify-e2e-{uuid.uuid4().hex[:8]}"
    return NotifySettings(
        kafka_bootstrap_servers=KAFKA,
        mongodb_url=MONGO,
        service_name=name,
        **service_credentials("notify"),
        mongodb_database=f"e2e_{name.replace('-', '_')}",
        outbox_poll_interval_s=0.2,
        lease_ttl_s=3.0,
        retry_backoff_max_s=0.5,
        smtp_port=mailbox.smtp_port,
        telephony_url=telephony_url,
        order_system_url=order_system_url,
        public_url=url_of(sockets["notify"]),
        send_backoff_s=0.05,
        tick_interval_s=1.0,
        case_page_url=url_of(sockets["intake"]),
    )


@pytest.fixture(scope="package")
def notify_server(notify_settings: NotifySettings, sockets, routing_server) -> Iterator[str]:
    """The real notify app (emails, calls, closure links) on its port; yields its base URL. Like
    routing, it starts at the end of the topics it reads: earlier tests' cases are not its work."""
    read_from_the_end(notify_settings.consumer_group, TOPICS["intake"], TOPICS["routing"])
    with serving(create_notify_app(notify_settings), sockets["notify"], notify_settings, "notify") as url:
        yield url


def read_from_the_end(group: str, *topics: str) -> None:
    """Commit ``group``'s offsets at the topics' ends: the shared topics hold earlier tests' cases,
    which are not this app's work."""
    from tests.integration.support import skip_history

    for topic in topics:
        skip_history(KAFKA, group, topic)


@contextmanager
def serving(app, sock: socket.socket, settings, name: str) -> Iterator[str]:
    base_url = url_of(sock)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"{name}-uvicorn")
    thread.start()
    try:
        wait_until_live(base_url, thread, settings.startup_timeout_s + 20)
        at_start = collections_of(settings)
        yield base_url
        # FerretDB hangs a database that must create a collection under load (ADR 0032): every
        # collection the service wrote while the stories ran must have existed when it started.
        late = collections_of(settings) - at_start
        assert not late, f"{name} created {sorted(late)} under traffic: name them at start (kernel/indexes.py)"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        with MongoClient(settings.mongodb_url) as client:
            client.drop_database(settings.database_name)


def collections_of(settings) -> set[str]:
    with MongoClient(settings.mongodb_url) as client:
        return set(client[settings.database_name].list_collection_names())


def wait_until_live(base_url: str, thread: threading.Thread, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not thread.is_alive():
            pytest.fail(f"the app at {base_url} stopped during start-up (is the broker/store up? see its log)")
        try:
            if httpx.get(f"{base_url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the app did not answer {base_url}/health/live within {timeout_s:.0f} s")
