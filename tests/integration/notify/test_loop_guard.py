"""Story 3: the locked-out seller is never trapped in a loop of "log in to fix this" emails."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from contracts.intake import Category
from services.notify.ledger import ledger_stream
from tests.integration.notify.conftest import publish, settled
from tests.integration.notify.story import filed, published_about, stream_types
from tests.integration.support import wait_for


def a_seller() -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    return f"sell-{tag}", f"lena.{tag}@marshandco.example.com"


def reminder(seller: str, email: str, day: int) -> dict:
    """The seller-account system's daily automated reminder, as it asks notify for it."""
    return {
        "request_id": f"login-reminder-{seller}-day-{day}",
        "template": "seller_login_reminder",
        "recipient": seller,
        "address": email,
        "display_name": "Lena Marsh",
        "context": {"login_url": "https://sellers.example.com/login"},
    }


def caller(notify) -> dict:
    return {"Authorization": f"Bearer {notify.config.inbound_webhook_secret}"}


async def twelve_daily_reminders(notify, seller: str, email: str) -> list[str]:
    verdicts = []
    for day in range(1, 13):
        answer = await notify.post("/api/notifications", json=reminder(seller, email, day), headers=caller(notify))
        assert answer.status_code == 202, answer.text
        verdicts.append(answer.json()["verdict"])
        notify.clock.advance(timedelta(days=1))
    return verdicts


async def none_sent_and_a_human_asked_once(notify, mailbox, seller: str, email: str, verdicts: list[str]) -> None:
    """A locked account: every reminder held back as one she cannot act on; a human asked once."""
    assert verdicts == ["suppressed"] * 12
    await settled(notify)
    assert mailbox.messages(email) == []
    events, _ = await notify.store.load(ledger_stream(email))
    held = [e for e in events if type(e).__name__ == "NotificationSuppressed"]
    assert [(e.reason, e.alternative) for e in held] == [("cannot_act", "human")] + [("cannot_act", "none")] * 11
    [asked] = [e for e in events if type(e).__name__ == "EscalationRequested"]
    assert asked.recipient == seller and "locked" in asked.detail


async def test_twelve_daily_log_in_reminders_send_at_most_the_cap_then_a_human_is_asked_once(notify, mailbox):
    seller, email = a_seller()

    verdicts = await twelve_daily_reminders(notify, seller, email)

    cap = notify.config.max_per_case
    assert verdicts == ["queued"] * cap + ["suppressed"] * (12 - cap)
    sent = await wait_for(lambda: (m := mailbox.messages(email)) and len(m) >= cap and m)
    await settled(notify)
    assert len(mailbox.messages(email)) == cap == len(sent)
    types = await stream_types(notify, ledger_stream(email))
    assert types.count("NotificationSuppressed") == 12 - cap
    assert types.count("EscalationRequested") == 1  # one escalation per loop, not one a day
    published = await asyncio.to_thread(published_about, notify.config.kafka_bootstrap_servers, seller, 2)
    [escalation] = [e for e in published if e.type == "complaints.notify.EscalationRequested.v1"]
    assert escalation.data["reason"] == "cap_reached" and escalation.data["template"] == "seller_login_reminder"


async def test_the_locked_out_seller_of_story_3_gets_no_log_in_reminder_in_twelve_days_and_a_human_is_asked_once(
    notify, mailbox
):
    # sel-48213 is locked on suspicion of card fraud in the seller-account system (orders.json).
    seller, email = "sel-48213", "maria.chen@willowandclay.example"

    verdicts = await twelve_daily_reminders(notify, seller, email)

    await none_sent_and_a_human_asked_once(notify, mailbox, seller, email, verdicts)


async def test_a_log_in_reminder_to_a_seller_who_complained_of_a_locked_account_is_not_sent(notify, mailbox):
    seller, email = a_seller()
    complaint_id = f"c-{uuid.uuid4().hex[:10]}"
    # She filed through the locked-out path (verified by a one-time code): her account is locked.
    publish(
        notify.config.kafka_bootstrap_servers,
        "intake",
        filed(complaint_id, email, seller_id=seller, category=Category.ACCOUNT_LOCKED),
    )
    await wait_for(lambda: _has(notify, ledger_stream(email), "AccountLockNoted"))

    verdicts = await twelve_daily_reminders(notify, seller, email)

    await none_sent_and_a_human_asked_once(notify, mailbox, seller, email, verdicts)


async def test_a_reminder_request_is_refused_naming_the_field_and_the_rule(notify):
    seller, email = a_seller()
    good = reminder(seller, email, 1)

    unknown = await notify.post(
        "/api/notifications", json={**good, "template": "closure_question"}, headers=caller(notify)
    )
    missing = await notify.post("/api/notifications", json={**good, "context": {}}, headers=caller(notify))
    wrong = await notify.post("/api/notifications", json={**good, "channel": "sms"}, headers=caller(notify))
    anonymous = await notify.post("/api/notifications", json=good)

    assert unknown.status_code == 422 and unknown.json()["message"].startswith("template: must be one of")
    assert (
        missing.status_code == 422
        and missing.json()["message"] == "context: missing login_url for seller_login_reminder"
    )
    assert wrong.status_code == 422 and "address must be E.164 for channel sms" in wrong.json()["message"]
    assert anonymous.status_code == 401


async def test_a_bounced_address_is_not_written_to_again(notify, mailbox):
    seller, email = a_seller()
    bounced = await notify.post("/api/bounces", json={"address": email, "status": "5.1.1"}, headers=caller(notify))

    answer = await notify.post("/api/notifications", json=reminder(seller, email, 1), headers=caller(notify))

    assert bounced.status_code == 202 and bounced.json()["undeliverable"] is True
    assert answer.json()["verdict"] == "suppressed"
    events, _ = await notify.store.load(ledger_stream(email))
    assert [e.reason for e in events if type(e).__name__ == "NotificationSuppressed"] == ["undeliverable"]


async def _has(notify, stream: str, name: str) -> bool:
    return name in await stream_types(notify, stream)
