"""Fixtures for browser tests: Debian's Chromium driven by Playwright, and the real intake app.

The app runs in a uvicorn thread against the real broker and store (its own database per test
session); the browser is launched once per session, each test gets a fresh page.
"""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
from pymongo import MongoClient

from services.intake.app import create_app
from services.intake.settings import IntakeSettings

CHROMIUM = Path("/usr/bin/chromium")
# `playwright install` cannot download browsers here: INFRA.md's Debian Chromium and its flags.
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:29092")
MONGO = os.environ.get("MONGODB_URL", "mongodb://127.0.0.1:29017/")


# Package scope, not session: Playwright's sync API runs an event loop in this thread while it is
# open, and the async tests that follow (pytest-asyncio) cannot start theirs inside it.
@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is absent: install Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # launch() gives every session a fresh temporary user-data-dir, removed on close.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-GB", viewport={"width": 1100, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(10_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def intake_settings() -> IntakeSettings:
    return IntakeSettings(kafka_bootstrap_servers=KAFKA, mongodb_url=MONGO,
                          mongodb_database=f"e2e_intake_{uuid.uuid4().hex[:10]}",
                          outbox_poll_interval_s=0.2, lease_ttl_s=3.0, retry_backoff_max_s=0.5)


@pytest.fixture(scope="session")
def intake_server(intake_settings: IntakeSettings) -> Iterator[str]:
    """The real intake app (pages and API) on a free 127.0.0.1 port; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    base_url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(intake_settings), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name="intake-uvicorn")
    thread.start()
    try:
        wait_until_live(base_url, thread, intake_settings.startup_timeout_s + 20)
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        with MongoClient(intake_settings.mongodb_url) as client:
            client.drop_database(intake_settings.database_name)


def wait_until_live(base_url: str, thread: threading.Thread, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not thread.is_alive():
            pytest.fail("the intake app stopped during start-up (is the broker/store up? see its log)")
        try:
            if httpx.get(f"{base_url}/health/live", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the intake app did not answer {base_url}/health/live within {timeout_s:.0f} s")
