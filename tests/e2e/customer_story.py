"""The complainant's side of the stories: the complaint page, their phone (the telephony
simulator), their inbox (the mailbox simulator's real SMTP server), and the two latencies the
stories are about, measured from the click and printed (never asserted)."""

from __future__ import annotations

import re
import time
import uuid
from datetime import UTC, datetime

import httpx
from playwright.sync_api import Page, expect

from contracts.intake import CATEGORY_LABELS
from tests.e2e.accessibility import a_person_can_use


def someone(name: str) -> tuple[str, str]:
    """An email address no other test uses, and a UK drama phone number."""
    tag = uuid.uuid4().hex[:8]
    return f"{name}.{tag}@example.com", f"+4477009{int(tag, 16) % 100000:05d}"


def file_and_call_on_the_page(
    page: Page,
    intake_url: str,
    category: str,
    description: str,
    name: str,
    email: str,
    phone: str,
    already_open: bool = False,
) -> tuple[str, str, datetime]:
    """Fill the complaint page and push "Call me now"; returns the complaint id, the status page's
    URL (with its access token) and the wall-clock moment of the click."""
    if not already_open:
        page.goto(f"{intake_url}/")
    page.get_by_role("radio", name=CATEGORY_LABELS[category], exact=True).check()
    page.get_by_label("What happened?").fill(description)
    page.get_by_label("Your name").fill(name)
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Phone number").fill(phone)
    clicked_at = datetime.now(UTC)
    page.get_by_role("button", name="Call me now").click()
    page.wait_for_url(re.compile(r"/complaints/[^/?]+\?token="))
    complaint_id = page.url.split("/complaints/")[1].split("?")[0]
    return complaint_id, page.url, clicked_at


def the_call(telephony_url: str, phone: str, timeout_s: float = 30) -> dict:
    """The call notify asked the telephony provider to place to ``phone`` (it bridges an agent)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        calls = [c for c in httpx.get(f"{telephony_url}/received", timeout=5).json()["calls"] if c["to"] == phone]
        if calls:
            return calls[0]
        time.sleep(0.05)
    raise AssertionError(f"no call to {phone} within {timeout_s:.0f} s")


def mail_with(mailbox, to: str, subject: str, timeout_s: float = 30) -> dict:
    """The first message to ``to`` whose subject contains ``subject``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = [m for m in mailbox.messages(to) if subject in m["subject"]]
        if found:
            return found[0]
        time.sleep(0.05)
    seen = [m["subject"] for m in mailbox.messages(to)]
    raise AssertionError(f"no mail to {to} with {subject!r} within {timeout_s:.0f} s; it has {seen}")


def link_after(text: str, label: str) -> str:
    """The URL printed after ``label`` in an email's text part."""
    return re.search(rf"{re.escape(label)}\s+(\S+)", text).group(1)


def measured(story: str, what: str, start: datetime, end: str | datetime) -> float:
    """Print one latency of a story (wall clocks of one machine: the test's click, the simulator's
    receipt); the figure is reported, not asserted."""
    end_at = datetime.fromisoformat(end) if isinstance(end, str) else end
    seconds = (end_at - start).total_seconds()
    print(f"\n[{story}] {what}: {seconds * 1000:.0f} ms", flush=True)
    LATENCIES.append((story, what, seconds))
    return seconds


#: Every figure ``measured`` this session, for the summary at the end of the run (conftest.py).
LATENCIES: list[tuple[str, str, float]] = []


def answer_by_the_email_link(page: Page, url: str, button: str, check_as: str | None = None) -> None:
    """Open the link of the email (a page that changes nothing) and press its one button;
    ``check_as``: also check both pages as a person uses them (axe, a phone, screenshots)."""
    page.goto(url)
    if check_as:
        a_person_can_use(page, f"{check_as}-question")
    page.get_by_role("button", name=button).click()
    if check_as:
        expect(page.get_by_role("heading", level=1)).to_be_visible()
        a_person_can_use(page, f"{check_as}-answered")


def status_page_shows(page: Page, status: str, timeout_ms: int = 30_000) -> None:
    expect(page.locator("#status")).to_have_text(status, timeout=timeout_ms)
