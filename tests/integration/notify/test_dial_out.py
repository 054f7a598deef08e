"""Callback dial-out: CallbackDispatched rings the complainant and connects the agent; a call that
keeps failing is retried by policy, then the complainant is told by email."""

from __future__ import annotations

import random
import time
from datetime import UTC, datetime, timedelta

import httpx

from contracts.routing import CallbackDispatched
from services.notify.dialout import dialout_stream
from services.notify.ledger import ledger_stream
from tests.integration.notify.conftest import publish, settled
from tests.integration.notify.story import filed, mail_to, someone, stream_types
from tests.integration.support import wait_for


def a_phone() -> str:
    return f"+4477009{random.randrange(10**5):05d}"


def dispatched(complaint_id: str, phone: str) -> CallbackDispatched:
    return CallbackDispatched(
        complaint_id=complaint_id,
        callback_id=f"cb-{complaint_id}",
        agent_id="agt-0042",
        phone=phone,
        dispatched_at=datetime.now(UTC),
    )


async def calls_to(telephony_url: str, phone: str, count: int = 1) -> list[dict]:
    async def made():
        async with httpx.AsyncClient() as client:
            calls = [c for c in (await client.get(f"{telephony_url}/received")).json()["calls"] if c["to"] == phone]
        return calls if len(calls) >= count else None

    return await wait_for(made)


async def test_a_dispatched_callback_rings_the_customer_and_connects_the_agent(notify, telephony_url):
    complaint_id, email = someone()
    phone = a_phone()
    publish(notify.config.kafka_bootstrap_servers, "intake", filed(complaint_id, email, phone))
    await wait_for(lambda: stream_types(notify, f"complainant-{complaint_id}"))
    started = time.monotonic()
    publish(notify.config.kafka_bootstrap_servers, "routing", dispatched(complaint_id, phone))

    [call] = await calls_to(telephony_url, phone)
    print(f"\ndispatch-to-call latency: {(time.monotonic() - started) * 1000:.0f} ms")

    assert call["from"] == notify.config.telephony_caller_id
    assert call["twiml"] == "<Response><Dial><Client>agt-0042</Client></Dial></Response>"
    assert call["account_sid"] == notify.config.telephony_account_sid
    await wait_for(lambda: _has(notify, complaint_id, "CallPlaced"))


async def test_a_call_that_keeps_failing_is_retried_by_policy_then_the_customer_gets_an_email(
    notify, telephony_url, mailbox
):
    complaint_id, email = someone()
    phone = a_phone()
    async with httpx.AsyncClient() as client:
        await client.put(f"{telephony_url}/faults", json={"calls": "no-answer", "count": 3})
    publish(notify.config.kafka_bootstrap_servers, "intake", filed(complaint_id, email, phone))
    publish(notify.config.kafka_bootstrap_servers, "routing", dispatched(complaint_id, phone))
    await calls_to(telephony_url, phone, 1)

    await notify.notify.tick()  # too early for the second attempt (30 s after the first)
    notify.clock.advance(timedelta(seconds=30))
    await notify.notify.tick()
    notify.clock.advance(timedelta(minutes=2))
    await notify.notify.tick()
    calls = await calls_to(telephony_url, phone, 3)

    [told] = await mail_to(mailbox, email)
    assert len(calls) == 3 and all(c["status"] == "no-answer" for c in calls)
    assert told["subject"] == f"We tried to call you about your complaint {complaint_id}"
    assert "We tried 3 times" in told["text"] and told["headers"]["Auto-Submitted"] == "auto-generated"
    types = await stream_types(notify, dialout_stream(f"cb-{complaint_id}"))
    assert types == ["DialOutRequested", "CallFailed", "CallFailed", "CallFailed"]
    notify.clock.advance(timedelta(hours=1))
    await notify.notify.tick()
    await settled(notify)
    assert len(await calls_to(telephony_url, phone, 3)) == 3 and len(mailbox.messages(email)) == 1


async def _has(notify, complaint_id: str, name: str) -> bool:
    return name in await stream_types(notify, dialout_stream(f"cb-{complaint_id}"))


async def test_when_the_email_address_bounced_the_missed_call_is_told_by_sms_instead(notify, telephony_url, mailbox):
    complaint_id, email = someone()
    phone = a_phone()
    secret = {"Authorization": f"Bearer {notify.config.inbound_webhook_secret}"}
    await notify.post("/api/bounces", json={"address": email, "status": "5.1.1"}, headers=secret)
    async with httpx.AsyncClient() as client:
        await client.put(f"{telephony_url}/faults", json={"calls": "busy", "count": 3})
    publish(notify.config.kafka_bootstrap_servers, "intake", filed(complaint_id, email, phone))
    publish(notify.config.kafka_bootstrap_servers, "routing", dispatched(complaint_id, phone))
    await calls_to(telephony_url, phone, 1)
    for wait in (timedelta(seconds=30), timedelta(minutes=2)):
        notify.clock.advance(wait)
        await notify.notify.tick()

    async def texted():
        async with httpx.AsyncClient() as client:
            return [m for m in (await client.get(f"{telephony_url}/received")).json()["messages"] if m["to"] == phone]

    [sms] = await wait_for(texted)

    assert sms["body"].startswith("We tried 3 times to call you about complaint")
    assert mailbox.messages(email) == []
    events, _ = await notify.store.load(ledger_stream(email))
    [held] = [e for e in events if type(e).__name__ == "NotificationSuppressed"]
    assert (held.reason, held.alternative, held.template) == ("undeliverable", "sms", "callback_missed")
